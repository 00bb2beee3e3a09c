//! SIP calls with real media: the SIP server's side is a raw SIP socket in the test and a
//! str0m WebRTC peer on its own UDP socket (ICE-full and controlling, DTLS client,
//! opus), as a business's media server would be. With DTLS keying the user's endpoint
//! is in the SDP the emulator sends over SIP, ICE and DTLS complete against the peer,
//! and audio flows both ways; `GET /__emulator/calls/{id}/media` shows what arrived.

#![allow(
    clippy::disallowed_methods,
    reason = "the peer is a shell: real sockets and the real clock"
)]

use super::harness::*;
use opusic_c::{Application, Channels, Encoder, SampleRate};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use wa_emulator::engine::ClockMode;
use wa_emulator::media::sdp::Remote;
use wa_emulator::media::sound::Source;
use wa_emulator::server::ServeOptions;
use wa_emulator::sip::digest::{authorization, parse_challenge, ClientNonce};
use wa_emulator::sip::message::{response_to, SipMessage};

/// The business's SIP domain for business-initiated calls (the From host).
const SIP_HOST: &str = "sip.example.com";

/// The business's media server: a str0m peer on its own socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    fingerprint: String,
    ssrc: Ssrc,
    /// The audio section's mid, once connected.
    mid: Option<Mid>,
}

impl Peer {
    async fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .set_local_ice_credentials(IceCreds {
                ufrag: "pbx1".into(),
                pass: "pbxpbxpbxpbxpbxpbxpbxpbx".into(),
            });
        let codecs = config.codec_config();
        codecs.add_config(
            111.into(),
            None,
            Codec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            Default::default(),
        );
        codecs.add_config(
            126.into(),
            None,
            Codec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            Default::default(),
        );
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
        Peer {
            rtc,
            socket,
            local,
            fingerprint: fp.split_once(' ').unwrap().1.to_owned(),
            ssrc: 0x5150_0001.into(),
            mid: None,
        }
    }

    /// The peer's SDP: its candidate, credentials and fingerprint, opus on 111 and
    /// telephone-event on 126.
    fn sdp(&self, setup: &str, mid: &str) -> String {
        let port = self.local.port();
        [
            "v=0".to_owned(),
            "o=pbx 53655765 2353687637 IN IP4 127.0.0.1".into(),
            "s=-".into(),
            "t=0 0".into(),
            format!("a=group:BUNDLE {mid}"),
            format!("m=audio {port} UDP/TLS/RTP/SAVPF 111 126"),
            "c=IN IP4 127.0.0.1".into(),
            format!("a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host"),
            "a=ice-ufrag:pbx1".into(),
            "a=ice-pwd:pbxpbxpbxpbxpbxpbxpbxpbx".into(),
            format!("a=fingerprint:sha-256 {}", self.fingerprint),
            format!("a=setup:{setup}"),
            format!("a=mid:{mid}"),
            "a=sendrecv".into(),
            "a=rtcp-mux".into(),
            "a=rtpmap:111 opus/48000/2".into(),
            "a=rtpmap:126 telephone-event/8000".into(),
            format!("a=ssrc:{} cname:pbx", *self.ssrc),
            String::new(),
        ]
        .join("\r\n")
    }

    /// Points the peer at the user's endpoint: ICE controlling, DTLS client (the
    /// user's side is ICE-lite and answers or offers passive/actpass).
    fn connect_to(&mut self, remote: &Remote) {
        for c in &remote.candidates {
            self.rtc
                .add_remote_candidate(Candidate::host(*c, "udp").unwrap());
        }
        let mut api = self.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        });
        api.set_remote_fingerprint(
            format!("{} {}", remote.fingerprint.0, remote.fingerprint.1)
                .parse()
                .unwrap(),
        );
        api.set_ice_controlling(true);
        api.start_dtls(true).unwrap();
        let mid: Mid = remote.mid.as_str().into();
        api.declare_media(mid, MediaKind::Audio);
        api.declare_stream_tx(self.ssrc, None, mid, None);
        self.mid = Some(mid);
    }
}

