//! The UAC against a real SIP peer: `sipp` plays the business's SIP server with the
//! scenario files in `emulator/tests/sipp/`, which check every header they receive and
//! make sipp exit non-zero when one is missing or wrong.
//!
//! Each test is skipped, with a visible reason, only when `sipp` is not on PATH (Debian
//! package `sip-tester`) and `CI` is unset; under `CI` a missing sipp fails them
//! (`test_skip::because`).
//! `SIPP_SCENARIO_DIR` overrides where the scenarios are found.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::*;
use crate::domain::ids::CallId;
use crate::domain::sip::{SipInvite, SipServer, SipTransport};

/// One sipp at a time: each run is a whole SIP server, and the machine is small.
static SIPP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WACID: &str = "wacid.HBgLMTIxOTU1NTA3MTQVAgASGCAzODg1NTE5NEU1NTBEMTc1RTFFQUY5NjNCQ0FCRkEzRhwYCzE3MDE1NTU4ODU3FQIAAA==";
const USER: &str = "16315551234";
const BUSINESS: &str = "15550783881";
const PASSWORD: &str = "sip-pass-3f9a";
const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n";

fn scenario_dir() -> PathBuf {
    std::env::var_os("SIPP_SCENARIO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp"))
}

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

/// The system's roots only (these servers speak UDP or TCP).
fn no_ca() -> std::sync::Arc<rustls::ClientConfig> {
    crate::server::tls::Trust::default()
        .client_config("SIP servers")
        .expect("a TLS client config")
}

/// Timers short enough for tests, long enough for sipp on a busy machine.
fn fast() -> UacConfig {
    UacConfig {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        timer_c: Duration::from_secs(20),
        linger: Duration::from_millis(300),
    }
}

fn call(port: u16, transport: SipTransport) -> SipInvite {
    SipInvite {
        call_id: CallId::from(WACID),
        user_number: USER.into(),
        username: None,
        parent_user_id: None,
        header_names: Default::default(),
        user_id: None,
        business_number: BUSINESS.into(),
        phone_number_id: "106540352242922".into(),
        server: SipServer {
            hostname: "127.0.0.1".into(),
            port,
            transport,
            request_uri_user_params: vec![
                ("tgrp".into(), "wacall".into()),
                ("trunk-context".into(), "byoc.example.com".into()),
            ],
        },
        sdp_offer: SDP.into(),
        cta_payload: None,
        deeplink_payload: None,
        digest_username: BUSINESS.into(),
        digest_password: PASSWORD.into(),
    }
}

/// What the answer scenario must see, written out independently of the UAC's code.
fn expectations(port: u16, transport: SipTransport) -> Vec<(&'static str, String)> {
    let suffix = match transport {
        SipTransport::Udp => String::new(),
        other => format!(";transport={}", other.as_str()),
    };
    vec![
        (
            "exp_ruri",
            format!("sip:+{BUSINESS};tgrp=wacall;trunk-context=byoc.example.com@127.0.0.1:{port}{suffix}"),
        ),
        ("exp_from", format!("\"{USER}\" <sip:+{USER}@wa.meta.vc>")),
        ("exp_to", format!("<sip:+{BUSINESS}@127.0.0.1>")),
        ("exp_call_id", format!("outgoing:{WACID}")),
        ("exp_wacid", WACID.into()),
        ("exp_transport", transport.via_token().into()),
    ]
}

fn free_port(transport: SipTransport) -> u16 {
    let addr = match transport {
        SipTransport::Udp => std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()),
        SipTransport::Tcp | SipTransport::Tls => {
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
        }
    };
    addr.expect("a free local port").port()
}

fn port_taken(transport: SipTransport, port: u16) -> bool {
    match transport {
        SipTransport::Udp => std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
        SipTransport::Tcp | SipTransport::Tls => {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
        }
    }
}

/// A running sipp UAS and the files it logs to.
struct Sipp {
    child: Child,
    dir: PathBuf,
}

