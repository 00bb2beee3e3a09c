//! The `wa-emulator` binary (issue 9): binding beyond loopback needs an admin token,
//! which then guards every admin route, and secrets never reach the logs; a
//! `--webhook-ca` that cannot be used stops `serve` (issue 16).

use super::harness::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Runs to completion, killed after `limit`.
// A real process: the limit is real time.
#[allow(clippy::disallowed_methods)]
fn run_bounded(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn binding_beyond_loopback_without_an_admin_token_exits_2_and_says_why() {
    for (how, addr) in [
        ("flag", "0.0.0.0:0"),
        ("flag", "[::]:0"),
        ("env", "0.0.0.0:0"),
    ] {
        let mut cmd = binary();
        cmd.arg("serve");
        if how == "flag" {
            cmd.args(["--addr", addr]);
        } else {
            cmd.env("WA_EMULATOR_ADDR", addr);
        }
        let out = run_bounded(cmd, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{how} {addr}: {stderr}");
        assert!(
            stderr.contains("--admin-token") && stderr.contains(addr.trim_end_matches(":0")),
            "{how} {addr}: the message names the address and the fix: {stderr}"
        );
        assert!(!stdout.contains("listening"), "{stdout}");
    }
}

#[test]
fn a_webhook_ca_file_that_cannot_be_used_exits_2_and_names_it() {
    let dir = std::env::temp_dir().join(format!("wa-emu-cli-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.pem");
    let not_pem = dir.join("not-a-certificate.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    for (file, says) in [
        (&missing, "cannot read"),
        (&not_pem, "no PEM certificate in"),
    ] {
        let mut cmd = binary();
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .args(["--webhook-url", "https://127.0.0.1:9/webhook"])
            .arg("--webhook-ca")
            .arg(file);
        let out = run_bounded(cmd, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--webhook-ca")
                && stderr.contains(says)
                && stderr.contains(&file.display().to_string()),
            "the message names the flag, the file and what is wrong: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
}

#[tokio::test]
async fn beyond_loopback_every_admin_route_needs_the_admin_token() {
    const ADMIN: &str = "adm-token-beyond";
    let p = Served::start(
        &[
            "--addr",
            "0.0.0.0:0",
            "--admin-token",
            ADMIN,
            "--clock",
            "virtual",
        ],
        &[],
    );
    assert!(
        p.banner
            .starts_with("wa-emulator listening on http://0.0.0.0:"),
        "{}",
        p.banner
    );
    let (texts, calls) = (
        format!("/__emulator/users/{USER}/messages"),
        format!("/__emulator/users/{USER}/call"),
    );
    let routes: Vec<(&str, &str, Value)> = vec![
        ("GET", "/__emulator/config", Value::Null),
        ("GET", "/__emulator/snapshot", Value::Null),
        ("GET", "/__emulator/webhooks", Value::Null),
        ("GET", "/__emulator/requests", Value::Null),
        ("GET", "/__emulator/messages", Value::Null),
        ("GET", "/__emulator/calls", Value::Null),
        ("GET", "/__emulator/users", Value::Null),
        ("GET", "/__emulator/clock", Value::Null),
        ("GET", "/__emulator/ui/permissions", Value::Null),
        ("GET", "/__emulator/events", Value::Null),
        ("POST", "/__emulator/users", json!({"wa_id": USER})),
        ("POST", &texts, json!({"text": "hi"})),
        ("POST", &calls, json!({})),
        ("POST", "/__emulator/clock/advance", json!({"seconds": 60})),
        (
            "PUT",
            "/__emulator/webhook",
            json!({"url": "http://127.0.0.1:9/x"}),
        ),
        ("PUT", "/__emulator/snapshot", json!({})),
        ("POST", "/__emulator/reset", Value::Null),
    ];
    for (method, path, body) in &routes {
        for token in [None, Some("wrong"), Some(TOKEN)] {
            let (s, v) = p.call(method, path, token, body.clone()).await;
            assert_eq!(s, 401, "{method} {path} with {token:?}: {v}");
            assert_eq!(
                v["error"]["code"], 190,
                "{method} {path} with {token:?}: {v}"
            );
        }
    }
    let (s, v) = p
        .call("GET", "/__emulator/users", Some(ADMIN), Value::Null)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["users"], json!([]), "the refused writes changed nothing");
    let (_, c) = p
        .call("GET", "/__emulator/clock", Some(ADMIN), Value::Null)
        .await;
    let (s, _) = p
        .call(
            "POST",
            "/__emulator/users",
            Some(ADMIN),
            json!({"wa_id": USER}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = p
        .call(
            "POST",
            "/__emulator/clock/advance",
            Some(ADMIN),
            json!({"seconds": 60}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["now"].as_u64(), c["now"].as_u64().map(|n| n + 60));
    // The Graph surface keeps its own token.
    let (s, v) = p
        .call(
            "POST",
            &format!("/v21.0/{PHONE}/messages"),
            Some(TOKEN),
            voice_call(USER, json!({})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, stderr) = p.stop();
    assert!(
        stderr.contains("beyond loopback"),
        "binding 0.0.0.0 warns: {stderr}"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    const SECRET_S: &str = "app-secret-4f1c9e";
    const ACCESS: &str = "access-token-77ab0d";
    const VERIFY: &str = "verify-token-55e2";
    const ADMIN: &str = "admin-token-0c0ffe";
    let rx = Receiver::start(SECRET_S, VERIFY).await;
    let p = Served::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--clock",
            "virtual",
            "--app-secret",
            SECRET_S,
            "--access-token",
            ACCESS,
            "--verify-token",
            VERIFY,
            "--admin-token",
            ADMIN,
            "--webhook-url",
            &rx.url,
        ],
        &[("WA_EMULATOR_LOG", "trace")],
    );
    assert!(
        p.banner.contains(ACCESS),
        "the banner shows the token on stdout, by design"
    );
    let (s, v) = p
        .call(
            "PUT",
            "/__emulator/webhook",
            Some(ADMIN),
            json!({"url": rx.url}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let send = format!("/v21.0/{PHONE}/messages");
    let (s, v) = p
        .call("POST", &send, Some(ACCESS), voice_call(USER, json!({})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = p
        .call(
            "POST",
            &format!("{send}?access_token={ACCESS}"),
            None,
            voice_call(USER, json!({})),
        )
        .await;
    assert_eq!(s, 200);
    // Wrong tokens that contain the right ones.
    let (s, _) = p
        .call(
            "POST",
            &send,
            Some(&format!("{ACCESS}x")),
            voice_call(USER, json!({})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = p
        .call(
            "GET",
            "/__emulator/config",
            Some(&format!("{ADMIN}x")),
            Value::Null,
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = p
        .call("GET", "/__emulator/config", Some(ADMIN), Value::Null)
        .await;
    assert_eq!((s, v["app_secret"].as_str()), (200, Some(SECRET_S)));
    let sip = json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":"sip.example.com","port":5060}]}}});
    let (s, v) = p
        .call(
            "POST",
            &format!("/v21.0/{PHONE}/settings"),
            Some(ACCESS),
            sip,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = p
        .call(
            "GET",
            &format!("/v21.0/{PHONE}/settings?include_sip_credentials=true"),
            Some(ACCESS),
            Value::Null,
        )
        .await;
    let sip_password = v["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("a SIP password: {v}"))
        .to_owned();
    let (s, _) = p
        .call(
            "POST",
            "/__emulator/clock/advance",
            Some(ADMIN),
            json!({"seconds": 5}),
        )
        .await;
    assert_eq!(s, 200);
    let got = rx.wait_for(4).await;
    assert!(
        got.len() >= 4 && got.iter().all(|r| r.signature_ok),
        "{got:?}"
    );
    let (_, stderr) = p.stop();
    assert!(
        stderr.contains("handshake succeeded") && stderr.contains("shutting down"),
        "stderr is captured: {stderr}"
    );
    for (what, secret) in [
        ("app secret", SECRET_S),
        ("access token", ACCESS),
        ("verify token", VERIFY),
        ("admin token", ADMIN),
        ("SIP password", sip_password.as_str()),
    ] {
        let at = stderr.find(secret).map(|i| {
            let line_start = stderr[..i].rfind('\n').map_or(0, |n| n + 1);
            stderr[line_start..].lines().next().unwrap_or("").to_owned()
        });
        assert!(at.is_none(), "the {what} is in the log: {at:?}");
    }
}
