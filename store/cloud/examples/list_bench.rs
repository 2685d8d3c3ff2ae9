//! Listing benchmark of an object-store root: the sequential paged listing against the parallel
//! one (README "Performance"). Optionally fills the root first with an HBase-like tree of empty
//! objects, then lists it with each LIST concurrency asked for, several times, and prints the
//! median time and rate of each.
//!
//!     cargo run --release -p hbcp-store-cloud --example list_bench -- \
//!         URL [--populate FILES --regions N] [--concurrency 1,16] [--runs 3]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use hbcp_store::{Store, StoreUrl};
use hbcp_store_cloud::{CloudOptions, open};

fn store(url: &StoreUrl, concurrency: usize) -> Arc<dyn Store> {
    let opts = CloudOptions {
        allow_http: true,
        create_container: true,
        list_concurrency: Some(concurrency),
        ..Default::default()
    };
    match open(url, &opts) {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("list_bench: cannot open {}: {e}", url.display);
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first() else {
        eprintln!(
            "usage: list_bench URL [--populate FILES --regions N] [--concurrency 1,16] [--runs 3]"
        );
        std::process::exit(2);
    };
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |name: &str, default: usize| match opt(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("list_bench: {name} {v}: expected a number");
            std::process::exit(2)
        }),
    };
    let url = StoreUrl::parse(url, true).unwrap_or_else(|e| {
        eprintln!("list_bench: {e}");
        std::process::exit(2)
    });
    let files = num("--populate", 0);
    let regions = num("--regions", 50).max(1);
    let runs = num("--runs", 3).max(1);
    let concurrency: Vec<usize> = opt("--concurrency")
        .unwrap_or_else(|| "1,16".into())
        .split(',')
        .map(|c| {
            c.parse()
                .expect("--concurrency: numbers separated by commas")
        })
        .collect();
    if files > 0 {
        // 10 tables of regions/10 regions, 2 families; the files spread over the regions.
        let s = store(&url, 1);
        let next = AtomicUsize::new(0);
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            for _ in 0..32 {
                sc.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        if i >= files {
                            break;
                        }
                        let r = i % regions;
                        let key = format!(
                            "data/default/t{}/{r:04}0123456789abcdef0123456789/cf{}/{i:032x}",
                            r % 10,
                            i % 2
                        );
                        if let Err(e) = s.put(&key, b"") {
                            eprintln!("list_bench: put {key}: {e}");
                            std::process::exit(1);
                        }
                    }
                });
            }
        });
        eprintln!(
            "populated {files} objects in {regions} regions in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
    for c in concurrency {
        let s = store(&url, c);
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..runs {
            let n = AtomicU64::new(0);
            let t0 = Instant::now();
            if let Err(e) = s.list("", &|_| {
                n.fetch_add(1, Relaxed);
                Ok(())
            }) {
                eprintln!("list_bench: list: {e}");
                std::process::exit(1);
            }
            times.push(t0.elapsed().as_secs_f64());
            count = n.load(Relaxed);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "concurrency {c:>3}: {count} entries, median {median:.2} s of {runs} ({:.0} entries/s; runs {:?})",
            count as f64 / median,
            times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>()
        );
    }
}
