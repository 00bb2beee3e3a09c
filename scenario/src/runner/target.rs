//! The seam between the runner and an emulator: the runner only ever needs a base URL.
//!
//! Two doors, one behaviour: [`InProcess`] starts a fresh emulator in this process for
//! each scenario (the default of `wa-emulator run`), [`RemoteTarget`] is an emulator
//! someone else runs (`--target URL`). Both are driven over HTTP the same way. Tests that
//! need an emulator misbehaving on purpose provide their own [`TargetFactory`].
//!
//! The in-process door starts its emulators with the library's embedded API
//! ([`wa_emulator::Emulator`]), the one Rust tests use: what a scenario sees is what a
//! test written against that API sees.

use std::future::Future;
use std::pin::Pin;
use wa_emulator::api::admin_types::BusinessNumber;
use wa_emulator::server::client::Client;
use wa_emulator::server::ServeOptions;
use wa_emulator::Emulator;

/// What [`TargetFactory::start`] returns.
pub type Starting<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn RunningTarget>, String>> + Send + 'a>>;

/// Starts a fresh, isolated emulator for one scenario: nothing has happened on it yet (its
/// delivery log and request journal are empty), so the runner does not read where they
/// stand before the first step.
pub trait TargetFactory: Send + Sync {
    /// Start an emulator with a virtual clock and deterministic ids from `seed`.
    fn start(&self, seed: u64) -> Starting<'_>;
}

/// A running emulator. Dropping it stops that emulator.
pub trait RunningTarget: Send + Sync {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    fn base_url(&self) -> String;

    /// What the runner's setup would read from `GET /__emulator/config`, when the door
    /// knows it already (an emulator it started); `None` (the default): the runner asks.
    fn setup(&self) -> Option<Setup> {
        None
    }

    /// A client reaching this emulator without a socket, when it runs in this process
    /// (see [`Emulator::in_memory_client`]); `None` (the default): HTTP to
    /// [`base_url`](Self::base_url).
    fn in_memory(&self) -> Option<Client> {
        None
    }
}

/// The default tenant as the runner's setup needs it: the Graph token, and the business
/// numbers, first one first.
#[derive(Clone, Debug)]
pub struct Setup {
    pub access_token: String,
    pub phone_numbers: Vec<BusinessNumber>,
}

/// An emulator someone else runs, at a URL (`--target`). Dropping it does nothing.
pub struct RemoteTarget(pub String);

impl RunningTarget for RemoteTarget {
    fn base_url(&self) -> String {
        self.0.trim_end_matches('/').to_string()
    }
}

/// Where the in-process emulators' virtual clocks start: 2026-01-01T00:00:00Z, so
/// timestamps are the same on every run (the embedded API's default).
pub const CLOCK_START_MS: u64 = wa_emulator::embed::DEFAULT_CLOCK_START_MS;

/// The in-process door: a fresh emulator in this process per scenario, on a free
/// loopback port, with a virtual clock starting at [`CLOCK_START_MS`].
pub struct InProcess;

/// An in-process emulator; dropping it shuts the emulator down.
pub struct InProcessTarget(pub Emulator);

impl RunningTarget for InProcessTarget {
    fn base_url(&self) -> String {
        self.0.url().to_owned()
    }

    fn setup(&self) -> Option<Setup> {
        let tenant = self.0.tenant();
        Some(Setup {
            access_token: tenant.access_token.clone(),
            phone_numbers: tenant.phone_numbers.clone(),
        })
    }

    fn in_memory(&self) -> Option<Client> {
        Some(self.0.in_memory_client())
    }
}

impl InProcess {
    /// Starts one emulator, as [`TargetFactory::start`] does, keeping its type.
    pub async fn spawn(seed: u64) -> Result<InProcessTarget, String> {
        let emulator = Emulator::builder()
            .seed(seed)
            .clock_start_ms(CLOCK_START_MS)
            .try_start()
            .await
            .map_err(|e| e.to_string())?;
        Ok(InProcessTarget(emulator))
    }

    /// Starts one emulator with these options (`run --config`), through the same API.
    pub async fn spawn_with(opts: ServeOptions) -> Result<InProcessTarget, String> {
        let emulator = Emulator::builder()
            .options(|o| *o = opts)
            .try_start()
            .await
            .map_err(|e| e.to_string())?;
        Ok(InProcessTarget(emulator))
    }
}

impl TargetFactory for InProcess {
    fn start(&self, seed: u64) -> Starting<'_> {
        Box::pin(
            async move { Ok(Box::new(InProcess::spawn(seed).await?) as Box<dyn RunningTarget>) },
        )
    }
}
