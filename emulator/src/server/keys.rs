//! Key material an emulator generates when it starts (the media endpoints' DTLS
//! certificate, the SIP gateway's local CA and TLS certificate), made once per process
//! and shared by every emulator the process starts.
//!
//! `serve` starts one emulator per process, so it still gets identities of its own; the
//! in-process emulators of `wa-emulator run` and of Rust tests (one per scenario or test)
//! share them instead of paying for fresh keys each time: generating them was most of
//! what starting an emulator cost (a DTLS certificate, a CA and a leaf, and str0m
//! checking its crypto provider by running key exchanges). All of it is made with rcgen
//! on ring, so no start touches aws-lc (str0m's provider, whose first use seeds its
//! random generator from CPU jitter for ~30 ms): the first WebRTC call does. Nothing about an emulator
//! depends on its keys being unique: each is still random, `--seed` never fixed them,
//! and every emulator's configuration shows the CA it uses (`sip.ca_pem`).

use super::tls::{self, ServerIdentity};
use crate::media::endpoint::Identity;
use rustls::ServerConfig;
use std::sync::{Arc, OnceLock};

/// The names a generated SIP gateway certificate covers: Meta's SIP domain (for a
/// business that maps it to the emulator) and loopback.
const SIP_TLS_NAMES: [&str; 4] = ["wa.meta.vc", "localhost", "127.0.0.1", "::1"];

/// The media endpoints' DTLS identity (see [`Identity`]: one certificate for every call).
pub(crate) fn media_identity() -> Result<Identity, String> {
    static IDENTITY: OnceLock<Result<Identity, String>> = OnceLock::new();
    IDENTITY.get_or_init(dtls_identity).clone()
}

/// A self-signed certificate like the one str0m's provider makes (ECDSA P-256 with
/// SHA-256, `O=DTLS, CN=DTLS Peer`, a random 16-byte serial, valid for a year), made
/// with rcgen on ring instead: str0m's provider (aws-lc) seeds its random generator
/// from CPU jitter the first time it is used, ~30 ms that every start paid before
/// `/__emulator/health` could answer. Now the first WebRTC call pays it.
fn dtls_identity() -> Result<Identity, String> {
    let err = |e: rcgen::Error| format!("cannot make the media DTLS certificate: {e}");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::OrganizationName, "DTLS");
    name.push(rcgen::DnType::CommonName, "DTLS Peer");
    params.distinguished_name = name;
    params.is_ca = rcgen::IsCa::NoCa;
    let now = super::real_now_ms() / 1000;
    let (y, m, d) = day(now)?;
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = day(now + 365 * 24 * 3600)?;
    params.not_after = rcgen::date_time_ymd(y, m, d);
    // Unique across processes and machines (Firefox refuses two peers' certificates with
    // the same issuer and serial).
    #[allow(
        clippy::disallowed_methods,
        reason = "key material is random by design"
    )]
    let serial: [u8; 16] = rand::random();
    params.serial_number = Some(serial.to_vec().into());
    let cert = params.self_signed(&key).map_err(err)?;
    Ok(Identity::from_der(cert.der().to_vec(), key.serialize_der()))
}

/// The day `secs` (Unix seconds) falls on, at midnight UTC.
fn day(secs: u64) -> Result<(i32, u8, u8), String> {
    use chrono::Datelike as _;
    let day = i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .ok_or_else(|| format!("the system clock ({secs} s) is out of range"))?;
    Ok((day.year(), day.month() as u8, day.day() as u8))
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