impl Sipp {
    async fn start(
        scenario: &str,
        transport: SipTransport,
        port: u16,
        vars: &[(&str, String)],
    ) -> Sipp {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wa-emulator-sipp-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let screen = std::fs::File::create(dir.join("screen.log")).unwrap();
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(scenario_dir().join(scenario))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
            .args([
                "-t",
                if transport == SipTransport::Udp {
                    "u1"
                } else {
                    "t1"
                },
            ])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join("errors.log"))
            .arg("-trace_calldebug")
            .arg("-calldebug_file")
            .arg(dir.join("calldebug.log"))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join("messages.log"));
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
        let mut sipp_ready = false;
        for _ in 0..250 {
            if port_taken(transport, port) {
                sipp_ready = true;
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let dir = dir.clone();
                panic!("sipp exited at start ({status}):\n{}", logs(&dir));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(sipp_ready, "sipp never listened on {port}:\n{}", logs(&dir));
        Sipp { child, dir }
    }

    /// Waits for sipp to finish its one call; `Err` carries its logs when it failed.
    async fn finish(mut self) -> Result<(), String> {
        let status = tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await;
        let result = match status {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("sipp exited with {status}\n{}", logs(&self.dir))),
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

fn logs(dir: &std::path::Path) -> String {
    ["errors.log", "calldebug.log", "messages.log", "screen.log"]
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

/// The events of one call, with the SIP messages kept aside for failure messages.
struct Events {
    rx: UnboundedReceiver<(String, SipEvent)>,
    messages: Vec<(bool, String)>,
}

impl Events {
    fn new() -> (
        Events,
        tokio::sync::mpsc::UnboundedSender<(String, SipEvent)>,
    ) {
        let (tx, rx) = unbounded_channel();
        (
            Events {
                rx,
                messages: Vec::new(),
            },
            tx,
        )
    }

    /// The next event that is not a message log entry.
    async fn next(&mut self) -> SipEvent {
        loop {
            let got = tokio::time::timeout(Duration::from_secs(15), self.rx.recv()).await;
            match got {
                Ok(Some((wacid, event))) => {
                    assert_eq!(wacid, WACID);
                    match event {
                        SipEvent::Message {
                            outgoing,
                            first_line,
                            ..
                        } => self.messages.push((outgoing, first_line)),
                        other => return other,
                    }
                }
                Ok(None) => panic!("event channel closed; messages: {:#?}", self.messages),
                Err(_) => panic!("no event in 15 s; messages: {:#?}", self.messages),
            }
        }
    }

    async fn expect(&mut self, wanted: &SipEvent) {
        let got = self.next().await;
        assert_eq!(&got, wanted, "messages so far: {:#?}", self.messages);
    }

    async fn skip_provisionals(&mut self) -> SipEvent {
        loop {
            match self.next().await {
                SipEvent::Provisional { .. } => continue,
                other => return other,
            }
        }
    }
}

/// Places a call that the answer scenario accepts, hangs up after 37 s of "talk" and
/// checks that sipp saw everything it expected. `vars` adds expectations.
async fn answered_call_then_hangup(
    transport: SipTransport,
    params: SipInvite,
    vars: &[(&'static str, String)],
) -> Result<(), String> {
    let duration = 37;
    let port = params.server.port;
    let mut all = expectations(port, transport);
    all.push(("exp_duration", duration.to_string()));
    // Later -set values win, so `vars` can also replace a default expectation.
    all.extend(vars.iter().cloned());
    let sipp = Sipp::start("answer-then-user-hangs-up.xml", transport, port, &all).await;
    let (mut events, tx) = Events::new();
    let call = start_call_with(params, fast(), no_ca(), tx);
    match events.skip_provisionals().await {
        SipEvent::Answered { sdp } => assert!(sdp.contains("m=audio 40000 RTP/AVP 0"), "{sdp}"),
        other => {
            let _ = sipp.finish().await;
            return Err(format!(
                "expected an answer, got {other:?}; messages: {:#?}",
                events.messages
            ));
        }
    }
    call.hangup(duration);
    events.expect(&SipEvent::Ended).await;
    sipp.finish().await?;
    // The admin log saw both directions.
    assert!(events
        .messages
        .iter()
        .any(|(out, line)| *out && line.starts_with("INVITE sip:+15550783881;tgrp=wacall")));
    assert!(events
        .messages
        .iter()
        .any(|(out, line)| !*out && line == "SIP/2.0 200 OK"));
    Ok(())
}

#[tokio::test]
async fn button_payload_reaches_the_server_over_udp() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let port = free_port(SipTransport::Udp);
    let mut params = call(port, SipTransport::Udp);
    params.cta_payload = Some("P-button-7".into());
    params.user_id = Some("US.13491208655302741918".into());
    let vars = [
        ("exp_cta", "P-button-7".to_owned()),
        ("exp_user_id", "US.13491208655302741918".to_owned()),
    ];
    answered_call_then_hangup(SipTransport::Udp, params, &vars)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn button_payload_reaches_the_server_over_tcp() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let port = free_port(SipTransport::Tcp);
    let mut params = call(port, SipTransport::Tcp);
    params.cta_payload = Some("P-button-7".into());
    let vars = [("exp_cta", "P-button-7".to_owned())];
    answered_call_then_hangup(SipTransport::Tcp, params, &vars)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn deeplink_payload_reaches_the_server() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let port = free_port(SipTransport::Udp);
    let mut params = call(port, SipTransport::Udp);
    params.deeplink_payload = Some("Q-summer-sale".into());
    let vars = [("exp_deeplink", "Q-summer-sale".to_owned())];
    answered_call_then_hangup(SipTransport::Udp, params, &vars)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn native_call_carries_no_payload_header() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let port = free_port(SipTransport::Tcp);
    answered_call_then_hangup(SipTransport::Tcp, call(port, SipTransport::Tcp), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn the_scenarios_reject_wrong_and_unexpected_headers() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    // A different value than expected.
    let port = free_port(SipTransport::Udp);
    let mut params = call(port, SipTransport::Udp);
    params.cta_payload = Some("P-button-7".into());
    let vars = [("exp_cta", "P-button-8".to_owned())];
    let err = answered_call_then_hangup(SipTransport::Udp, params, &vars)
        .await
        .expect_err("sipp accepted a wrong x-wa-meta-cta-payload");
    assert!(err.contains("exp_cta"), "{err}");
    // A payload header where none is expected.
    let port = free_port(SipTransport::Udp);
    let mut params = call(port, SipTransport::Udp);
    params.deeplink_payload = Some("Q".into());
    let err = answered_call_then_hangup(SipTransport::Udp, params, &[])
        .await
        .expect_err("sipp accepted an unexpected x-wa-meta-deeplink-payload");
    assert!(err.contains("exp_deeplink"), "{err}");
    // A call duration other than the one the user talked.
    let port = free_port(SipTransport::Udp);
    let vars = [("exp_duration", "38".to_owned())];
    let err = answered_call_then_hangup(SipTransport::Udp, call(port, SipTransport::Udp), &vars)
        .await
        .expect_err("sipp accepted a wrong x-wa-meta-call-duration");
    assert!(err.contains("exp_duration"), "{err}");
}

async fn busy(transport: SipTransport) {
    let _one = SIPP.lock().await;
    let port = free_port(transport);
    let sipp = Sipp::start("busy.xml", transport, port, &[("exp_wacid", WACID.into())]).await;
    let (mut events, tx) = Events::new();
    let _call = start_call_with(call(port, transport), fast(), no_ca(), tx);
    events.expect(&SipEvent::Provisional { status: 100 }).await;
    events
        .expect(&SipEvent::Failed {
            status: 486,
            reason: "Busy Here".into(),
        })
        .await;
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn busy_server_fails_the_call_over_udp() {
    if sipp_missing() {
        return;
    }
    busy(SipTransport::Udp).await;
}

#[tokio::test]
async fn busy_server_fails_the_call_over_tcp() {
    if sipp_missing() {
        return;
    }
    busy(SipTransport::Tcp).await;
}

#[tokio::test]
async fn hangup_while_ringing_cancels_the_call() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let port = free_port(SipTransport::Udp);
    let sipp = Sipp::start(
        "cancel-while-ringing.xml",
        SipTransport::Udp,
        port,
        &[("exp_wacid", WACID.into())],
    )
    .await;
    let (mut events, tx) = Events::new();
    let call = start_call_with(self::call(port, SipTransport::Udp), fast(), no_ca(), tx);
    events.expect(&SipEvent::Provisional { status: 180 }).await;
    call.hangup(0);
    events.expect(&SipEvent::Ended).await;
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
}

/// A call to a server that challenges the first INVITE; returns the call's events up to
/// the closing one, and sipp's verdict.
async fn challenged_call(
    scenario: &str,
    transport: SipTransport,
    password: &str,
) -> (Vec<SipEvent>, Result<(), String>) {
    let port = free_port(transport);
    let vars = [
        ("exp_wacid", WACID.to_owned()),
        ("exp_username", BUSINESS.to_owned()),
        ("exp_password", PASSWORD.to_owned()),
    ];
    // The 407 scenario has no exp_password to set.
    let vars = if scenario.starts_with("proxy") {
        &vars[..2]
    } else {
        &vars[..]
    };
    let sipp = Sipp::start(scenario, transport, port, vars).await;
    let (mut events, tx) = Events::new();
    let mut params = call(port, transport);
    params.digest_password = password.into();
    let _call = start_call_with(params, fast(), no_ca(), tx);
    let mut seen = Vec::new();
    loop {
        let event = events.next().await;
        let closing = matches!(
            event,
            SipEvent::Failed { .. }
                | SipEvent::TimedOut
                | SipEvent::ByeFromServer
                | SipEvent::Ended
        );
        seen.push(event);
        if closing {
            break;
        }
    }
    (seen, sipp.finish().await)
}

#[tokio::test]
async fn metas_407_challenge_is_answered_and_the_business_hangs_up() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    for transport in [SipTransport::Udp, SipTransport::Tcp] {
        let scenario = "proxy-auth-407-then-business-hangs-up.xml";
        let (events, sipp) = challenged_call(scenario, transport, PASSWORD).await;
        sipp.unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        assert!(
            matches!(
                events.as_slice(),
                [SipEvent::Answered { .. }, SipEvent::ByeFromServer]
            ),
            "{transport:?}: {events:?}"
        );
    }
}

#[tokio::test]
async fn the_server_verifies_the_digest_response_to_a_401() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let scenario = "digest-401-then-business-hangs-up.xml";
    let (events, sipp) = challenged_call(scenario, SipTransport::Udp, PASSWORD).await;
    sipp.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(
            events.as_slice(),
            [SipEvent::Answered { .. }, SipEvent::ByeFromServer]
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_wrong_sip_password_is_refused_by_the_server() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let scenario = "digest-401-then-business-hangs-up.xml";
    let (events, sipp) = challenged_call(scenario, SipTransport::Udp, "not-the-password").await;
    assert_eq!(
        events.last(),
        Some(&SipEvent::Failed {
            status: 403,
            reason: "Forbidden".into()
        })
    );
    let err = sipp.expect_err("sipp accepted a wrong digest response");
    assert!(err.contains("digest response was valid"), "{err}");
}
