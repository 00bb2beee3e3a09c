//! Business-initiated calls over SIP end to end: a real `sipp` plays the business's SIP
//! server calling a WhatsApp user through the emulator's SIP gateway (Meta's
//! `wa.meta.vc`), with the scenario files `tests/sipp/business-*.xml` that check every
//! response they receive (the 407 challenge, 180, the 200 OK's SDP and BSUID header, the
//! refusals of cloud-api §8.6, the gateway's BYE with `x-wa-meta-call-duration`) and make
//! sipp exit non-zero when one is missing or wrong. The test acts as the user through the
//! admin API and checks the emulator's side.
//!
//! Debian's sipp has no TLS: over TLS, `stunnel4` in client mode carries sipp's TCP to the
//! gateway's TLS port, checking the gateway's certificate against the CA of
//! `GET /__emulator/sip/ca.pem` and the name `wa.meta.vc`, as a business's server would.
//!
//! Each test is skipped, with a visible reason, only when `sipp` (Debian package
//! `sip-tester`) or, for TLS, `stunnel4` is not on PATH and `CI` is unset; under `CI` a
//! missing tool fails it (`test_skip::because`).

use super::harness::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};

/// One sipp at a time: the machine is small.
pub(super) static SIPP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The SIP domain configured for the UK number, and the From host sipp sends.
pub(super) const SIP_HOST: &str = "sip.example.com";

pub(super) fn sipp_missing() -> bool {
    let found = std::process::Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        test_skip::because("`sipp` is not on PATH (install the Debian package sip-tester)");
    }
    !found
}

fn stunnel_missing() -> bool {
    let found = std::process::Command::new("stunnel4")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        test_skip::because("`stunnel4` is not on PATH (install the Debian package stunnel4)");
    }
    !found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    Udp,
    Tcp,
    /// sipp on TCP to stunnel4, stunnel4 on TLS to the gateway.
    Tls,
}

impl Transport {
    fn sipp_flag(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp | Transport::Tls => "t1",
        }
    }
}

fn free_port(transport: Transport) -> u16 {
    let addr = match transport {
        Transport::Udp => std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()),
        Transport::Tcp | Transport::Tls => {
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
        }
    };
    addr.expect("a free local port").port()
}

/// How the business's offer keys SRTP, and what the answer must carry.
#[derive(Debug, Clone, Copy)]
pub(super) enum Keying {
    Dtls,
    Sdes,
}

impl Keying {
    /// The answer scenario's `offer_*` and `exp_*` variables.
    pub(super) fn vars(self) -> Vec<(&'static str, String)> {
        let (proto, key, fingerprint, crypto) = match self {
            Keying::Dtls => (
                "UDP/TLS/RTP/SAVPF",
                "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF",
                "a=fingerprint:sha-256 ",
                "",
            ),
            Keying::Sdes => (
                "RTP/SAVP",
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
                "",
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
            ),
        };
        vec![
            ("offer_proto", proto.to_owned()),
            ("offer_key", key.to_owned()),
            ("exp_fingerprint", fingerprint.to_owned()),
            ("exp_crypto", crypto.to_owned()),
        ]
    }
}

/// stunnel4 in client mode: plain TCP accepted on `port`, carried over TLS to `gateway`,
/// whose certificate must chain to `ca_file` and name `wa.meta.vc`. Logs to
/// `dir/stunnel.log`.
fn start_stunnel_client(dir: &Path, port: u16, gateway: &str, ca_file: &Path) -> Child {
    let conf = dir.join("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = info\noutput = {}\n\n[sip]\nclient = yes\naccept = 127.0.0.1:{port}\nconnect = {gateway}\nCAfile = {}\nverifyChain = yes\ncheckHost = wa.meta.vc\nsni = wa.meta.vc\n",
            dir.join("stunnel.log").display(),
            ca_file.display(),
        ),
    )
    .unwrap();
    Command::new("stunnel4")
        .arg(&conf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stunnel4")
}

/// Waits (bounded) until stunnel4 listens on `port`.
async fn wait_listening(port: u16, dir: &Path) {
    for _ in 0..250 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("stunnel4 never listened on {port}:\n{}", logs(dir));
}

/// Where sipp sends the call: the gateway's UDP/TCP address, and its TLS address with the
/// CA to check it against.
pub(super) struct Gateway {
    pub(super) addr: String,
    pub(super) tls: String,
    pub(super) ca_file: PathBuf,
}

/// A running sipp UAC for one call (through stunnel4 for TLS), and the folder it logs to.
pub(super) struct Business {
    pub(super) child: Child,
    _stunnel: Option<Child>,
    pub(super) dir: PathBuf,
}

