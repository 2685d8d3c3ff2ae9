//! Hashing throughput on one core (xxh3-64, as every range is hashed while it is read) against
//! the memory bandwidth of the same core (a memcpy of the same buffer): hashing is not the
//! bottleneck while it runs near memcpy speed.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

fn main() {
    divan::main();
}

/// Buffer sizes: one 4 MiB local-disk chunk (cache-warm) and one 64 MiB range (out of cache).
const SIZES: &[usize] = &[4 << 20, 64 << 20];

fn buffer(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| hbcp_benches::xorshift(&mut x) as u8)
        .collect()
}

/// Memory bandwidth reference: copy the buffer into another one of the same size.
#[divan::bench(args = SIZES)]
fn memcpy(b: Bencher, n: usize) {
    let src = buffer(n);
    let mut dst = vec![0u8; n];
    b.counter(BytesCount::new(n)).bench_local(|| {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    });
}

/// One-shot xxh3-64 of a whole range (object-store path).
#[divan::bench(args = SIZES)]
fn xxh3_oneshot(b: Bencher, n: usize) {
    let src = buffer(n);
    b.counter(BytesCount::new(n))
        .bench_local(|| xxh3_64(black_box(&src)));
}

/// Streaming xxh3 fed in 4 MiB chunks (local-disk path: a range read chunk by chunk).
#[divan::bench(args = SIZES)]
fn xxh3_streaming_4mib(b: Bencher, n: usize) {
    let src = buffer(n);
    b.counter(BytesCount::new(n)).bench_local(|| {
        let mut h = Xxh3::new();
        for c in black_box(&src).chunks(4 << 20) {
            h.update(c);
        }
        h.digest()
    });
}
