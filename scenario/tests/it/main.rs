//! The scenario crate's one integration-test binary.

mod golden;
