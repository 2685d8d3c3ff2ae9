//! Fixture helpers for tests.
