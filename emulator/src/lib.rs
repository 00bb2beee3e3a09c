//! wa-emulator: a local, stateful emulator of the WhatsApp Business Cloud API calling
//! surfaces — `voice_call` buttons, call deep links, the calls they start, `/calls`,
//! permissions, settings and SIP — with signed webhooks and a virtual clock.
//!
//! # Layout
//! - [`domain`]: pure types and rules (ids, users, the call state machine, permissions,
//!   settings, SDP, the SIP INVITE description, the error catalogue).
//! - [`wire`]: Graph request JSON → validated inputs; call links and percent-encoding.
//! - [`webhook`]: webhook bodies, ASCII-escaped bytes and signatures, the outbox.
//! - [`engine`]: the stateful core; every operation is `(state, now, input) → output`.
//! - [`api`]: routing of Graph and `/__emulator` requests onto the engine, and the admin
//!   views (pure).
//! - [`media`]: the simulated user's WebRTC media endpoint (SDP, DTMF, sound; str0m and
//!   libopus with feature `media`).
//! - [`sip`]: SIP messages, digest auth, the user-agent client for SIP-enabled numbers
//!   and the gateway that takes businesses' INVITEs (business-initiated calls).
//! - [`fixture`]: recorded webhook fixtures, loaded for replay and conformance tests.
//! - `server`: the only I/O — hyper, the clock, webhook delivery, the write-ahead log,
//!   SIP sockets, and the one small HTTP client the CLI, replay and the scenario runner
//!   share (feature `server`).
//! - `replay`: posting webhook fixtures to a receiver (feature `server`; tests in
//!   `replay/tests.rs`).
//! - `embed`: the emulator inside a Rust test — `Emulator`, re-exported here with its
//!   builder, `Error` and the wait patterns (feature `server`).
//!
//! Dependency direction: domain ← {wire, webhook} ← engine ← api ← server ← embed;
//! `domain` depends on nothing else in the crate. The SIP module sits beside the engine:
//! both read [`domain::sip`], neither depends on the other, and the server joins them.
//!
//! # In a Rust test
//!
//! `Emulator::start()` runs an emulator on a free loopback port of the test's tokio
//! runtime, with a virtual clock; dropping it stops it. Give the code under test its
//! `url()` and `tenant()`, act as the user, and wait for what should follow (the module
//! `embed` documents it all):
//!
//! ```
//! # #[cfg(feature = "server")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wa_emulator::Error> {
//! use std::time::Duration;
//! use wa_emulator::{Emulator, WebhookPattern};
//!
//! let emu = Emulator::start().await;
//! assert_eq!(emu.tenant().access_token, "wa-emulator-token");
//! let text = emu.user("16315551234").send_text("Can you call me?").await?;
//! let inbound = WebhookPattern::field("messages").event("text").message(&text);
//! let webhook = emu.wait_for(inbound, Duration::from_secs(1)).await?;
//! assert_eq!(webhook.body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"], "Can you call me?");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```

pub mod api;
pub mod domain;
pub mod engine;
pub mod fixture;
pub mod media;
pub mod sip;
pub mod webhook;
pub mod wire;

#[cfg(feature = "server")]
pub mod embed;
#[cfg(feature = "server")]
pub mod replay;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "server")]
pub use embed::{Emulator, EmulatorBuilder, Error, RequestPattern, WebhookPattern};
