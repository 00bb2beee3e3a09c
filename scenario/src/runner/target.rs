//! The seam between the runner and an emulator: the runner only ever needs a base URL.
//!
//! The scenario crate must not depend on the emulator crate (the emulator's binary
//! depends on this one), so the in-process door is a [`TargetFactory`] the binary
//! provides; the remote door (`--target URL`) is [`RemoteTarget`].

use std::future::Future;
use std::pin::Pin;

/// What [`TargetFactory::start`] returns.
pub type Starting<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn RunningTarget>, String>> + Send + 'a>>;

/// Starts a fresh, isolated emulator for one scenario.
pub trait TargetFactory: Send + Sync {
    /// Start an emulator with a virtual clock and deterministic ids from `seed`.
    fn start(&self, seed: u64) -> Starting<'_>;
}

/// A running emulator. Dropping it stops that emulator.
pub trait RunningTarget: Send + Sync {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    fn base_url(&self) -> String;
}

/// An emulator someone else runs, at a URL (`--target`). Dropping it does nothing.
pub struct RemoteTarget(pub String);

impl RunningTarget for RemoteTarget {
    fn base_url(&self) -> String {
        self.0.trim_end_matches('/').to_string()
    }
}

/// A factory for when there is no in-process emulator: every start fails with a clear
/// message. Useful for tools that only ever use `--target`.
pub struct NoInProcess;

impl TargetFactory for NoInProcess {
    fn start(&self, _seed: u64) -> Starting<'_> {
        Box::pin(async {
            Err("no in-process emulator is available here; pass --target URL".to_string())
        })
    }
}