impl Business {
    /// sipp calls `user` through `gateway` as the UK number, answering the 407 with
    /// `password`.
    pub(super) async fn call(
        scenario: &str,
        transport: Transport,
        gateway: &Gateway,
        user: &str,
        password: &str,
        vars: &[(&str, String)],
    ) -> Business {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wa-emulator-it-sipp-uac-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let screen = std::fs::File::create(dir.join("screen.log")).unwrap();
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        let port = free_port(transport);
        let (target, stunnel) = if transport == Transport::Tls {
            let front = free_port(Transport::Tcp);
            let child = start_stunnel_client(&dir, front, &gateway.tls, &gateway.ca_file);
            wait_listening(front, &dir).await;
            (format!("127.0.0.1:{front}"), Some(child))
        } else {
            (gateway.addr.clone(), None)
        };
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(scenario)
            .arg(&target)
            .args(["-s", user, "-au", DISPLAY2, "-ap", password])
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
            .args(["-t", transport.sipp_flag()])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join("errors.log"))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join("messages.log"))
            .arg("-trace_logs")
            .arg("-log_file")
            .arg(dir.join("logs.log"))
            .args(["-set", "business", DISPLAY2, "-set", "from_host", SIP_HOST]);
        for (name, value) in vars {
            cmd.arg("-set").arg(name).arg(value);
        }
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(screen.try_clone().unwrap())
            .stderr(screen)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sipp");
        Business {
            child,
            _stunnel: stunnel,
            dir,
        }
    }

    /// Waits for sipp to finish its call. `Ok` holds what the scenario logged; `Err`
    /// carries sipp's logs.
    pub(super) async fn finish(mut self) -> Result<String, String> {
        let status = tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await;
        let result = match status {
            Ok(Ok(s)) if s.success() => {
                Ok(std::fs::read_to_string(self.dir.join("logs.log")).unwrap_or_default())
            }
            Ok(Ok(s)) => Err(format!("sipp exited with {s}\n{}", logs(&self.dir))),
            Ok(Err(e)) => Err(format!("waiting for sipp: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(format!("sipp did not finish\n{}", logs(&self.dir)))
            }
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        result
    }
}

pub(super) fn logs(dir: &Path) -> String {
    [
        "errors.log",
        "messages.log",
        "logs.log",
        "screen.log",
        "stunnel.log",
    ]
    .iter()
    .map(|name| {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let tail: String = text
            .chars()
            .rev()
            .take(6000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("--- sipp {name} ---\n{tail}")
    })
    .collect::<Vec<_>>()
    .join("\n")
}

/// An emulator whose UK number has SIP with [`SIP_HOST`]; answers it, the gateway from
/// `GET /__emulator/config` (its TLS CA from `GET /__emulator/sip/ca.pem`), and the
/// number's SIP password as `GET /settings?include_sip_credentials=true` reveals it.
async fn emulator_with_sip() -> (Emu, Gateway, String) {
    let emu = Emu::start().await;
    let settings = json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":SIP_HOST,"port":5061}]}}});
    let (s, v) = emu
        .graph("POST", &format!("/{PHONE2}/settings"), Some(settings))
        .await;
    assert_eq!(s, 200, "enable SIP: {v}");
    let (_, g) = emu
        .graph(
            "GET",
            &format!("/{PHONE2}/settings?include_sip_credentials=true"),
            None,
        )
        .await;
    let password = g["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("no sip_user_password in {g}"))
        .to_owned();
    let config = emu.ok("GET", "/config", Value::Null).await;
    let gateway = config["sip"]["udp"]
        .as_str()
        .unwrap_or_else(|| panic!("no sip.udp in {config}"))
        .to_owned();
    assert_eq!(
        config["sip"]["tcp"],
        gateway.as_str(),
        "UDP and TCP share a port"
    );
    let (status, pem) = emu.raw("GET", "/__emulator/sip/ca.pem", &[], "").await;
    assert_eq!(status, 200, "{pem}");
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let ca_file = std::env::temp_dir().join(format!(
        "wa-emulator-it-gateway-ca-{}-{}.pem",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&ca_file, pem.as_str().unwrap()).unwrap();
    let gateway = Gateway {
        addr: gateway,
        tls: config["sip"]["tls"].as_str().unwrap().to_owned(),
        ca_file,
    };
    (emu, gateway, password)
}

async fn allow_calls(emu: &Emu) {
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
}

/// The user's BSUID, as Meta's 200 OK carries it (cloud-api §8.5).
async fn user_id(emu: &Emu) -> String {
    let users = emu.ok("GET", "/users", Value::Null).await;
    users["users"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["wa_id"] == USER))
        .and_then(|u| u["user_id"].as_str())
        .unwrap_or_else(|| panic!("no user_id for {USER} in {users}"))
        .to_owned()
}

async fn calls(emu: &Emu) -> Vec<Value> {
    let v = emu.ok("GET", "/calls", Value::Null).await;
    v["calls"].as_array().cloned().unwrap_or_default()
}

/// Waits (bounded; SIP runs on real timers) for the one call to have `status`.
async fn wait_for_call(emu: &Emu, status: &str, sipp: &mut Business) -> Value {
    let mut last = Vec::new();
    for _ in 0..750 {
        last = calls(emu).await;
        if let Some(c) = last.iter().find(|c| c["status"] == status) {
            return c.clone();
        }
        if let Ok(Some(exit)) = sipp.child.try_wait() {
            panic!(
                "sipp exited ({exit}) before a call was {status}: {last:?}\n{}",
                logs(&sipp.dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no call became {status}: {last:?}\n{}", logs(&sipp.dir));
}

/// The first lines of the SIP messages the emulator logged for `call`, `>>` sent.
async fn sip_log(emu: &Emu, call: &str) -> Vec<String> {
    let v = emu.ok("GET", "/sip", Value::Null).await;
    v["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["call_id"] == call)
        .map(|m| {
            let dir = if m["outgoing"] == true { ">>" } else { "<<" };
            format!("{dir} {}", m["first_line"].as_str().unwrap_or(""))
        })
        .collect()
}

async fn assert_no_calls_webhooks(emu: &Emu) {
    let calls: Vec<Value> = emu
        .webhooks()
        .await
        .into_iter()
        .filter(|d| d["field"] == "calls")
        .map(|d| d["event"].clone())
        .collect();
    assert!(calls.is_empty(), "calls webhooks in SIP mode: {calls:?}");
}

/// sipp calls, the user answers, talks 37 s on the emulator's clock (17 s with SDES) and
/// hangs up: the gateway's BYE carries the duration and the wacid (sipp checks both,
/// expecting `exp_duration`).
async fn answered_then_the_user_hangs_up(
    transport: Transport,
    keying: Keying,
    exp_duration: &str,
) -> Result<(), String> {
    let (emu, gateway, password) = emulator_with_sip().await;
    allow_calls(&emu).await;
    let mut vars = vec![
        ("exp_user_id", user_id(&emu).await),
        ("exp_duration", exp_duration.to_owned()),
        ("hangup", "user".to_owned()),
    ];
    vars.extend(keying.vars());
    let mut sipp = Business::call(
        "business-call-answered.xml",
        transport,
        &gateway,
        USER,
        &password,
        &vars,
    )
    .await;
    let call = wait_for_call(&emu, "ringing", &mut sipp).await;
    let id = call["id"].as_str().unwrap().to_owned();
    assert_eq!(call["direction"], "BusinessInitiated", "{call}");
    assert_eq!(call["phone_number_id"], PHONE2);
    assert_eq!(call["wa_id"], USER);
    assert_eq!(call["via_sip"], true);
    assert!(call["offer_sdp"]
        .as_str()
        .unwrap()
        .contains("a=setup:actpass"));
    emu.ok("POST", &format!("/calls/{id}/answer"), json!({}))
        .await;
    // sipp's SDES offer names its address, so the user's RTP endpoint starts and, sipp
    // sending no audio, 138021 would end the call at 20 s; its DTLS offer has no
    // candidate and stays signalling only.
    let talk = match keying {
        Keying::Dtls => 37.0,
        Keying::Sdes => 17.0,
    };
    emu.advance(talk).await;
    emu.ok("POST", &format!("/calls/{id}/hangup"), json!({}))
        .await;
    let logged = sipp.finish().await?;
    assert!(
        logged.contains(&format!("wacid={id}")),
        "the BYE names call {id}: {logged}"
    );
    let ended = calls(&emu).await;
    assert_eq!(ended[0]["status"], "completed", "{ended:?}");
    assert_eq!(ended[0]["duration"], talk as u64);
    // The whole exchange is in the call's SIP log, challenge included.
    let log = sip_log(&emu, &id).await;
    for line in [
        ">> SIP/2.0 407 Proxy Authentication Required",
        ">> SIP/2.0 180 Ringing",
        ">> SIP/2.0 200 OK",
    ] {
        assert!(log.iter().any(|l| l == line), "{line} in {log:?}");
    }
    assert!(log.iter().any(|l| l.starts_with(">> BYE sip:+")), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("<< INVITE sip:+"))
            .count(),
        2,
        "{log:?}"
    );
    assert_no_calls_webhooks(&emu).await;
    Ok(())
}

#[tokio::test]
async fn a_business_calls_over_udp_and_the_user_hangs_up() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    answered_then_the_user_hangs_up(Transport::Udp, Keying::Dtls, "37")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_business_calls_over_tcp_and_the_user_hangs_up() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    answered_then_the_user_hangs_up(Transport::Tcp, Keying::Dtls, "37")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_business_calls_over_tls_with_sdes_and_the_user_hangs_up() {
    if sipp_missing() || stunnel_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    answered_then_the_user_hangs_up(Transport::Tls, Keying::Sdes, "17")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn the_answer_scenario_rejects_a_wrong_duration() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let err = answered_then_the_user_hangs_up(Transport::Udp, Keying::Dtls, "38")
        .await
        .expect_err("sipp accepted a wrong x-wa-meta-call-duration");
    assert!(err.contains("exp_duration"), "{err}");
}

#[tokio::test]
async fn the_business_hangs_up_with_bye() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let (emu, gateway, password) = emulator_with_sip().await;
    allow_calls(&emu).await;
    let mut vars = vec![
        ("exp_user_id", user_id(&emu).await),
        ("exp_duration", "0".to_owned()),
        ("hangup", "business".to_owned()),
    ];
    vars.extend(Keying::Dtls.vars());
    let mut sipp = Business::call(
        "business-call-answered.xml",
        Transport::Udp,
        &gateway,
        USER,
        &password,
        &vars,
    )
    .await;
    let call = wait_for_call(&emu, "ringing", &mut sipp).await;
    let id = call["id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{id}/answer"), json!({}))
        .await;
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    let ended = calls(&emu).await;
    assert_eq!(ended[0]["status"], "completed", "{ended:?}");
    // The user cannot hang up a call that is over.
    let (s, v) = emu
        .admin("POST", &format!("/calls/{id}/hangup"), json!({}))
        .await;
    assert_eq!(s, 409, "{v}");
    assert_no_calls_webhooks(&emu).await;
}

#[tokio::test]
async fn the_user_declines_with_486() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let (emu, gateway, password) = emulator_with_sip().await;
    allow_calls(&emu).await;
    let mut sipp = Business::call(
        "business-call-declined.xml",
        Transport::Tcp,
        &gateway,
        USER,
        &password,
        &[],
    )
    .await;
    let call = wait_for_call(&emu, "ringing", &mut sipp).await;
    let id = call["id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{id}/decline"), json!({}))
        .await;
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(calls(&emu).await[0]["status"], "declined");
    assert_no_calls_webhooks(&emu).await;
}

/// sipp's INVITE is refused with a 403 of cloud-api §8.6; no call starts.
async fn refused(
    emu: &Emu,
    gateway: &Gateway,
    password: &str,
    from_host: &str,
    reason: &str,
    warning: &str,
) {
    let vars = [
        ("from_host", from_host.to_owned()),
        ("exp_reason", reason.to_owned()),
        ("exp_warning", warning.to_owned()),
    ];
    let sipp = Business::call(
        "business-call-refused.xml",
        Transport::Udp,
        gateway,
        USER,
        password,
        &vars,
    )
    .await;
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(calls(emu).await.is_empty());
}

#[tokio::test]
async fn invites_without_permission_from_elsewhere_or_with_a_wrong_password_get_403() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let (emu, gateway, password) = emulator_with_sip().await;
    let no_permission =
        "No Approved Call Permission Found: No approved call permission from the recipient";
    refused(&emu, &gateway, &password, SIP_HOST, no_permission, "").await;
    allow_calls(&emu).await;
    let mismatch = format!("SIP server evil.example.org from INVITE does not match any SIP server configured for phone number id {PHONE2}");
    refused(
        &emu,
        &gateway,
        &password,
        "evil.example.org",
        &mismatch,
        &mismatch,
    )
    .await;
    refused(
        &emu,
        &gateway,
        "not-the-password",
        SIP_HOST,
        "Invalid digest response",
        "",
    )
    .await;
    assert_no_calls_webhooks(&emu).await;
}

#[tokio::test]
async fn register_is_refused_over_udp_and_tcp() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let (_emu, gateway, password) = emulator_with_sip().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let sipp = Business::call(
            "business-register.xml",
            transport,
            &gateway,
            USER,
            &password,
            &[],
        )
        .await;
        sipp.finish()
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
    }
}

#[tokio::test]
async fn the_config_names_the_gateway_and_its_ca_is_served() {
    let emu = Emu::start().await;
    let config = emu.ok("GET", "/config", Value::Null).await;
    let sip = &config["sip"];
    for key in ["udp", "tcp", "tls"] {
        let addr = sip[key]
            .as_str()
            .unwrap_or_else(|| panic!("sip.{key} in {config}"));
        assert!(addr.starts_with("127.0.0.1:"), "{key}: {addr}");
    }
    assert_ne!(sip["udp"], sip["tls"], "TLS listens on a port of its own");
    let pem = sip["ca_pem"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let (status, served) = emu.raw("GET", "/__emulator/sip/ca.pem", &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(served.as_str(), Some(pem));
}
