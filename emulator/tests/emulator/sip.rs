//! SIP end to end: the whole emulator places user-initiated calls to a real `sipp` playing
//! the business's SIP server on loopback, with the scenario files in `tests/sipp/` that
//! check every header they receive and make sipp exit non-zero when one is missing or wrong.
//!
//! The emulator makes the wacid up at the tap, after sipp started, so the `emulator-*`
//! scenarios check its form and consistency and log it (`wacid=…`); the test compares the
//! logged value with the call id the emulator answered.
//!
//! Debian's sipp has no TLS: for a TLS SIP server, `stunnel4` terminates TLS with a
//! certificate of a CA made for the test run and forwards plain TCP to sipp, so the
//! emulator's TLS client meets a real TLS peer and sipp still checks every header.
//!
//! Each test is skipped, with a visible reason, only when `sipp` (Debian package
//! `sip-tester`) or, for TLS, `stunnel4` is not on PATH and `CI` is unset; under `CI` a
//! missing tool fails it (`test_skip::because`).

use super::harness::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::process::{Child, Command};
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

/// One sipp at a time: each is a whole SIP server, and the machine is small.
static SIPP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BUSINESS: &str = "15550783881";

fn sipp_missing() -> bool {
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
enum Transport {
    Udp,
    Tcp,
    /// stunnel4 terminating TLS in front of sipp on TCP.
    Tls,
}

impl Transport {
    /// The `transport` of the number's SIP server settings.
    fn setting(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The emulator for calls over this transport: for TLS it trusts the test CA
    /// (`--sip-ca`) unless `trust_ca` is false.
    fn emulator_options(self, trust_ca: bool) -> ServeOptions {
        let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
        if self == Transport::Tls && trust_ca {
            opts.sip_trust.ca_file = Some(test_ca().ca_file.clone());
        }
        opts
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

fn port_taken(transport: Transport, port: u16) -> bool {
    match transport {
        Transport::Udp => std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
        Transport::Tcp | Transport::Tls => {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
        }
    }
}

/// The business's certificate, for 127.0.0.1, from a CA made once per test run; the CA's
/// PEM is the file `--sip-ca` names.
struct TestCa {
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("wa-emulator-it-sip-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = wa_emulator::server::tls::Ca::generate("business test CA").unwrap();
        let leaf = ca.issue(&["127.0.0.1"]).unwrap();
        let files = TestCa {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
        };
        std::fs::write(&files.ca_file, ca.pem()).unwrap();
        std::fs::write(&files.cert_file, &leaf.cert_pem).unwrap();
        std::fs::write(&files.key_file, &leaf.key_pem).unwrap();
        files
    })
}

/// stunnel4 in server mode: TLS on `port` with the test CA's certificate, forwarded as
/// plain TCP to sipp on `sipp_port`. Logs to `dir/stunnel.log`.
fn start_stunnel(dir: &Path, port: u16, sipp_port: u16) -> Child {
    let ca = test_ca();
    let conf = dir.join("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = info\noutput = {}\n\n[sip]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{sipp_port}\ncert = {}\nkey = {}\n",
            dir.join("stunnel.log").display(),
            ca.cert_file.display(),
            ca.key_file.display(),
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

/// A running sipp UAS for one call (behind stunnel4 for TLS), and the folder it logs to.
struct Sipp {
    child: Child,
    /// The TLS front of a TLS server.
    stunnel: Option<Child>,
    dir: PathBuf,
    /// Where the emulator reaches the server: stunnel's port for TLS, else sipp's.
    port: u16,
}

impl Sipp {
    /// `port`: a free port of `transport`, from [`free_port`]; for TLS stunnel4's, with
    /// sipp on another.
    async fn start(
        scenario: &str,
        transport: Transport,
        port: u16,
        vars: &[(&str, String)],
    ) -> Sipp {
        let sipp_port = match transport {
            Transport::Tls => free_port(Transport::Tcp),
            Transport::Udp | Transport::Tcp => port,
        };
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wa-emulator-it-sipp-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let screen = std::fs::File::create(dir.join("screen.log")).unwrap();
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-p", &sipp_port.to_string(), "-m", "1"])
            .args([
                "-t",
                if transport == Transport::Udp {
                    "u1"
                } else {
                    "t1"
                },
            ])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join("errors.log"))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join("messages.log"))
            .arg("-trace_logs")
            .arg("-log_file")
            .arg(dir.join("logs.log"));
        for (name, value) in vars {
            cmd.arg("-set").arg(name).arg(value);
        }
        let mut child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(screen.try_clone().unwrap())
            .stderr(screen)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sipp");
        let mut stunnel = None;
        for _ in 0..250 {
            if stunnel.is_none() && port_taken(transport, sipp_port) {
                if transport != Transport::Tls {
                    return Sipp {
                        child,
                        stunnel: None,
                        dir,
                        port,
                    };
                }
                stunnel = Some(start_stunnel(&dir, port, sipp_port));
            }
            if let Some(front) = stunnel.as_mut() {
                if port_taken(transport, port) {
                    return Sipp {
                        child,
                        stunnel,
                        dir,
                        port,
                    };
                }
                if let Ok(Some(status)) = front.try_wait() {
                    panic!("stunnel4 exited at start ({status}):\n{}", logs(&dir));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("sipp exited at start ({status}):\n{}", logs(&dir));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "sipp (or stunnel4) never listened on {port}:\n{}",
            logs(&dir)
        );
    }

    /// Stops sipp and stunnel4 when no call is to reach them; answers their logs.
    async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        if let Some(front) = self.stunnel.as_mut() {
            let _ = front.kill().await;
        }
        let text = logs(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        text
    }

    /// Waits for sipp to finish its one call. `Ok` holds the wacids the scenario logged;
    /// `Err` carries sipp's logs.
    async fn finish(mut self) -> Result<Vec<String>, String> {
        let status = tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await;
        let logged: Vec<String> = std::fs::read_to_string(self.dir.join("logs.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("wacid=").map(str::to_owned))
            .collect();
        if let Some(front) = self.stunnel.as_mut() {
            let _ = front.kill().await;
        }
        let result = match status {
            Ok(Ok(s)) if s.success() => Ok(logged),
            Ok(Ok(s)) => Err(format!("sipp exited with {s}\n{}", logs(&self.dir))),
            Ok(Err(e)) => Err(format!("waiting for sipp: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(format!("sipp did not finish\n{}", logs(&self.dir)))
            }
        };
        // The logs live on in the error text.
        let _ = std::fs::remove_dir_all(&self.dir);
        result
    }
}

fn logs(dir: &Path) -> String {
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

/// Enables SIP on the number with sipp's address; answers the SIP password that
/// `GET /settings?include_sip_credentials=true` reveals.
async fn enable_sip(
    emu: &Emu,
    port: u16,
    transport: Transport,
    uri_params: Option<Value>,
) -> String {
    let mut server = json!({"hostname":"127.0.0.1","port":port,"transport":transport.setting()});
    if let Some(p) = uri_params {
        server["request_uri_user_params"] = p;
    }
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"sip":{"status":"ENABLED","servers":[server]}}})),
        )
        .await;
    assert_eq!(s, 200, "enable SIP: {v}");
    let (_, g) = emu
        .graph(
            "GET",
            &format!("/{PHONE}/settings?include_sip_credentials=true"),
            None,
        )
        .await;
    g["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("no sip_user_password in {g}"))
        .to_owned()
}

/// The call as `GET /__emulator/calls` shows it.
async fn call_state(emu: &Emu, call_id: &str) -> Value {
    let (_, v) = emu.admin("GET", "/calls", Value::Null).await;
    v["calls"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == call_id).cloned())
        .unwrap_or(Value::Null)
}

/// Waits (bounded, real time: SIP runs on real timers) until the call has `status`.
async fn wait_status(
    emu: &Emu,
    call_id: &str,
    status: &str,
    sipp: &mut Sipp,
) -> Result<Value, String> {
    let mut last = Value::Null;
    for _ in 0..750 {
        last = call_state(emu, call_id).await;
        if last["status"] == status {
            return Ok(last);
        }
        if let Ok(Some(exit)) = sipp.child.try_wait() {
            return Err(format!(
                "sipp exited ({exit}) while the call was {}; SIP log: {}\n{}",
                last["status"],
                sip_log(emu, call_id).await,
                logs(&sipp.dir)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "the call never became {status}: {last}; SIP log: {}\n{}",
        sip_log(emu, call_id).await,
        logs(&sipp.dir)
    ))
}

/// The emulator's own SIP log of one call, as `(outgoing, first_line, raw)`.
async fn sip_messages(emu: &Emu, call_id: &str) -> Vec<(bool, String, String)> {
    let (_, v) = emu.admin("GET", "/sip", Value::Null).await;
    v["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["call_id"] == call_id)
        .map(|m| {
            (
                m["outgoing"].as_bool().unwrap_or(false),
                m["first_line"].as_str().unwrap_or("").to_owned(),
                m["raw"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn sip_log(emu: &Emu, call_id: &str) -> String {
    sip_messages(emu, call_id)
        .await
        .iter()
        .map(|(out, line, _)| format!("{} {line}", if *out { ">>" } else { "<<" }))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// While SIP is enabled, calls are signalled over SIP only: no `calls` webhook at all.
async fn assert_no_calls_webhooks(emu: &Emu) {
    let calls: Vec<Value> = emu
        .webhooks()
        .await
        .into_iter()
        .filter(|d| d["field"] == "calls")
        .map(|d| d["event"].clone())
        .collect();
    assert!(
        calls.is_empty(),
        "calls webhooks with SIP enabled: {calls:?}"
    );
}

/// `/calls` is refused with 131055 for a SIP-enabled number, whatever the action.
async fn assert_calls_api_refused(emu: &Emu, call_id: &str) {
    for action in [
        json!({"messaging_product":"whatsapp","call_id":call_id,"action":"accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}}),
        json!({"messaging_product":"whatsapp","to":USER,"action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
    ] {
        let (s, v) = emu
            .graph("POST", &format!("/{PHONE}/calls"), Some(action))
            .await;
        assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(131055)), "{v}");
    }
}

/// How the user starts the call.
#[derive(Clone, Copy)]
enum Start {
    /// Taps a `voice_call` button sent with this payload.
    Tap(&'static str),
    /// Opens `wa.me/call/<number>?biz_payload=…`.
    Link(&'static str),
    /// The call icon.
    Native,
}

/// Starts the call; answers its id.
async fn start_call(emu: &Emu, start: Start) -> String {
    let v = match start {
        Start::Tap(payload) => {
            let mid = emu
                .send(voice_call(USER, json!({ "payload": payload })))
                .await;
            emu.ok(
                "POST",
                &format!("/users/{USER}/tap"),
                json!({ "message_id": mid }),
            )
            .await
        }
        Start::Link(payload) => {
            emu.ok(
                "POST",
                &format!("/users/{USER}/open-link"),
                json!({ "url": format!("https://wa.me/call/{BUSINESS}?biz_payload={payload}") }),
            )
            .await
        }
        Start::Native => {
            emu.ok("POST", &format!("/users/{USER}/call"), json!({}))
                .await
        }
    };
    v["call_id"].as_str().unwrap().to_owned()
}

struct Answered {
    transport: Transport,
    /// The caller's WhatsApp version (payload headers only from 2.25.27).
    version: &'static str,
    start: Start,
    /// `request_uri_user_params` of the SIP server settings.
    uri_params: Option<Value>,
    duration: u64,
    exp_cta: &'static str,
    exp_deeplink: &'static str,
    /// The caller's username and parent BSUID, and how the emulator spells their headers.
    identity: Identity,
    /// The number's `srtp_key_exchange_protocol` is SDES: the offer carries an
    /// `a=crypto` key instead of a DTLS fingerprint.
    sdes: bool,
}

/// Who the caller is beyond their number (cloud-api §8.5, §13).
#[derive(Clone, Copy)]
struct Identity {
    username: Option<&'static str>,
    parent_user_id: Option<&'static str>,
    /// `x-wa-meta-username` and `x-wa-meta-parent-user-id` (integrators' spelling)
    /// instead of Meta's page's `x-wa-meta-user-name` and `x-wa_meta-parent-user-id`.
    dash_spelling: bool,
    /// sipp is told to expect no username or parent header whatever the caller has: a
    /// wrong expectation, to show that the scenario checks them.
    expect_none: bool,
}

/// A caller with no username and no parent BSUID, headers spelled as Meta's page does.
const PLAIN: Identity = Identity {
    username: None,
    parent_user_id: None,
    dash_spelling: false,
    expect_none: false,
};

/// sipp answers the call; `duration` seconds pass on the emulator's clock; the user hangs
/// up. sipp checks the INVITE and the BYE; the test checks the emulator's side.
async fn answered_then_user_hangs_up(case: Answered) -> Result<(), String> {
    let _one = SIPP.lock().await;
    let id = case.identity;
    let mut opts = case.transport.emulator_options(true);
    if id.dash_spelling {
        let name = |s: &str| serde_json::from_value(json!(s)).unwrap();
        opts.behaviour.sip_username_header = name("x-wa-meta-username");
        opts.behaviour.sip_parent_user_id_header = name("x-wa-meta-parent-user-id");
    }
    let emu = Emu::start_with(opts).await;
    let user = emu
        .ok(
            "POST",
            "/users",
            json!({"wa_id":USER,"platform":"android","version":case.version,"name":"Ana",
                   "username":id.username,"parent_user_id":id.parent_user_id}),
        )
        .await;
    // The profile name never travels as the username; each header under one spelling.
    let spelled = |dash: bool, v: Option<&str>| {
        if dash == id.dash_spelling && !id.expect_none {
            v.unwrap_or_default().to_owned()
        } else {
            String::new()
        }
    };
    let port = free_port(case.transport);
    let user_params = case
        .uri_params
        .as_ref()
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!(";{k}={}", v.as_str().unwrap()))
                .collect::<String>()
        })
        .unwrap_or_default();
    let uri_transport = match case.transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    };
    let vars = [
        (
            "exp_ruri",
            format!("sip:+{BUSINESS}{user_params}@127.0.0.1:{port}{uri_transport}"),
        ),
        ("exp_from", format!("\"{USER}\" <sip:+{USER}@wa.meta.vc>")),
        ("exp_to", format!("<sip:+{BUSINESS}@127.0.0.1>")),
        ("exp_transport", case.transport.via().to_owned()),
        ("exp_phone_number_id", PHONE.to_owned()),
        ("exp_cta", case.exp_cta.to_owned()),
        ("exp_deeplink", case.exp_deeplink.to_owned()),
        ("exp_user_id", user["user_id"].as_str().unwrap().to_owned()),
        ("exp_user_name", spelled(false, id.username)),
        ("exp_username", spelled(true, id.username)),
        ("exp_parent_user_id", spelled(false, id.parent_user_id)),
        ("exp_parent_user_id_dash", spelled(true, id.parent_user_id)),
        (
            "exp_proto",
            if case.sdes {
                "RTP/SAVP"
            } else {
                "UDP/TLS/RTP/SAVPF"
            }
            .to_owned(),
        ),
        (
            "exp_crypto",
            if case.sdes {
                "AES_CM_128_HMAC_SHA1_80"
            } else {
                ""
            }
            .to_owned(),
        ),
        (
            "exp_fingerprint",
            if case.sdes { "" } else { "fingerprint" }.to_owned(),
        ),
        ("exp_duration", case.duration.to_string()),
    ];
    let mut sipp = Sipp::start(
        "emulator-answer-then-user-hangs-up.xml",
        case.transport,
        port,
        &vars,
    )
    .await;
    enable_sip(&emu, port, case.transport, case.uri_params.clone()).await;
    if case.sdes {
        let (s, v) = emu
            .graph(
                "POST",
                &format!("/{PHONE}/settings"),
                Some(json!({"calling":{"srtp_key_exchange_protocol":"SDES"}})),
            )
            .await;
        assert_eq!(s, 200, "SDES keying: {v}");
    }
    let call_id = start_call(&emu, case.start).await;
    let answered = match wait_status(&emu, &call_id, "active", &mut sipp).await {
        Ok(c) => c,
        Err(e) => {
            let _ = sipp.finish().await;
            return Err(e);
        }
    };
    assert!(
        answered["answer_sdp"]
            .as_str()
            .is_some_and(|s| s.contains("m=audio 40000 RTP/AVP 0")),
        "the SDP answer of sipp's 200 OK: {answered}"
    );
    assert_calls_api_refused(&emu, &call_id).await;
    // The talk time is the emulator's clock, not SIP's real-time timers.
    emu.advance(case.duration as f64).await;
    let v = emu
        .ok("POST", &format!("/calls/{call_id}/hangup"), Value::Null)
        .await;
    assert_eq!(v["duration"], case.duration, "{v}");
    let logged = sipp.finish().await?;
    assert_eq!(logged, vec![call_id.clone()], "the wacid sipp received");
    let ended = call_state(&emu, &call_id).await;
    assert_eq!(
        (ended["status"].clone(), ended["duration"].clone()),
        (json!("completed"), json!(case.duration)),
        "{ended}"
    );
    // The admin API shows the emulator's side of the dialog.
    let sent = sip_messages(&emu, &call_id).await;
    let lines: Vec<(bool, &str)> = sent
        .iter()
        .map(|(o, l, _)| (*o, l.split(' ').next().unwrap_or("")))
        .collect();
    for wanted in [(true, "INVITE"), (true, "ACK"), (true, "BYE")] {
        assert!(lines.contains(&wanted), "{wanted:?} in {lines:?}");
    }
    let bye = sent
        .iter()
        .find(|(o, l, _)| *o && l.starts_with("BYE "))
        .unwrap();
    assert!(
        bye.2
            .contains(&format!("x-wa-meta-call-duration: {}\r\n", case.duration)),
        "{}",
        bye.2
    );
    assert_no_calls_webhooks(&emu).await;
    Ok(())
}

fn must(r: Result<(), String>) {
    r.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_button_tap_sends_the_cta_payload_and_the_bye_carries_the_duration_over_udp() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Udp,
            version: "2.25.30",
            start: Start::Tap("P-order-4471"),
            uri_params: Some(json!({"tgrp":"wacall","trunk-context":"byoc.example.com"})),
            duration: 42,
            exp_cta: "P-order-4471",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: false,
        })
        .await,
    );
}

#[tokio::test]
async fn a_button_tap_sends_the_cta_payload_and_the_bye_carries_the_duration_over_tcp() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Tcp,
            version: "2.25.27",
            start: Start::Tap("P"),
            uri_params: None,
            duration: 125,
            exp_cta: "P",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: false,
        })
        .await,
    );
}

#[tokio::test]
async fn a_deep_link_sends_the_deeplink_payload() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Udp,
            version: "2.25.30",
            start: Start::Link("Q"),
            uri_params: None,
            duration: 3,
            exp_cta: "",
            exp_deeplink: "Q",
            identity: PLAIN,
            sdes: false,
        })
        .await,
    );
}

#[tokio::test]
async fn a_native_call_sends_no_payload_header() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Tcp,
            version: "2.25.30",
            start: Start::Native,
            uri_params: None,
            duration: 0,
            exp_cta: "",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: false,
        })
        .await,
    );
}

