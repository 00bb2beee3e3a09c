//! SIP calls with SDES-keyed SRTP end to end (issue 18): the real `wa-emulator serve`
//! calls a business SIP server written in Python (`python/sdes_sip_server.py`) whose
//! SRTP is libsrtp's (pylibsrtp) and whose opus is libopus through PyAV, independent of
//! the emulator's own SRTP and RTP code. The number's settings say SIP with
//! `srtp_key_exchange_protocol: SDES`; the user calls; the server answers with its own
//! key and sends a tone at 0.3 of full scale (-13.5 dBFS RMS) first, as cloud-api §8.3
//! wants; the user's tone is -13 dBFS RMS. The same server speaks plain RTP (`--rtp
//! plain`, for `[behaviour] sip_plain_rtp`) and, with `--call`, is the business calling
//! the user through the emulator's SIP gateway with an SDES offer.

#![allow(
    clippy::disallowed_methods,
    reason = "the SIP server and the media run in real time"
)]

use sdk_tests::{aiortc_python, http, level_near, repo_root, Emulator};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const USER: &str = "16315551234";
/// The server's tone and the user's, RMS.
const SERVER_TONE_DBFS: f64 = -13.5;
const USER_TONE_DBFS: f64 = -13.0;

/// The Python SIP server, its stdin (for `stats`) and its stdout lines.
struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    sip_port: u16,
}

impl Server {
    /// The script with `args` (`--mode`, `--rtp`, `--call` …).
    fn start(python: &std::path::Path, args: &[&str]) -> Server {
        let script = repo_root().join("sdk-tests/python/sdes_sip_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SIP server starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the SIP server says it is ready");
        let sip_port = ready["sip_port"].as_u64().expect("sip_port") as u16;
        Server {
            child,
            stdin,
            lines,
            sip_port,
        }
    }

    /// The next line of `event`, within 10 s.
    fn expect(&self, event: &str) -> Value {
        self.expect_one_of(&[event])
    }

    /// The next line of one of `events`, within 10 s.
    fn expect_one_of(&self, events: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("none of {events:?} from the SIP server"));
            if events.iter().any(|e| v["event"] == *e) {
                return v;
            }
        }
    }

    /// Writes a command line (`stats`, `bye`) to the script.
    fn tell(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
    }

    fn stats(&mut self) -> Value {
        self.tell("stats");
        self.expect("stats")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn graph(emu: &Emulator, method: &str, path: &str, body: Value) -> Value {
    let url = format!(
        "{}/v23.0{path}?access_token={}",
        emu.base,
        emu.cfg("access_token")
    );
    let res = http(method, &url, Some(&body));
    assert!(res.is_success(), "{method} {path}: {}", res.text());
    res.json()
}

/// SIP with SDES on the default number, pointed at the server; the user calls.
fn user_calls(emu: &Emulator, server: &Server) -> String {
    let phone = emu.default_number().id;
    let sip = json!({"hostname": "127.0.0.1", "port": server.sip_port, "transport": "udp"});
    graph(
        emu,
        "POST",
        &format!("/{phone}/settings"),
        json!({"calling": {"status": "ENABLED", "srtp_key_exchange_protocol": "SDES",
            "sip": {"status": "ENABLED", "servers": [sip]}}}),
    );
    let call = emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{USER}/call"),
        json!({ "phone_number_id": phone }),
    );
    call["call_id"].as_str().expect("call_id").to_owned()
}

fn media(emu: &Emulator, call_id: &str) -> Value {
    emu.admin_ok(
        "GET",
        &format!("/__emulator/calls/{call_id}/media"),
        json!({}),
    )
}

