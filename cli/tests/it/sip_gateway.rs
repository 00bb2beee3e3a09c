//! A business calls a WhatsApp user over SIP (sipp as the business's SIP server, the
//! `emulator/tests/sipp/business-call-answered.xml` scenario) through the gateway of a
//! `wa-emulator serve` process, and a person at a terminal plays the user with the
//! binary's commands: `permission-reply`, `answer`, `advance`, `hangup`. sipp checks the
//! gateway's BYE carries the 37 s the user talked.
//!
//! Skipped, with a visible reason, only when `sipp` is not on PATH (Debian package
//! `sip-tester`) and `CI` is unset; under `CI` a missing sipp fails it.

use super::harness::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

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

/// `wa-emulator ARGS --url URL`: its exit code and stdout.
fn user_command(served: &Served, args: &[&str]) -> (i32, String) {
    let out = binary()
        .args(args)
        .args(["--url", &served.url])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wa-emulator {args:?}: {stdout} {stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout)
}

// sipp and the emulator run on real time; the waits are bounded.
#[allow(clippy::disallowed_methods)]
#[tokio::test]
async fn the_user_answers_and_hangs_up_a_business_sip_call_from_the_terminal() {
    if sipp_missing() {
        return;
    }
    let served = Served::start(&["--clock", "virtual"], &[]);
    // The banner says where the gateway listens.
    let gateway = served
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("sip gateway"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no sip gateway line in the banner:\n{}", served.banner))
        .to_owned();
    let settings = json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":"sip.example.com","port":5061}]}}});
    let (s, v) = served
        .request("POST", &format!("/v23.0/{PHONE2}/settings"), settings)
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = served
        .request(
            "GET",
            &format!("/v23.0/{PHONE2}/settings?include_sip_credentials=true"),
            Value::Null,
        )
        .await;
    let password = v["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    user_command(
        &served,
        &[
            "permission-reply",
            USER,
            "accept",
            "--permanent",
            "--phone-number-id",
            PHONE2,
        ],
    );
    let (_, users) = served
        .call("GET", "/__emulator/users", None, Value::Null)
        .await;
    let user_id = users["users"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["wa_id"] == USER))
        .and_then(|u| u["user_id"].as_str())
        .unwrap_or_else(|| panic!("{users}"))
        .to_owned();

    let dir = std::env::temp_dir().join(format!("wa-emulator-cli-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../emulator/tests/sipp/business-call-answered.xml");
    let local = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let fingerprint = "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF";
    let mut sipp = std::process::Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .arg(&gateway)
        .args(["-s", USER, "-au", "447700900461", "-ap", &password])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &local.to_string(),
            "-m",
            "1",
            "-t",
            "u1",
        ])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(dir.join("errors.log"))
        .args([
            "-set",
            "business",
            "447700900461",
            "-set",
            "from_host",
            "sip.example.com",
        ])
        .args([
            "-set",
            "exp_user_id",
            &user_id,
            "-set",
            "exp_duration",
            "37",
        ])
        .args([
            "-set",
            "hangup",
            "user",
            "-set",
            "offer_proto",
            "UDP/TLS/RTP/SAVPF",
        ])
        .args(["-set", "offer_key", fingerprint])
        .args([
            "-set",
            "exp_fingerprint",
            "a=fingerprint:sha-256 ",
            "-set",
            "exp_crypto",
            "",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp");
    let errors = || std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();

    let mut call_id = None;
    for _ in 0..500 {
        let (_, calls) = served
            .call("GET", "/__emulator/calls", None, Value::Null)
            .await;
        call_id = calls["calls"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["status"] == "ringing"))
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned);
        if call_id.is_some() {
            break;
        }
        if let Ok(Some(exit)) = sipp.try_wait() {
            panic!(
                "sipp exited ({exit}) before the user's phone rang: {}",
                errors()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let call_id = call_id.unwrap_or_else(|| panic!("the user's phone never rang: {}", errors()));
    let (_, answered) = user_command(&served, &["answer", &call_id]);
    assert!(answered.contains("\"active\""), "{answered}");
    user_command(&served, &["advance", "37s"]);
    let (_, hung_up) = user_command(&served, &["hangup", &call_id]);
    assert!(hung_up.contains("\"completed\""), "{hung_up}");
    // No calls webhooks in SIP mode: the commands list none.
    assert!(!hung_up.contains("webhook calls"), "{hung_up}");

    let mut status = None;
    for _ in 0..1000 {
        if let Some(s) = sipp.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(status) = status else {
        let _ = sipp.kill();
        panic!("sipp did not finish: {}", errors());
    };
    assert!(status.success(), "sipp: {status}: {}", errors());
    let _ = std::fs::remove_dir_all(&dir);
    served.stop();
}