/// cloud-api §8.4: with `srtp_key_exchange_protocol` SDES the INVITE's offer is
/// `RTP/SAVP` with an `a=crypto` line and no DTLS fingerprint (sipp checks all three; the
/// other cases check the DTLS offer's protocol and fingerprint).
#[tokio::test]
async fn with_sdes_keying_the_offer_carries_a_crypto_line_instead_of_a_fingerprint() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Tcp,
            version: "2.25.30",
            start: Start::Native,
            uri_params: None,
            duration: 4,
            exp_cta: "",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: true,
        })
        .await,
    );
}

/// cloud-api §8.2–§8.4 as Meta sends it: a TLS connection to the business's server (a
/// real TLS peer, stunnel4, checking nothing of ours but presenting a certificate the
/// emulator checks against `--sip-ca`), `transport=tls` in the Request-URI, Via
/// `SIP/2.0/TLS`, the SDES key, and the BYE with the duration; sipp checks them all.
#[tokio::test]
async fn a_call_over_tls_reaches_the_business_with_transport_tls_and_the_sdes_key() {
    if sipp_missing() || stunnel_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Tls,
            version: "2.25.30",
            start: Start::Tap("P-tls-1"),
            uri_params: Some(json!({"tgrp":"wacall"})),
            duration: 61,
            exp_cta: "P-tls-1",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: true,
        })
        .await,
    );
}

