//! Starting an [`Emulator`]: the [`EmulatorBuilder`] of its options, and the [`Tenant`]
//! read back from `GET /__emulator/config` once it listens.

use super::{Emulator, Error, DEFAULT_CLOCK_START_MS, DEFAULT_SEED};
use crate::api::admin_types::{BusinessNumber, Config};
use crate::domain::ids::{AppId, PhoneNumberId, WabaId};
use crate::domain::tenant::Behaviour;
use crate::engine::ClockMode;
use crate::server::client::Client;
use crate::server::{self, ServeOptions};
use std::time::Duration;

/// Options for [`Emulator`]; [`EmulatorBuilder::start`] starts it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use wa_emulator::Emulator;
///
/// let emu = Emulator::builder()
///     .seed(7)
///     .options(|o| o.behaviour.ring_timeout_secs = 45)
///     .start()
///     .await;
/// let config = emu.config().await.unwrap();
/// assert_eq!(config.behaviour.ring_timeout_secs, 45);
/// # }
/// ```
#[must_use = "a builder does nothing until started"]
pub struct EmulatorBuilder {
    opts: ServeOptions,
    webhook_url: Option<String>,
    settle: Duration,
}

impl EmulatorBuilder {
    pub(super) fn new() -> Self {
        let mut opts = ServeOptions::for_tests(ClockMode::Virtual, DEFAULT_SEED);
        opts.clock_start_ms = Some(DEFAULT_CLOCK_START_MS);
        EmulatorBuilder {
            opts,
            webhook_url: None,
            settle: Duration::from_millis(50),
        }
    }

    /// The seed of every generated id ([`DEFAULT_SEED`] by default).
    pub fn seed(mut self, seed: u64) -> Self {
        self.opts.seed = seed;
        self
    }

    /// Where the virtual clock starts, in Unix milliseconds ([`DEFAULT_CLOCK_START_MS`]
    /// by default).
    pub fn clock_start_ms(mut self, unix_ms: u64) -> Self {
        self.opts.clock_start_ms = Some(unix_ms);
        self
    }

    /// The system clock instead of a virtual one: time passes by itself and
    /// [`Emulator::advance`] is refused.
    pub fn real_clock(mut self) -> Self {
        self.opts.clock = ClockMode::Real;
        self.opts.clock_start_ms = None;
        self
    }

    /// The behaviour switches (`[behaviour]` of the TOML configuration).
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.opts.behaviour = behaviour;
        self
    }

    /// The callback URL webhooks go to; its verification handshake must succeed for the
    /// emulator to start. [`Emulator::set_webhook_url`] sets it later.
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Require this token on `/__emulator` (the handle sends it).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.opts.admin_token = Some(token.into());
        self
    }

    /// The real time a wait on a virtual clock leaves a webhook receiver before each step
    /// of the clock, while a callback URL is set (50 ms by default).
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Anything else `wa-emulator serve` can be told: tenants, behaviour, limits.
    pub fn options(mut self, change: impl FnOnce(&mut ServeOptions)) -> Self {
        change(&mut self.opts);
        self
    }

    /// Starts the emulator on the current tokio runtime.
    ///
    /// # Panics
    /// When it cannot start (no free port, a webhook handshake that fails): a test has
    /// nothing to do then. [`try_start`](Self::try_start) returns the error instead.
    pub async fn start(self) -> Emulator {
        match self.try_start().await {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the emulator on the current tokio runtime.
    pub async fn try_start(self) -> Result<Emulator, Error> {
        let clock = self.opts.clock;
        let admin_token = self.opts.admin_token.clone();
        let running = server::spawn(self.opts).await.map_err(Error::Start)?;
        let url = running.url();
        let mut emu = Emulator {
            admin_url: format!("{url}/__emulator"),
            url,
            running,
            http: Client::new(),
            admin_token,
            // Filled in from the emulator's configuration just below.
            tenant: Tenant {
                app_id: AppId::from(""),
                app_secret: String::new(),
                access_token: String::new(),
                verify_token: String::new(),
                waba_id: WabaId::from(""),
                phone_numbers: Vec::new(),
            },
            clock,
            settle: self.settle,
        };
        // What `GET /__emulator/config` answers, read in this process: no request, no
        // connection.
        emu.tenant = Tenant::from_config(emu.running.config()).map_err(Error::Start)?;
        if let Some(u) = &self.webhook_url {
            emu.set_webhook_url(u)
                .await
                .map_err(|e| Error::Start(format!("setting the callback URL {u}: {e}")))?;
        }
        Ok(emu)
    }
}

/// Who the emulator pretends to be: the default tenant's app, WABA and numbers, as
/// `GET /__emulator/config` says. Point the code under test at these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub app_id: AppId,
    /// Signs every webhook (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// The bearer token Graph requests must carry.
    pub access_token: String,
    /// What the verification handshake sends as `hub.verify_token`.
    pub verify_token: String,
    pub waba_id: WabaId,
    /// Every business number, first one first, with whether it can call users
    /// ([`BusinessNumber::business_initiated_calling`]).
    pub phone_numbers: Vec<BusinessNumber>,
}

impl Tenant {
    fn from_config(c: Config) -> Result<Tenant, String> {
        let missing = |what: &str| format!("GET /__emulator/config has no {what}");
        if c.phone_numbers.is_empty() {
            return Err(missing("business phone number"));
        }
        Ok(Tenant {
            app_id: c.app_id.ok_or_else(|| missing("app_id"))?,
            app_secret: c.app_secret.ok_or_else(|| missing("app_secret"))?,
            access_token: c.access_token.ok_or_else(|| missing("access_token"))?,
            verify_token: c.verify_token.ok_or_else(|| missing("verify_token"))?,
            waba_id: c.waba_id.ok_or_else(|| missing("waba_id"))?,
            phone_numbers: c.phone_numbers,
        })
    }

    /// The first number (`106540352242922` by default: a +1 number, user-initiated calls
    /// only).
    pub fn phone_number_id(&self) -> &PhoneNumberId {
        &self.phone_numbers[0].id
    }

    /// The first number that can call users and ask for call permission
    /// (`110972043181256`, a UK number, by default).
    pub fn calling_phone_number_id(&self) -> Option<&PhoneNumberId> {
        self.phone_numbers
            .iter()
            .find(|n| n.business_initiated_calling)
            .map(|n| &n.id)
    }
}
