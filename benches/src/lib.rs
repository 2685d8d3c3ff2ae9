//! Micro-benchmarks of hbcp's hot paths, outside the main workspace (run `cargo bench` here).
//! The benchmarks are in `benches/`; this library holds what they share.

/// The next value of a xorshift64 sequence: fast, repeatable filler for benchmark data.
pub fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