#[tokio::test]
async fn a_call_over_tls_with_dtls_keying_offers_a_fingerprint() {
    if sipp_missing() || stunnel_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Tls,
            version: "2.25.30",
            start: Start::Native,
            uri_params: None,
            duration: 8,
            exp_cta: "",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: false,
        })
        .await,
    );
}

#[tokio::test]
async fn a_2_25_26_client_sends_no_payload_header_even_from_a_button_with_one() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Udp,
            version: "2.25.26",
            start: Start::Tap("P"),
            uri_params: None,
            duration: 9,
            exp_cta: "",
            exp_deeplink: "",
            identity: PLAIN,
            sdes: false,
        })
        .await,
    );
}

/// The scenario is not a rubber stamp: a payload header it expects but does not get
/// (a 2.25.26 client) fails sipp.
#[tokio::test]
async fn the_scenario_fails_when_an_expected_payload_header_is_missing() {
    if sipp_missing() {
        return;
    }
    let err = answered_then_user_hangs_up(Answered {
        transport: Transport::Udp,
        version: "2.25.26",
        start: Start::Tap("P"),
        uri_params: None,
        duration: 1,
        exp_cta: "P",
        exp_deeplink: "",
        identity: PLAIN,
        sdes: false,
    })
    .await
    .expect_err("sipp accepted an INVITE without the expected x-wa-meta-cta-payload");
    assert!(err.contains("exp_cta"), "{err}");
}

