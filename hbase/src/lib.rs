//! hbcp hbase crate.
