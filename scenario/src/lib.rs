//! The wa-emulator scenario language and its runner.
//!
//! Scenarios are `.scn` files, one step a line, that read like the test plan they
//! encode; see `README.md` for the language reference. The runner talks to an emulator
//! only over HTTP (the Graph API and the `/__emulator` admin API), so the same scenario
//! runs against a fresh in-process emulator or one at a URL.
//!
//! The crate depends on the emulator library (`wa-emulator`), for two things: the types
//! of the admin answers it reads (`wa_emulator::api::admin_types`), and the in-process
//! door ([`InProcess`]), which starts an emulator per scenario. The `wa-emulator` binary
//! (package `wa-emulator-cli`) depends on both crates; nothing depends on it.
//!
//! # Layout
//! - `diagnostic.rs` ([`diagnostic`]): spans, source lines, rustc-style error rendering.
//! - `syntax/` ([`syntax`]): lexer, JSON patterns, durations, the parser (a file per
//!   step family), syntax tree, canonical printer.
//! - `check.rs` ([`check`]): semantic checks (users, variables, kinds, durations).
//! - `runner/` ([`runner`]): the step interpreter (a file per step family: business,
//!   users, responses, webhooks, the app), matchers, HTTP, and the two doors
//!   (`runner::target`: in-process or at a URL).
//! - `cli.rs` ([`cli`]): `RunArgs`, file discovery, sharding, parallel execution,
//!   reports, JUnit.

pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod runner;
pub mod syntax;

pub use cli::{run, RunArgs};
pub use runner::target::{InProcess, RemoteTarget, RunningTarget, Starting, TargetFactory};

/// A typical 15-step scenario (a button call with payload, accepted, timed, hung up),
/// varied by `i`; the speed benchmark runs a thousand of these.
pub fn bench_scenario(i: usize) -> String {
    format!(
        "# benchmark story {i}
user alice is android 2.25.30 with an open window
user bob is ios 2.25.30
business sends alice a call button \"Call us\" with payload \"order-{i}\" with ttl 1h as $msg
expect success
expect a messages webhook sent for $msg
alice taps $msg as $call
expect a calls webhook connect for $call with {{\"cta_payload\": \"order-{i}\"}}
business pre-accepts $call
business accepts $call
advance {secs}s
alice hangs up $call
then expect a calls webhook terminate for $call with {{\"duration\": {secs}, \"cta_payload\": \"order-{i}\"}}
expect 2 calls webhooks for $call
expect no calls webhook for bob
bob says \"hello\"
",
        secs = 30 + i % 60
    )
}