/// cloud-api §8.5, §14.3: a caller with a username and a parent BSUID gets
/// `x-wa-meta-user-name` (the username, not the profile name "Ana") and the parent under
/// the page's spelling, `x-wa_meta-parent-user-id`, beside `x-wa-meta-user-id`.
#[tokio::test]
async fn a_caller_with_a_username_and_a_parent_bsuid_sends_them_in_the_bsuid_headers() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Udp,
            version: "2.25.30",
            start: Start::Native,
            uri_params: None,
            duration: 5,
            exp_cta: "",
            exp_deeplink: "",
            identity: Identity {
                username: Some("ana.b"),
                parent_user_id: Some("US.ENT.11815799212886844830"),
                dash_spelling: false,
                expect_none: false,
            },
            sdes: false,
        })
        .await,
    );
}

/// The spelling is configurable: integrators' `x-wa-meta-username` and
/// `x-wa-meta-parent-user-id`, and then the page's spellings are absent.
#[tokio::test]
async fn the_bsuid_header_spelling_is_configurable() {
    if sipp_missing() {
        return;
    }
    must(
        answered_then_user_hangs_up(Answered {
            transport: Transport::Tcp,
            version: "2.25.30",
            start: Start::Tap("P"),
            uri_params: None,
            duration: 2,
            exp_cta: "P",
            exp_deeplink: "",
            identity: Identity {
                username: Some("ana.b"),
                parent_user_id: Some("US.ENT.11815799212886844830"),
                dash_spelling: true,
                expect_none: false,
            },
            sdes: false,
        })
        .await,
    );
}

