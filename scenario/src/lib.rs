//! The wa-emulator scenario language and its runner.
//!
//! Scenarios are `.scn` files, one step a line, that read like the test plan they
//! encode; see `README.md` for the language reference. The runner talks to an emulator
//! only over HTTP (the Graph API and the `/__emulator` admin API), so the same scenario
//! runs against a fresh in-process emulator or one at a URL.
//!
//! # Layout
//! - [`diagnostic`]: spans, source lines, rustc-style error rendering.
//! - [`syntax`]: lexer, parser, syntax tree, canonical printer.
//! - [`check`]: semantic checks (users, variables, kinds, durations).
//! - [`runner`]: the HTTP client, matchers, and the step interpreter.
//! - [`cli`]: `RunArgs`, file discovery, sharding, parallel execution, reports, JUnit.

pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod runner;
pub mod syntax;

pub use cli::{run, RunArgs};
pub use runner::target::{RunningTarget, TargetFactory};