/// What the peer saw by the time it stopped.
#[derive(Debug, Default)]
struct Outcome {
    connected: bool,
    /// The user's audio packets, decrypted.
    audio: u64,
    failure: Option<String>,
}

/// Runs the peer until `stop`: ICE, DTLS, then (when `talks`) a 440 Hz tone every 20 ms,
/// held back while `quiet` says so.
async fn run_peer(
    mut p: Peer,
    talks: bool,
    mut stop: watch::Receiver<bool>,
    mut quiet: watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut enc = Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip).unwrap();
    let mut tone = Source::tone(440.0);
    let mut buf = vec![0u8; 2048];
    let mut next_frame: Option<Instant> = None;
    let (mut seq, mut rtp_time) = (1u64, 0u32);
    let mid = p.mid;
    let mut expected = std::collections::HashSet::new();
    loop {
        let timeout = loop {
            match p.rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = p.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => {
                    out.connected = true;
                    if talks {
                        next_frame = Some(Instant::now());
                    }
                }
                Ok(Output::Event(Event::RtpPacket(_))) => out.audio += 1,
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    out.failure = Some(e.to_string());
                    return out;
                }
            }
        };
        let wake = next_frame.map_or(timeout, |f| f.min(timeout));
        tokio::select! {
            _ = stop.changed() => return out,
            Ok(()) = quiet.changed() => {
                let hush = *quiet.borrow_and_update();
                next_frame = (talks && out.connected && !hush).then(Instant::now);
            }
            r = p.socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let bytes = &buf[..n];
                // The user's SSRC is not in its SDP: take the one RTP stream as the audio.
                if n >= 12 && (128..192).contains(&bytes[0]) && !(64..96).contains(&(bytes[1] & 0x7f)) {
                    let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
                    if let Some(m) = mid {
                        if expected.insert(ssrc) {
                            p.rtc.direct_api().expect_stream_rx(ssrc.into(), None, m, None);
                        }
                    }
                }
                if let Ok(r) = Receive::new(Protocol::Udp, from, p.local, bytes) {
                    if let Err(e) = p.rtc.handle_input(Input::Receive(Instant::now(), r)) {
                        out.failure = Some(e.to_string());
                        return out;
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    out.failure = Some(e.to_string());
                    return out;
                }
                while let Some(due) = next_frame.filter(|f| *f <= now) {
                    let frame = tone.next_frame().unwrap_or([0.0; 960]);
                    let mut payload = vec![0u8; 1275];
                    let len = enc.encode_float_to_slice(&frame, &mut payload).unwrap();
                    payload.truncate(len);
                    let pt: Pt = 111.into();
                    if let Some(tx) = p.rtc.direct_api().stream_tx(&p.ssrc) {
                        tx.write_rtp(RtpWrite::new(pt, seq.into(), rtp_time, due, payload));
                    }
                    seq += 1;
                    rtp_time = rtp_time.wrapping_add(960);
                    next_frame = Some(due + Duration::from_millis(20));
                }
            }
        }
    }
}

/// The peer, running until the sender says stop.
struct Running {
    stop: watch::Sender<bool>,
    quiet: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Outcome>,
}

fn spawn_peer(p: Peer, talks: bool) -> Running {
    let (stop, rx) = watch::channel(false);
    let (quiet, hush) = watch::channel(false);
    Running {
        stop,
        quiet,
        task: tokio::spawn(run_peer(p, talks, rx, hush)),
    }
}

impl Running {
    /// The peer stops sending audio (`true`) or talks again (`false`), staying connected.
    fn hush(&self, quiet: bool) {
        let _ = self.quiet.send(quiet);
    }