/// The scenario is not a rubber stamp for these headers either: a username header it
/// does not expect fails sipp.
#[tokio::test]
async fn the_scenario_fails_when_an_unexpected_username_header_arrives() {
    if sipp_missing() {
        return;
    }
    let err = answered_then_user_hangs_up(Answered {
        transport: Transport::Udp,
        version: "2.25.30",
        start: Start::Native,
        uri_params: None,
        duration: 1,
        exp_cta: "",
        exp_deeplink: "",
        identity: Identity {
            username: Some("ana.b"),
            parent_user_id: None,
            dash_spelling: false,
            expect_none: true,
        },
        sdes: false,
    })
    .await
    .expect_err("sipp accepted an INVITE with an x-wa-meta-user-name it did not expect");
    assert!(err.contains("exp_user_name"), "{err}");
}

async fn busy(transport: Transport) {
    let _one = SIPP.lock().await;
    let emu = Emu::start_with(transport.emulator_options(true)).await;
    emu.user(USER, "ios", "2.25.30", "Ana").await;
    let mut sipp = Sipp::start("emulator-busy.xml", transport, free_port(transport), &[]).await;
    let port = sipp.port;
    enable_sip(&emu, port, transport, None).await;
    let call_id = start_call(&emu, Start::Tap("P")).await;
    let failed = wait_status(&emu, &call_id, "failed", &mut sipp)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        failed["end_reason"],
        json!({"sip_failure": 486}),
        "{failed}"
    );
    assert!(failed["duration"].is_null(), "{failed}");
    let logged = sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(logged, vec![call_id.clone()]);
    // Nothing is left to hang up.
    let (s, _) = emu
        .admin("POST", &format!("/calls/{call_id}/hangup"), Value::Null)
        .await;
    assert!(s >= 400, "hangup of a failed call answered {s}");
    assert_no_calls_webhooks(&emu).await;
}