/// Polls `probe` for up to 20 s of real time.
fn until<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + sdk_tests::WAIT;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) if Instant::now() > deadline => panic!("{what}: not within 20 s; {seen}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The connected call's audio both ways and the user's keys: the user plays a tone and
/// hears the server's, the server hears the user's tone and `159#`, and the call outlives
/// the 20 s rule. `keying` is the media route's `rtp.keying`.
fn talks_both_ways(emu: &Emulator, server: &mut Server, call_id: &str, keying: &str) {
    // The endpoint exists once the business's SDP has come (the 200 OK, or the offer).
    until("the call connects with media", || {
        let c = emu.call_record(call_id);
        if c["status"] == "active" && c["media"].is_object() {
            Ok(())
        } else {
            Err(c.to_string())
        }
    });
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/play"),
        json!({ "tone_hz": 440 }),
    );
    // The user hears the server's tone, decrypted with the key of its answer.
    let m = until("the user hears the server's tone", || {
        let m = media(emu, call_id);
        // The level is of the last 500 ms: past opus's first frames.
        if m["received"]["packets"].as_u64() >= Some(50)
            && level_near(&m["received"]["audio_level_dbfs"], SERVER_TONE_DBFS)
        {
            Ok(m)
        } else {
            Err(m.to_string())
        }
    });
    assert_eq!(m["state"], "connected", "{m}");
    assert_eq!(m["rtp"]["keying"], keying, "{m}");
    assert_eq!(m["rtp"]["refused"]["authentication"], 0, "{m}");
    assert!(m["rtp"]["latched"].is_string(), "{m}");
    assert!(
        level_near(&m["received"]["audio_level_dbfs"], SERVER_TONE_DBFS),
        "the server's {SERVER_TONE_DBFS} dBFS tone as the user hears it: {m}"
    );
    // The server (libsrtp) decrypts the user's SRTP and hears the user's tone.
    let s = until("the server hears the user's tone", || {
        let s = server.stats();
        if s["packets"].as_u64() >= Some(25) && level_near(&s["level_dbfs"], USER_TONE_DBFS) {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert_eq!(s["undecryptable"], 0, "{s}");
    // The user's keys reach the server as RFC 4733 events.
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/dtmf"),
        json!({ "digits": "159#" }),
    );
    until("the server receives the user's keys", || {
        let s = server.stats();
        if s["dtmf"] == "159#" {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    // Audio flows: past the 20 s rule the call is still up.
    emu.advance(30);
    assert_eq!(emu.call_record(call_id)["status"], "active");
}

#[test]
fn a_users_call_to_an_sdes_sip_server_carries_audio_and_keys_both_ways() {
    let Some(py) = aiortc_python() else { return };
    let emu = Emulator::start();
    let mut server = Server::start(&py, &["--mode", "tone"]);
    let call_id = user_calls(&emu, &server);
    talks_both_ways(&emu, &mut server, &call_id, "sdes");
    hang_up(&emu, &call_id, &server);
}

/// The emulator with `[behaviour] sip_plain_rtp` set to `on`, from a configuration file.
/// The user hangs up; the server gets the BYE.
fn hang_up(emu: &Emulator, call_id: &str, server: &Server) {
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/hangup"),
        json!({}),
    );
    server.expect("bye");
}

fn emulator_with_plain_rtp(on: bool) -> Emulator {
    let config = std::env::temp_dir().join(format!(
        "wa-emulator-sdk-plain-rtp-{on}-{}.toml",
        std::process::id()
    ));
    std::fs::write(&config, format!("[behaviour]\nsip_plain_rtp = {on}\n")).unwrap();
    let emu = Emulator::start_with(&["--config", config.to_str().unwrap()]);
    let _ = std::fs::remove_file(&config);
    emu
}

#[test]
fn with_sip_plain_rtp_a_plain_rtp_sip_server_gets_audio_and_keys_both_ways() {
    let Some(py) = aiortc_python() else { return };
    let emu = emulator_with_plain_rtp(true);
    let mut server = Server::start(&py, &["--rtp", "plain"]);
    let call_id = user_calls(&emu, &server);
    talks_both_ways(&emu, &mut server, &call_id, "none");
    hang_up(&emu, &call_id, &server);
}

/// Meta speaks only SRTP: without `sip_plain_rtp`, the same plain answer gets no media
/// endpoint. The call is signalling only, as a call without SDP keys always was: no
/// audio either way, no 138021, keys refused with the reason.
#[test]
fn without_sip_plain_rtp_a_plain_rtp_answer_leaves_the_call_signalling_only() {
    let Some(py) = aiortc_python() else { return };
    let emu = emulator_with_plain_rtp(false);
    let mut server = Server::start(&py, &["--rtp", "plain"]);
    let call_id = user_calls(&emu, &server);
    until("the call connects", || {
        let c = emu.call_record(&call_id);
        if c["status"] == "active" {
            Ok(())
        } else {
            Err(c.to_string())
        }
    });
    // The server's tone reaches the media socket for a while and is not heard.
    std::thread::sleep(Duration::from_millis(500));
    let m = media(&emu, &call_id);
    assert_eq!(m["state"], "none", "{m}");
    assert_eq!(m["rtp"], Value::Null, "{m}");
    assert_eq!(m["received"]["packets"], 0, "{m}");
    let refused = emu.admin(
        "POST",
        &format!("/__emulator/calls/{call_id}/dtmf"),
        Some(json!({ "digits": "1" })),
    );
    assert!(!refused.is_success(), "{}", refused.text());
    assert!(refused.text().contains("no_media"), "{}", refused.text());
    emu.advance(30);
    let call = emu.call_record(&call_id);
    assert_eq!(
        call["status"], "active",
        "no media, no media timeout: {call}"
    );
    assert_eq!(call["media"], Value::Null, "{call}");
    let s = server.stats();
    assert_eq!(s["packets"], 0, "the user sends nothing: {s}");
    assert!(s["sent"].as_u64() > Some(10), "the server did talk: {s}");
    hang_up(&emu, &call_id, &server);
}

/// The business (the script as a UAC) calls the user through the emulator's SIP gateway
/// with an SDES offer, answers the 407 with the number's SIP password, and once the user
/// answers talks first: audio both ways, the user's keys, and the business's BYE.
#[test]
fn a_business_calls_a_user_over_sip_with_sdes_and_audio_and_keys_flow_both_ways() {
    let Some(py) = aiortc_python() else { return };
    let emu = Emulator::start();
    let number = emu.calling_number();
    let sip = json!({"hostname": "sip.example.com", "port": 5061});
    graph(
        &emu,
        "POST",
        &format!("/{}/settings", number.id),
        json!({"calling": {"status": "ENABLED", "srtp_key_exchange_protocol": "SDES",
            "sip": {"status": "ENABLED", "servers": [sip]}}}),
    );
    let url = format!(
        "{}/v23.0/{}/settings?include_sip_credentials=true&access_token={}",
        emu.base,
        number.id,
        emu.cfg("access_token")
    );
    let settings = http("GET", &url, None).json();
    let password = settings["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("the number's SIP password: {settings}"))
        .to_owned();
    emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{USER}/permission-reply"),
        json!({ "response": "accept", "permanent": true, "phone_number_id": number.id }),
    );
    let gateway = emu.config["sip"]["udp"]
        .as_str()
        .expect("sip.udp")
        .to_owned();
    let mut server = Server::start(
        &py,
        &[
            "--call",
            USER,
            "--gateway",
            &gateway,
            "--business",
            &number.display,
            "--from-host",
            "sip.example.com",
            "--password",
            &password,
        ],
    );
    server.expect("challenged");
    let ringing = server.expect_one_of(&["ringing", "refused"]);
    assert_eq!(ringing["event"], "ringing", "{ringing}");
    let calls = emu.admin_ok("GET", "/__emulator/calls", json!({}));
    let call_id = calls["calls"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the ringing call: {calls}"))
        .to_owned();
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/answer"),
        json!({}),
    );
    let answered = server.expect_one_of(&["answered", "refused"]);
    let sdp = answered["sdp"]
        .as_str()
        .unwrap_or_else(|| panic!("{answered}"));
    assert!(
        sdp.contains("RTP/SAVP") && sdp.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "the user's SDES answer: {sdp}"
    );
    talks_both_ways(&emu, &mut server, &call_id, "sdes");
    // The business hangs up.
    server.tell("bye");
    let ok = server.expect("bye_ok");
    assert_eq!(ok["status"], 200, "{ok}");
    let call = until("the call ends", || {
        let c = emu.call_record(&call_id);
        if c["status"] == "completed" {
            Ok(c)
        } else {
            Err(c.to_string())
        }
    });
    assert_eq!(call["direction"], "BusinessInitiated", "{call}");
}

/// A server that never sends, or encrypts with another key than it announced: the user
/// hears nothing, so the client ends the call with 138021 (and a BYE) after 20 s.
fn no_audio_ends_the_call(mode: &str) -> Option<(Value, Value)> {
    let py = aiortc_python()?;
    let emu = Emulator::start();
    let server = Server::start(&py, &["--mode", mode]);
    let call_id = user_calls(&emu, &server);
    until("the call connects", || {
        let c = emu.call_record(&call_id);
        if c["status"] == "active" {
            Ok(())
        } else {
            Err(c.to_string())
        }
    });
    if mode == "wrong-key" {
        until("the server's packets arrive", || {
            let m = media(&emu, &call_id);
            if m["rtp"]["refused"]["authentication"].as_u64() >= Some(10) {
                Ok(())
            } else {
                Err(m.to_string())
            }
        });
    }
    emu.advance(21);
    server.expect("bye");
    let call = until("the call ends", || {
        let c = emu.call_record(&call_id);
        if c["status"] == "failed" {
            Ok(c)
        } else {
            Err(c.to_string())
        }
    });
    Some((call, media(&emu, &call_id)))
}

#[test]
fn an_sdes_sip_server_that_never_sends_gets_138021() {
    let Some((call, m)) = no_audio_ends_the_call("silent") else {
        return;
    };
    assert!(call.to_string().contains("138021"), "{call}");
    let failure = m["failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("no audio from the business within 20 s"),
        "{m}"
    );
    assert_eq!(
        m["sent"]["packets"], 0,
        "the user waits for the business: {m}"
    );
}

#[test]
fn an_sdes_sip_server_encrypting_with_another_key_gets_138021_and_the_report_says_why() {
    let Some((call, m)) = no_audio_ends_the_call("wrong-key") else {
        return;
    };
    assert!(call.to_string().contains("138021"), "{call}");
    assert_eq!(m["received"]["packets"], 0, "{m}");
    assert!(
        m["rtp"]["last_refusal"]
            .as_str()
            .is_some_and(|r| r.starts_with("authentication failed")),
        "{m}"
    );
    assert_eq!(
        m["sent"]["packets"], 0,
        "nothing sent before an authentic packet: {m}"
    );
}
