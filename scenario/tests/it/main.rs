//! The scenario crate's one integration-test binary.

mod corpus;
mod golden;