#[tokio::test]
async fn a_486_from_the_server_ends_the_call_failed_over_udp() {
    if sipp_missing() {
        return;
    }
    busy(Transport::Udp).await;
}

#[tokio::test]
async fn a_486_from_the_server_ends_the_call_failed_over_tcp() {
    if sipp_missing() {
        return;
    }
    busy(Transport::Tcp).await;
}

#[tokio::test]
async fn a_486_from_the_server_ends_the_call_failed_over_tls() {
    if sipp_missing() || stunnel_missing() {
        return;
    }
    busy(Transport::Tls).await;
}

/// sipp challenges with 401 and verifies the digest against `password`; returns the call
/// as the emulator ends it and sipp's verdict.
async fn challenged(
    transport: Transport,
    wrong_password: bool,
) -> (Value, Result<Vec<String>, String>, String) {
    let _one = SIPP.lock().await;
    let emu = Emu::start_with(transport.emulator_options(true)).await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    // The password exists once SIP is configured; sipp needs it at start, so configure
    // first with a placeholder port, then point the server at sipp (the password stays).
    let password = enable_sip(&emu, 9, transport, None).await;
    let expected = if wrong_password {
        format!("{password}-not")
    } else {
        password.clone()
    };
    let vars = [
        ("exp_username", BUSINESS.to_owned()),
        ("exp_password", expected),
    ];
    let mut sipp = Sipp::start(
        "emulator-digest-401-then-business-hangs-up.xml",
        transport,
        free_port(transport),
        &vars,
    )
    .await;
    let again = enable_sip(&emu, sipp.port, transport, None).await;
    assert_eq!(again, password, "the SIP password survives a server change");
    let call_id = start_call(&emu, Start::Native).await;
    let end = if wrong_password {
        "failed"
    } else {
        "completed"
    };
    let ended = wait_status(&emu, &call_id, end, &mut sipp)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let verdict = sipp.finish().await;
    assert_no_calls_webhooks(&emu).await;
    (ended, verdict, call_id)
}

