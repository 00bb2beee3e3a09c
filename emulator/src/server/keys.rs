//! Key material an emulator generates when it starts (the media endpoints' DTLS
//! certificate, the SIP gateway's local CA and TLS certificate), made once per process
//! and shared by every emulator the process starts.
//!
//! `serve` starts one emulator per process, so it still gets identities of its own; the
//! in-process emulators of `wa-emulator run` and of Rust tests (one per scenario or test)
//! share them instead of paying for fresh keys each time: generating them was most of
//! what starting an emulator cost (a DTLS certificate, a CA and a leaf, and str0m
//! checking its crypto provider by running key exchanges). Nothing about an emulator
//! depends on its keys being unique: each is still random, `--seed` never fixed them,
//! and every emulator's configuration shows the CA it uses (`sip.ca_pem`).

use super::tls::{self, ServerIdentity};
use crate::media::endpoint::Identity;
use rustls::ServerConfig;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The names a generated SIP gateway certificate covers: Meta's SIP domain (for a
/// business that maps it to the emulator) and loopback.
const SIP_TLS_NAMES: [&str; 4] = ["wa.meta.vc", "localhost", "127.0.0.1", "::1"];

/// The media endpoints' DTLS identity (see [`Identity`]: one certificate for every call).
pub(super) fn media_identity(now: Instant) -> Result<Identity, String> {
    static IDENTITY: OnceLock<Result<Identity, String>> = OnceLock::new();
    IDENTITY.get_or_init(|| Identity::generate(now)).clone()
}

/// The SIP gateway's generated identity (a local CA and a leaf for [`SIP_TLS_NAMES`])
/// and the TLS server config presenting it.
pub(super) fn sip_tls() -> Result<(ServerIdentity, Arc<ServerConfig>), String> {
    static SIP: OnceLock<Result<(ServerIdentity, Arc<ServerConfig>), String>> = OnceLock::new();
    SIP.get_or_init(|| {
        let identity = ServerIdentity::generate(&SIP_TLS_NAMES)?;
        let config = tls::server_config(&identity)?;
        Ok((identity, config))
    })
    .clone()
}