    async fn finish(self) -> Outcome {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// `GET /__emulator/calls/{id}/media`.
async fn media(emu: &Emu, id: &str) -> Value {
    emu.ok("GET", &format!("/calls/{id}/media"), Value::Null)
        .await
}

/// Waits (real time, bounded) until the user's endpoint has heard the peer's tone.
async fn wait_heard(emu: &Emu, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = media(emu, id).await;
        if last["received"]["packets"].as_u64().unwrap_or(0) >= 25
            && last["received"]["audio_level_dbfs"].is_number()
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the user never heard the business: {last}");
}

/// Waits until the endpoint's state is `state`.
async fn wait_state(emu: &Emu, id: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = media(emu, id).await;
        if last["state"] == state {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the endpoint never became {state}: {last}");
}

async fn recv_sip(socket: &UdpSocket) -> (SipMessage, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .expect("a SIP message within 10 s")
        .unwrap();
    (SipMessage::parse(&buf[..n]).unwrap(), from)
}

/// The SIP server after the 200 OK: answers retransmitted INVITEs with it again and
/// BYEs with 200, and reports each request's method.
fn serve_dialog(socket: UdpSocket, ok: String) -> mpsc::UnboundedReceiver<SipMessage> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(m) = SipMessage::parse(&buf[..n]) else {
                continue;
            };
            match m.method() {
                Some("INVITE") => {
                    let _ = socket.send_to(ok.as_bytes(), from).await;
                }
                Some("BYE") => {
                    let r = response_to(&m, 200, "OK", "");
                    let _ = socket.send_to(r.render().as_bytes(), from).await;
                }
                _ => {}
            }
            if m.method().is_some() && tx.send(m).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a request of `method` from the emulator.
async fn expect_request(rx: &mut mpsc::UnboundedReceiver<SipMessage>, method: &str) -> SipMessage {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {method} within 10 s"))
            .expect("the SIP server runs");
        if m.method() == Some(method) {
            return m;
        }
    }
}

/// The user calls the business's SIP server (DTLS keying, the default); the server
/// answers with the peer's SDP. Answers the call id, the dialog's requests and the peer.
async fn user_calls(
    emu: &Emu,
    talks: bool,
) -> (String, mpsc::UnboundedReceiver<SipMessage>, Running) {
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sip.local_addr().unwrap().port();
    let server = json!({"hostname":"127.0.0.1","port":port,"transport":"udp"});
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"sip":{"status":"ENABLED","servers":[server]}}})),
        )
        .await;
    assert_eq!(s, 200, "enable SIP: {v}");
    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    let id = v["call_id"].as_str().unwrap().to_owned();
    let (invite, from) = recv_sip(&sip).await;
    assert_eq!(invite.method(), Some("INVITE"));
    let remote = Remote::of(&invite.body).unwrap_or_else(|| {
        panic!(
            "the INVITE's offer carries the user's endpoint: {}",
            invite.body
        )
    });
    let mut peer = Peer::new().await;
    peer.connect_to(&remote);
    let mut ok = response_to(&invite, 200, "OK", "pbx");
    ok.push("Contact", format!("<sip:127.0.0.1:{port}>"));
    ok.push("Content-Type", "application/sdp");
    ok.body = peer.sdp("active", &remote.mid);
    let ok = ok.render();
    sip.send_to(ok.as_bytes(), from).await.unwrap();
    let running = spawn_peer(peer, talks);
    let mut dialog = serve_dialog(sip, ok);
    expect_request(&mut dialog, "ACK").await;
    (id, dialog, running)
}

#[tokio::test]
async fn a_user_calls_a_sip_server_and_audio_flows_both_ways() {
    let emu = Emu::start().await;
    let (id, mut dialog, peer) = user_calls(&emu, true).await;
    let heard = wait_heard(&emu, &id).await;
    assert_eq!(
        (&heard["state"], &heard["dtls"]),
        (&json!("connected"), &json!("connected")),
        "{heard}"
    );
    let level = heard["received"]["audio_level_dbfs"].as_f64().unwrap();
    assert!(level > -30.0, "the tone is heard at {level} dBFS: {heard}");
    assert!(heard["sent"]["packets"].as_u64().unwrap() > 0, "{heard}");
    // The user hangs up: BYE to the SIP server, the endpoint closes.
    emu.ok("POST", &format!("/calls/{id}/hangup"), json!({}))
        .await;
    expect_request(&mut dialog, "BYE").await;
    let outcome = peer.finish().await;
    assert!(outcome.connected, "{outcome:?}");
    assert_eq!(outcome.failure, None);
    assert!(outcome.audio > 10, "the peer hears the user: {outcome:?}");
    let after = media(&emu, &id).await;
    assert_eq!(after["state"], "closed", "{after}");
}