#[tokio::test]
async fn a_digest_challenge_is_answered_with_the_sip_password_from_the_settings() {
    if sipp_missing() {
        return;
    }
    for transport in [Transport::Udp, Transport::Tcp] {
        let (ended, verdict, call_id) = challenged(transport, false).await;
        let logged = verdict.unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        assert_eq!(logged, vec![call_id], "{transport:?}");
        // The business hung up (its BYE) after answering.
        assert_eq!(ended["end_reason"], "completed", "{transport:?}: {ended}");
        assert!(ended["answered_at_ms"].is_u64(), "{ended}");
    }
}

/// cloud-api §8.2: TLS carries the same digest exchange.
#[tokio::test]
async fn a_digest_challenge_over_tls_is_answered_with_the_sip_password() {
    if sipp_missing() || stunnel_missing() {
        return;
    }
    let (ended, verdict, call_id) = challenged(Transport::Tls, false).await;
    let logged = verdict.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(logged, vec![call_id]);
    assert_eq!(ended["end_reason"], "completed", "{ended}");
}

#[tokio::test]
async fn the_digest_scenario_refuses_a_password_other_than_the_settings_one() {
    if sipp_missing() {
        return;
    }
    let (ended, verdict, _) = challenged(Transport::Udp, true).await;
    assert_eq!(ended["end_reason"], json!({"sip_failure": 403}), "{ended}");
    let err = verdict.expect_err("sipp accepted a digest made with another password");
    assert!(err.contains("digest response was valid"), "{err}");
}

