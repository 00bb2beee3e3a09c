//! The scenario crate's one integration-test binary.

mod corpus;
mod fake;
mod golden;
mod runner;
mod tenants;