#[tokio::test]
async fn a_sip_server_that_never_sends_audio_gets_a_bye_and_the_call_fails_with_138021() {
    let emu = Emu::start().await;
    let (id, mut dialog, peer) = user_calls(&emu, false).await;
    wait_state(&emu, &id, "connected").await;
    emu.advance(21.0).await;
    expect_request(&mut dialog, "BYE").await;
    let _ = peer.finish().await;
    let after = media(&emu, &id).await;
    let failure = after["failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("no audio from the business within 20 s"),
        "{after}"
    );
    let calls = emu.ok("GET", "/calls", Value::Null).await;
    let call = calls["calls"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(call["status"], "failed", "{call}");
    assert!(call.to_string().contains("138021"), "{call}");
    // SIP mode: no calls webhooks, even for the failure.
    let calls_webhooks = emu
        .webhooks()
        .await
        .into_iter()
        .filter(|d| d["field"] == "calls")
        .count();
    assert_eq!(calls_webhooks, 0);
}

/// The business calls the user through the gateway with the peer's offer; the user
/// answers; the 200 OK's SDP points at the user's endpoint and audio flows.
#[tokio::test]
async fn a_business_calls_over_sip_and_the_users_answer_carries_the_endpoint() {
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
        .unwrap()
        .to_owned();
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
    let config = emu.ok("GET", "/config", Value::Null).await;
    let gateway: SocketAddr = config["sip"]["udp"].as_str().unwrap().parse().unwrap();

    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sip.local_addr().unwrap();
    let mut peer = Peer::new().await;
    let offer = peer.sdp("actpass", "0");
    let ruri = format!("sip:+{USER}@{gateway};transport=udp");
    let invite = |cseq: u32, branch: &str, auth: Option<String>| {
        let mut m = SipMessage::request("INVITE", &ruri)
            .with("Via", format!("SIP/2.0/UDP {me};branch={branch}"))
            .with("Max-Forwards", "70")
            .with("From", format!("<sip:+{DISPLAY2}@{SIP_HOST}>;tag=pbx1"))
            .with("To", format!("<sip:+{USER}@wa.meta.vc>"))
            .with("Call-ID", "media-call-1@pbx")
            .with("CSeq", format!("{cseq} INVITE"))
            .with("Contact", format!("<sip:+{DISPLAY2}@{me};transport=udp>"))
            .with("Content-Type", "application/sdp");
        if let Some(a) = auth {
            m.push("Proxy-Authorization", a);
        }
        m.body = offer.clone();
        m
    };
    let ack = |cseq: u32, branch: &str, to: &str| {
        SipMessage::request("ACK", &ruri)
            .with("Via", format!("SIP/2.0/UDP {me};branch={branch}"))
            .with("Max-Forwards", "70")
            .with("From", format!("<sip:+{DISPLAY2}@{SIP_HOST}>;tag=pbx1"))
            .with("To", to)
            .with("Call-ID", "media-call-1@pbx")
            .with("CSeq", format!("{cseq} ACK"))
            .render()
    };
    // INVITE, 407, ACK; INVITE with the digest answer.
    sip.send_to(invite(1, "z9hG4bKm1", None).render().as_bytes(), gateway)
        .await
        .unwrap();
    let challenge = loop {
        let (m, _) = recv_sip(&sip).await;
        if m.status() == Some(407) {
            break m;
        }
    };
    sip.send_to(
        ack(1, "z9hG4bKm1", challenge.header("to").unwrap()).as_bytes(),
        gateway,
    )
    .await
    .unwrap();
    let ch = parse_challenge(challenge.header("proxy-authenticate").unwrap()).unwrap();
    let client = ClientNonce {
        cnonce: "0a4f113b".into(),
        nc: 1,
    };
    let auth = authorization(&ch, DISPLAY2, &password, "INVITE", &ruri, &offer, &client).unwrap();
    sip.send_to(
        invite(2, "z9hG4bKm2", Some(auth)).render().as_bytes(),
        gateway,
    )
    .await
    .unwrap();
    loop {
        let (m, _) = recv_sip(&sip).await;
        assert!(
            m.status().is_some_and(|s| s < 200),
            "ringing, not {}",
            m.render()
        );
        if m.status() == Some(180) {
            break;
        }
    }
    let calls = emu.ok("GET", "/calls", Value::Null).await;
    let id = calls["calls"][0]["id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{id}/answer"), json!({}))
        .await;
    let ok = loop {
        let (m, _) = recv_sip(&sip).await;
        if m.status() == Some(200) {
            break m;
        }
    };
    sip.send_to(
        ack(2, "z9hG4bKm3", ok.header("to").unwrap()).as_bytes(),
        gateway,
    )
    .await
    .unwrap();
    let answer = Remote::of(&ok.body)
        .unwrap_or_else(|| panic!("the answer carries the user's endpoint: {}", ok.body));
    assert_eq!(answer.mid, "0", "the answer follows the offer's mid");
    assert!(ok.body.contains("a=setup:passive"), "{}", ok.body);
    peer.connect_to(&answer);
    let running = spawn_peer(peer, true);
    let heard = wait_heard(&emu, &id).await;
    assert_eq!(heard["state"], "connected", "{heard}");
    // The user hangs up: the gateway's BYE.
    let mut dialog = serve_dialog(sip, String::new());
    emu.ok("POST", &format!("/calls/{id}/hangup"), json!({}))
        .await;
    expect_request(&mut dialog, "BYE").await;
    let outcome = running.finish().await;
    assert!(outcome.connected && outcome.audio > 10, "{outcome:?}");
}