/// With SIP enabled, message webhooks continue while `calls` webhooks stop; disabling SIP
/// brings them back.
#[tokio::test]
async fn message_webhooks_continue_while_sip_is_enabled_and_calls_webhooks_stop() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let emu = Emu::start().await;
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    let mut sipp = Sipp::start(
        "emulator-busy.xml",
        Transport::Udp,
        free_port(Transport::Udp),
        &[],
    )
    .await;
    enable_sip(&emu, sipp.port, Transport::Udp, None).await;
    let (s, _) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"callback_permission_status":"ENABLED"}})),
        )
        .await;
    assert_eq!(s, 200);
    let call_id = start_call(&emu, Start::Tap("P")).await;
    wait_status(&emu, &call_id, "failed", &mut sipp)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text":"still there?"}),
    )
    .await;
    let events = |got: &[Received]| -> Vec<String> {
        got.iter()
            .map(|r| {
                let b = r.json();
                let v = &b["entry"][0]["changes"][0]["value"];
                let what = v["statuses"][0]["status"]
                    .as_str()
                    .or(v["messages"][0]["type"].as_str())
                    .or(v["calls"][0]["event"].as_str())
                    .unwrap_or("?");
                format!(
                    "{}/{what}",
                    b["entry"][0]["changes"][0]["field"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    // Two settings updates (SIP, callback permission); then sent, delivered, read (the
    // tap) and the text. No automatic permission reply: the +1 number has no call
    // permissions at all (138013).
    let got = rx.wait_for(6).await;
    let mut seen: Vec<String> = events(&got)
        .into_iter()
        .filter(|e| !e.starts_with("account_settings_update/"))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "messages/delivered",
            "messages/read",
            "messages/sent",
            "messages/text"
        ],
        "{:?}",
        events(&got)
    );
    assert!(got.iter().all(|r| r.signature_ok));
    assert_no_calls_webhooks(&emu).await;

    // SIP off: the next call is signalled with webhooks again.
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"sip":{"status":"DISABLED"}}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let native = start_call(&emu, Start::Native).await;
    let connect = emu.values("calls", "connect").await;
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0]["calls"][0]["id"], native.as_str());
    assert!(sip_messages(&emu, &native).await.is_empty());
}

/// Without `--sip-ca` the business's certificate (from a CA of its own) is not trusted:
/// no INVITE leaves, the call ends as with an unreachable server (408), and the call's SIP
/// log names the reason and the flag. The settings' `transport` takes any case.
#[tokio::test]
async fn without_the_sip_ca_a_tls_call_fails_with_unknown_ca_in_its_sip_log() {
    if sipp_missing() || stunnel_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let emu = Emu::start_with(Transport::Tls.emulator_options(false)).await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    let mut sipp = Sipp::start(
        "emulator-busy.xml",
        Transport::Tls,
        free_port(Transport::Tls),
        &[],
    )
    .await;
    let server = json!({"hostname":"127.0.0.1","port":sipp.port,"transport":"TLS"});
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"sip":{"status":"ENABLED","servers":[server]}}})),
        )
        .await;
    assert_eq!(s, 200, "enable SIP over TLS: {v}");
    let call_id = start_call(&emu, Start::Native).await;
    let failed = wait_status(&emu, &call_id, "failed", &mut sipp).await;
    let sipp_logs = sipp.stop().await;
    let failed = failed.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        failed["end_reason"],
        json!({"sip_failure": 408}),
        "{failed}"
    );
    let log = sip_messages(&emu, &call_id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let (outgoing, line, raw) = &log[0];
    assert!(*outgoing && raw.is_empty(), "{log:?}");
    assert!(
        line.starts_with("(not sent: 127.0.0.1:")
            && line.contains(" over tls: TLS handshake failed: unknown CA (")
            && line.ends_with("pass --sip-ca FILE))"),
        "{line}"
    );
    // Nothing got through to sipp.
    assert!(!sipp_logs.contains("INVITE sip:"), "{sipp_logs}");
    assert_no_calls_webhooks(&emu).await;
}
