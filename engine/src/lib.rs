//! hbcp engine crate.
