//! https receivers (issue 16): Meta delivers webhooks only to https endpoints, so the
//! emulator does too, checking the receiver's certificate against the system's roots
//! plus `--webhook-ca`. Each receiver here has a certificate from a CA made on the spot;
//! deliveries fail with the TLS reason by name in the delivery log (and are retried)
//! when the certificate is not trusted, is for another name or expired, and reach the
//! receiver with the CA configured or with `--webhook-insecure`.

use super::harness::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wa_emulator::engine::ClockMode;
use wa_emulator::server::tls::{Ca, ServerIdentity, Trust, Validity};
use wa_emulator::server::ServeOptions;

const VERIFY: &str = "wa-emulator-verify";

/// `pem` in a file of its own.
fn ca_file(name: &str, pem: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wa-emu-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// An emulator on the virtual clock with this trust and the callback URL set at start
/// (as `--webhook-url` does: a failed start-up handshake is only logged).
async fn emulator(trust: Trust, url: &str) -> Emu {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 16);
    opts.webhook_trust = trust;
    opts.webhook_timeout_ms = 5_000;
    opts.tenants.apps[0].webhook_url = Some(url.to_owned());
    Emu::start_with(opts).await
}

fn trusting(ca: &Ca, name: &str) -> Trust {
    Trust {
        ca_file: Some(ca_file(name, &ca.pem())),
        insecure: false,
    }
}

/// The attempts of the first delivery once it has `n` of them (bounded wait).
#[allow(clippy::disallowed_methods, reason = "bounded wait on real sockets")]
async fn attempts(emu: &Emu, n: usize) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let first = emu.webhooks().await.into_iter().next().expect("a delivery");
        let attempts = first["attempts"].as_array().cloned().unwrap_or_default();
        if attempts.len() >= n || Instant::now() > deadline {
            return (first, attempts);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A receiver with `identity` gets no webhook: the attempt and its retry both fail with
/// an error containing `reason`, the delivery stays due, and setting the URL through
/// the admin API fails its GET handshake with the same reason.
async fn refused(identity: &ServerIdentity, trust: Trust, reason: &str) {
    let rx = Receiver::start_tls(SECRET, VERIFY, identity).await;
    let emu = emulator(trust, &rx.url).await;
    emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    let (_, first) = attempts(&emu, 1).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let error = first[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("TLS: ") && error.contains(reason),
        "the log names the reason {reason:?}: {}",
        first[0]
    );
    assert_eq!(first[0]["status"], Value::Null);
    // Retried after the back-off, with the same reason.
    emu.advance(6.0).await;
    let (delivery, again) = attempts(&emu, 2).await;
    assert_eq!(again.len(), 2, "{delivery}");
    assert!(again[1]["error"]
        .as_str()
        .unwrap_or_default()
        .contains(reason));
    assert_ne!(delivery["state"], "delivered", "{delivery}");
    assert!(rx.received().is_empty());

    let (status, v) = emu.admin("PUT", "/webhook", json!({ "url": rx.url })).await;
    assert_eq!(status, 400, "{v}");
    let message = v.to_string();
    assert!(
        message.contains("handshake failed") && message.contains(reason),
        "the GET handshake names the reason {reason:?}: {v}"
    );
}

#[tokio::test]
async fn with_the_receivers_ca_trusted_webhooks_arrive_over_https() {
    let ca = Ca::generate("receiver CA").unwrap();
    let rx = Receiver::start_tls(SECRET, VERIFY, &ca.issue(&["127.0.0.1"]).unwrap()).await;
    assert!(rx.url.starts_with("https://127.0.0.1:"), "{}", rx.url);
    let emu = emulator(trusting(&ca, "good.pem"), &rx.url).await;
    // The GET handshake goes over TLS too.
    let v = emu.ok("PUT", "/webhook", json!({ "url": rx.url })).await;
    assert_eq!(v["verified"], true, "{v}");
    let id = emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].signature_ok, "signed as over http");
    assert_eq!(value(&got[0])["statuses"][0]["id"], id.as_str());
    let (delivery, tries) = attempts(&emu, 1).await;
    assert_eq!(tries[0]["status"], 200, "{delivery}");
}

#[tokio::test]
async fn without_the_ca_deliveries_fail_as_unknown_ca_and_are_retried() {
    let ca = Ca::generate("unknown CA").unwrap();
    refused(
        &ca.issue(&["127.0.0.1"]).unwrap(),
        Trust::default(),
        "unknown CA (certificate not signed by a trusted root; pass --webhook-ca FILE)",
    )
    .await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_name_mismatch() {
    let ca = Ca::generate("receiver CA").unwrap();
    refused(
        &ca.issue(&["receiver.invalid"]).unwrap(),
        trusting(&ca, "mismatch.pem"),
        "name mismatch (certificate is for receiver.invalid, not 127.0.0.1)",
    )
    .await;
}

#[tokio::test]
async fn an_expired_certificate_is_named_expired() {
    let ca = Ca::generate("receiver CA").unwrap();
    refused(
        &ca.issue_with(&["127.0.0.1"], Validity::Expired).unwrap(),
        trusting(&ca, "expired.pem"),
        "certificate expired",
    )
    .await;
}

#[tokio::test]
async fn insecure_trust_delivers_to_any_certificate() {
    let stranger = Ca::generate("nobody's CA").unwrap();
    let rx = Receiver::start_tls(
        SECRET,
        VERIFY,
        &stranger
            .issue_with(&["receiver.invalid"], Validity::Expired)
            .unwrap(),
    )
    .await;
    let insecure = Trust {
        ca_file: None,
        insecure: true,
    };
    let emu = emulator(insecure, &rx.url).await;
    emu.ok("PUT", "/webhook", json!({ "url": rx.url })).await;
    emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].signature_ok);
}

#[tokio::test]
async fn plain_http_receivers_are_unchanged_beside_a_ca_file() {
    let ca = Ca::generate("receiver CA").unwrap();
    let rx = Receiver::default_tenant().await;
    let emu = emulator(trusting(&ca, "plain.pem"), &rx.url).await;
    emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    assert_eq!(rx.wait_for(1).await.len(), 1);
}
