//! hbcp planner crate.
