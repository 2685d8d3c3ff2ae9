//! hbcp verifier crate.
