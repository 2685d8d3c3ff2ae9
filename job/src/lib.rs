//! hbcp job: the run orchestration of every command, between the binary (arguments, printing,
//! progress rendering, exit codes) and the stages (planner, engine, verifier, store).
//!
//! Issue #16, first step: the orchestration files were moved here from `src/` by `git mv` so
//! that edits to them follow the rename. Until they stop naming the binary's argument types
//! (`crate::cli`) they are still compiled as modules of the binary (`#[path]` in
//! `src/main.rs`); this library is empty until then. It must never import clap or indicatif:
//! it is driven by the binary.
