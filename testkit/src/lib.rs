//! hbcp testkit crate.