/// The call's record in `GET /__emulator/calls`.
async fn call_record(emu: &Emu, id: &str) -> Value {
    let calls = emu.ok("GET", "/calls", Value::Null).await;
    calls["calls"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_sip_server_whose_audio_stops_mid_call_gets_a_bye_after_30_s_with_138021() {
    let emu = Emu::start().await;
    let (id, mut dialog, peer) = user_calls(&emu, true).await;
    wait_heard(&emu, &id).await;
    // The business's media server goes quiet (the peer stops altogether).
    let _ = peer.finish().await;
    // The endpoint notices after a second of real time; the call's record says so.
    let mut record = Value::Null;
    for _ in 0..50 {
        record = call_record(&emu, &id).await;
        if record["media"]["silent"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(record["media"]["silent"], true, "{record}");
    // Under 30 s of emulator time since the last packet: the call goes on.
    emu.advance(27.0).await;
    assert_eq!(call_record(&emu, &id).await["status"], "active");
    emu.advance(3.0).await;
    expect_request(&mut dialog, "BYE").await;
    let after = media(&emu, &id).await;
    assert_eq!(
        after["failure"], "no audio from the business for 30 s mid-call",
        "{after}"
    );
    let call = call_record(&emu, &id).await;
    assert_eq!(call["status"], "failed", "{call}");
    assert!(call.to_string().contains("138021"), "{call}");
}

/// An emulator journaling to `state` (`--state FILE`), seeded as [`Emu::start`] is.
fn with_state(state: &Path) -> ServeOptions {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.state = Some(state.to_owned());
    opts
}

/// A fresh `--state` file for one test (its snapshot and log removed).
fn state_file(name: &str) -> PathBuf {
    let state =
        std::env::temp_dir().join(format!("wa-emulator-it-{name}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(wal_of(&state));
    state
}

/// The write-ahead log beside a `--state` file (`FILE.wal`, README).
fn wal_of(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".wal");
    p.into()
}

/// Waits (real time, bounded) until the write-ahead log holds the call's media input of
/// `kind` (the endpoint's report is logged, not acknowledged); answers that line.
async fn logged_media(state: &Path, id: &str, kind: &str) -> Value {
    let wal = wal_of(state);
    for _ in 0..50 {
        let log = std::fs::read_to_string(&wal).unwrap_or_default();
        let found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["t"] == "media" && v["wacid"] == id && v["event"]["kind"] == kind);
        if let Some(line) = found {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} for {id} in the write-ahead log");
}

/// Waits until the call's record says the business's audio is silent (or not).
async fn wait_silent(emu: &Emu, id: &str, silent: bool) -> Value {
    let mut record = Value::Null;
    for _ in 0..50 {
        record = call_record(emu, id).await;
        if (record["media"]["silent"] == true) == silent {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the call's media never became silent={silent}: {record}");
}

/// Moves the virtual clock to `at` (milliseconds).
async fn advance_to(emu: &Emu, at: u64) {
    let now = emu.ok("GET", "/clock", Value::Null).await["now_ms"]
        .as_u64()
        .unwrap();
    assert!(at >= now, "the clock is at {now}, past {at}");
    emu.advance((at - now) as f64 / 1000.0).await;
}

/// `--state` replays the mid-call happenings: the endpoint itself does not outlive the
/// emulator (a restarted one has no socket for the business's media), so the restart is
/// real and what is checked is the call's state, which must be the same as before and
/// end the call at the same emulator time as it would have without the restart.
#[tokio::test]
async fn a_mid_call_silence_survives_restarts_and_ends_the_call_at_the_same_time() {
    let state = state_file("midcall-silent");
    let emu = Emu::start_with(with_state(&state)).await;
    let (id, _dialog, peer) = user_calls(&emu, true).await;
    wait_heard(&emu, &id).await;
    let _ = peer.finish().await;
    let before = wait_silent(&emu, &id, true).await;
    let stopped = logged_media(&state, &id, "audio_stopped").await;
    let silent_ms = stopped["event"]["silent_ms"].as_u64().unwrap();
    assert!((1_000..5_000).contains(&silent_ms), "{stopped}");
    // The rule counts 30 s from the business's last packet, `silent_ms` before the report.
    let deadline = stopped["now"].as_u64().unwrap() + 30_000 - silent_ms;
    // A crash, not a graceful stop: the restart replays the log.
    drop(emu);
    let emu = Emu::start_with(with_state(&state)).await;
    assert_eq!(call_record(&emu, &id).await, before);
    // Again: the first restart compacted the log, so this one reads the snapshot.
    drop(emu);
    let emu = Emu::start_with(with_state(&state)).await;
    let record = call_record(&emu, &id).await;
    assert_eq!(record, before);
    assert_eq!(record["status"], "active", "{record}");
    assert_eq!(record["media"]["silent"], true, "{record}");
    advance_to(&emu, deadline - 1).await;
    assert_eq!(call_record(&emu, &id).await["status"], "active");
    advance_to(&emu, deadline).await;
    let call = call_record(&emu, &id).await;
    assert_eq!(call["status"], "failed", "{call}");
    assert_eq!(call["ended_at_ms"], deadline, "{call}");
    assert_eq!(
        call["media"]["failure"], "no audio from the business for 30 s mid-call",
        "{call}"
    );
    assert!(call.to_string().contains("138021"), "{call}");
    drop(emu);
    let _ = std::fs::remove_file(&state);
}

/// Audio that stopped and came again before the restart leaves no mid-call timer behind
/// it: the restarted call is not silent and outlives the 30 s.
#[tokio::test]
async fn audio_that_resumed_before_a_restart_leaves_the_call_running() {
    let state = state_file("midcall-resumed");
    let emu = Emu::start_with(with_state(&state)).await;
    let (id, _dialog, peer) = user_calls(&emu, true).await;
    wait_heard(&emu, &id).await;
    peer.hush(true);
    wait_silent(&emu, &id, true).await;
    logged_media(&state, &id, "audio_stopped").await;
    peer.hush(false);
    let before = wait_silent(&emu, &id, false).await;
    logged_media(&state, &id, "audio_resumed").await;
    let _ = peer.finish().await;
    drop(emu);
    let emu = Emu::start_with(with_state(&state)).await;
    let record = call_record(&emu, &id).await;
    assert_eq!(record, before);
    assert_eq!(record["media"]["flowing"], true, "{record}");
    emu.advance(31.0).await;
    let record = call_record(&emu, &id).await;
    assert_eq!(record["status"], "active", "{record}");
    assert_eq!(record["media"]["silent"], Value::Null, "{record}");
    drop(emu);
    let _ = std::fs::remove_file(&state);
}
