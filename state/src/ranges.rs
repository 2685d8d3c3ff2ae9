//! The split arithmetic: a file of `size` bytes cut into ranges of `range_size` bytes.
//!
//! The ranges cover `[0, size)` exactly, in order, without overlap; every range but the last
//! is exactly `range_size` long. An empty file has no range (it is written whole, empty).

use std::ops::Range;

/// Number of ranges of a file of `size` bytes.
pub fn range_count(size: u64, range_size: u64) -> u64 {
    assert!(range_size > 0, "range size must be positive");
    size.div_ceil(range_size)
}

/// The byte range of range number `index`.
pub fn range_at(size: u64, range_size: u64, index: u64) -> Range<u64> {
    let start = index.saturating_mul(range_size).min(size);
    let end = start.saturating_add(range_size).min(size);
    start..end
}

/// The ranges of a file, in order.
pub fn ranges(size: u64, range_size: u64) -> impl Iterator<Item = Range<u64>> {
    (0..range_count(size, range_size)).map(move |i| range_at(size, range_size, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let r = 10;
        let cases: &[(u64, &[(u64, u64)])] = &[
            (0, &[]),
            (1, &[(0, 1)]),
            (9, &[(0, 9)]),
            (10, &[(0, 10)]),
            (11, &[(0, 10), (10, 11)]),
            (30, &[(0, 10), (10, 20), (20, 30)]),
            (31, &[(0, 10), (10, 20), (20, 30), (30, 31)]),
        ];
        for (size, want) in cases {
            let got: Vec<(u64, u64)> = ranges(*size, r).map(|x| (x.start, x.end)).collect();
            assert_eq!(&got[..], *want, "size {size}");
            assert_eq!(range_count(*size, r), want.len() as u64);
        }
    }

    proptest! {
        #[test]
        fn ranges_cover_exactly_without_overlap(size in 0u64..1u64 << 40, range_size in 1u64..1u64 << 34) {
            prop_assume!(range_count(size, range_size) < 100_000);
            let mut next = 0u64;
            let mut n = 0u64;
            for r in ranges(size, range_size) {
                prop_assert_eq!(r.start, next);
                prop_assert!(r.end > r.start);
                prop_assert!(r.end - r.start <= range_size);
                if r.end != size { prop_assert_eq!(r.end - r.start, range_size); }
                next = r.end;
                n += 1;
            }
            prop_assert_eq!(next, size);
            prop_assert_eq!(n, range_count(size, range_size));
        }
    }
}
