//! Tests of `wa-emulator replay`: inputs checked before sending, signatures, rewrites,
//! exit codes, against a real receiver on loopback.

use super::*;
use crate::server::tls::{server_config, Ca, ServerIdentity};
use crate::webhook::codec::verify;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    body: Vec<u8>,
    signature_valid: bool,
    content_type: Option<String>,
    content_length: Option<String>,
    chunked: bool,
}

/// A webhook receiver on 127.0.0.1:0 that checks signatures (with the codec's
/// `verify`: the independent check of the signing lives in the integration tests'
/// receiver) and answers `status` (or 401 on a bad signature, as pywa does).
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(secret: &'static str, status: u16) -> Receiver {
        Receiver::serve(secret, status, None).await
    }

    /// The same receiver behind TLS, presenting `identity`.
    async fn https(secret: &'static str, status: u16, identity: &ServerIdentity) -> Receiver {
        let mut r = Receiver::serve(secret, status, Some(identity)).await;
        r.url = r.url.replacen("http://", "https://", 1);
        r
    }

    async fn serve(secret: &'static str, status: u16, tls: Option<&ServerIdentity>) -> Receiver {
        let acceptor = tls.map(|id| tokio_rustls::TlsAcceptor::from(server_config(id).unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            let signature = header("x-hub-signature-256");
                            let content_type = header("content-type");
                            let content_length = header("content-length");
                            let chunked = header("transfer-encoding").is_some();
                            let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                            let signature_valid = verify(
                                secret.as_bytes(),
                                &body,
                                signature.as_deref().unwrap_or(""),
                            );
                            log.lock().unwrap().push(Seen {
                                body,
                                signature_valid,
                                content_type,
                                content_length,
                                chunked,
                            });
                            let code = if signature_valid { status } else { 401 };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(code)
                                    .body(Full::new(Bytes::from_static(b"{\"ok\":false}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let http = http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/webhook"),
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("wa-replay-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn status_body(id: &str, name: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "value": {"messaging_product": "whatsapp",
            "contacts": [{"profile": {"name": name}, "wa_id": "16315551234", "user_id": "US.13491208655302741918"}],
            "statuses": [{"id": id, "status": "sent", "timestamp": "1776340860", "recipient_id": "16315551234"}]},
        "field": "messages"}]}]})
    .to_string()
}

fn args(paths: Vec<PathBuf>, to: Option<&str>) -> ReplayArgs {
    ReplayArgs {
        paths,
        to: to.map(str::to_owned),
        ca: None,
        insecure: false,
        app_secret: "wa-emulator-secret".to_owned(),
        rewrite_timestamps: false,
        rewrite_ids: false,
        rate: None,
        dry_run: false,
    }
}

async fn run_captured(args: &ReplayArgs) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = replay(args, 1_800_000_000, &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn a_folder_is_replayed_signed_ascii_escaped_with_content_length() {
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let tmp = TempDir::new("folder");
    tmp.write(
        "messages/b_status.json",
        &status_body("wamid.B", "José Pérez"),
    );
    tmp.write(
        "messages/a_status.json",
        &status_body("wamid.A", "Test Name"),
    );
    tmp.write("README.md", "not json, ignored");
    let (code, out, err) = run_captured(&args(vec![tmp.0.clone()], Some(&receiver.url))).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(s.signature_valid);
        assert_eq!(s.content_type.as_deref(), Some("application/json"));
        assert_eq!(s.content_length, Some(s.body.len().to_string()));
        assert!(!s.chunked);
        assert!(s.body.is_ascii());
    }
    // Path order, so a_status goes first; the name arrives escaped with lowercase hex.
    assert!(String::from_utf8_lossy(&seen[0].body).contains("\"wamid.A\""));
    assert!(String::from_utf8_lossy(&seen[1].body).contains(r"Jos\u00e9 P\u00e9rez"));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("a_status.json") && lines[0].contains("200 OK"),
        "{out}"
    );
    assert!(
        lines[1].contains("b_status.json") && lines[1].contains("200 OK"),
        "{out}"
    );
    assert!(lines[2].contains("2 answered 2xx, 0 did not"), "{out}");
}

#[tokio::test]
async fn a_receiver_answering_500_makes_the_replay_fail() {
    let receiver = Receiver::start("wa-emulator-secret", 500).await;
    let tmp = TempDir::new("500");
    let file = tmp.write("calls/x.json", &status_body("wamid.X", "Test Name"));
    let (code, out, _) = run_captured(&args(vec![file], Some(&receiver.url))).await;
    assert_eq!(code, 1);
    assert_eq!(receiver.seen().len(), 1);
    assert!(out.contains("500 Internal Server Error"), "{out}");
    assert!(out.contains("body: {\"ok\":false}"), "{out}");
}

#[tokio::test]
async fn the_app_secret_decides_whether_the_receiver_accepts() {
    let receiver = Receiver::start("the-apps-real-secret", 200).await;
    let tmp = TempDir::new("secret");
    let file = tmp.write("x.json", &status_body("wamid.X", "Test Name"));
    let mut a = args(vec![file], Some(&receiver.url));
    let (code, out, _) = run_captured(&a).await;
    assert_eq!(code, 1, "default secret must be rejected: {out}");
    assert!(out.contains("401"), "{out}");
    a.app_secret = "the-apps-real-secret".to_owned();
    let (code, _, _) = run_captured(&a).await;
    assert_eq!(code, 0);
    let seen = receiver.seen();
    assert_eq!(
        (seen[0].signature_valid, seen[1].signature_valid),
        (false, true)
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_failure_not_a_usage_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = TempDir::new("refused");
    let file = tmp.write("x.json", &status_body("wamid.X", "Test Name"));
    let url = format!("http://127.0.0.1:{port}/");
    let (code, out, _) = run_captured(&args(vec![file], Some(&url))).await;
    assert_eq!(code, 1);
    assert!(out.contains("failed:"), "{out}");
}

#[tokio::test]
async fn invalid_input_stops_before_anything_is_sent() {
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let tmp = TempDir::new("invalid");
    tmp.write("a_good.json", &status_body("wamid.A", "Test Name"));
    tmp.write(
        "b_broken.json",
        "{\"object\": \"whatsapp_business_account\", ",
    );
    let (code, _, err) = run_captured(&args(vec![tmp.0.clone()], Some(&receiver.url))).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("b_broken.json") && err.contains("invalid JSON"),
        "{err}"
    );
    let missing = tmp.0.join("nope.json");
    let (code, _, err) = run_captured(&args(vec![missing], Some(&receiver.url))).await;
    assert_eq!(code, 2);
    assert!(err.contains("nope.json"), "{err}");
    let not_webhook = tmp.write(
        "response.json",
        r#"{"messaging_product":"whatsapp","success":true}"#,
    );
    let (code, _, err) = run_captured(&args(vec![not_webhook], Some(&receiver.url))).await;
    assert_eq!(code, 2);
    assert!(err.contains("not a webhook body"), "{err}");
    assert_eq!(receiver.seen().len(), 0);
}

#[tokio::test]
async fn non_webhook_json_in_a_folder_is_skipped_with_a_note() {
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let tmp = TempDir::new("skip");
    tmp.write("messages/status.json", &status_body("wamid.A", "Test Name"));
    tmp.write(
        "responses/calls_connect.json",
        r#"{"messaging_product":"whatsapp","success":true}"#,
    );
    let (code, _, err) = run_captured(&args(vec![tmp.0.clone()], Some(&receiver.url))).await;
    assert_eq!(code, 0);
    assert!(
        err.contains("skipping") && err.contains("calls_connect.json"),
        "{err}"
    );
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let tmp = TempDir::new("usage");
    let file = tmp.write("x.json", &status_body("wamid.X", "Test Name"));
    for to in [
        "ftp://example.invalid/webhook",
        "https:///webhook",
        "127.0.0.1:8000",
        "not a url",
    ] {
        let (code, _, err) = run_captured(&args(vec![file.clone()], Some(to))).await;
        assert_eq!(code, 2, "--to {to}: {err}");
    }
    let mut a = args(vec![file], Some("http://127.0.0.1:9/"));
    a.rate = Some(0.0);
    let (code, _, err) = run_captured(&a).await;
    assert_eq!(code, 2);
    assert!(err.contains("--rate"), "{err}");
}

#[tokio::test]
async fn an_https_receiver_is_reached_with_its_ca_and_unknown_ca_is_named_without_it() {
    let ca = Ca::generate("replay test CA").unwrap();
    let receiver = Receiver::https(
        "wa-emulator-secret",
        200,
        &ca.issue(&["127.0.0.1"]).unwrap(),
    )
    .await;
    let tmp = TempDir::new("https");
    let file = tmp.write("x.json", &status_body("wamid.X", "Test Name"));
    let ca_file = tmp.write("ca.pem", &ca.pem());

    let mut with_ca = args(vec![file.clone()], Some(&receiver.url));
    with_ca.ca = Some(ca_file);
    let (code, out, err) = run_captured(&with_ca).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("x.json  200 OK"), "{out}");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].signature_valid);

    let (code, out, _) = run_captured(&args(vec![file.clone()], Some(&receiver.url))).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "failed: TLS: unknown CA (certificate not signed by a trusted root; pass --ca FILE)"
        ),
        "{out}"
    );
    assert_eq!(receiver.seen().len(), 1, "nothing reached the receiver");

    let mut insecure = args(vec![file.clone()], Some(&receiver.url));
    insecure.insecure = true;
    let (code, out, err) = run_captured(&insecure).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("--insecure") && err.contains("NOT checked"),
        "{err}"
    );
    assert_eq!(receiver.seen().len(), 2);

    let mut unreadable = args(vec![file], Some(&receiver.url));
    unreadable.ca = Some(tmp.0.join("missing.pem"));
    let (code, _, err) = run_captured(&unreadable).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("--ca: cannot read") && err.contains("missing.pem"),
        "{err}"
    );
    assert_eq!(receiver.seen().len(), 2);
}

#[tokio::test]
async fn a_dry_run_prints_the_signed_request_and_sends_nothing() {
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let tmp = TempDir::new("dry");
    let file = tmp.write("x.json", &status_body("wamid.X", "José"));
    let mut a = args(vec![file], Some(&receiver.url));
    a.dry_run = true;
    let (code, out, _) = run_captured(&a).await;
    assert_eq!(code, 0);
    assert!(receiver.seen().is_empty());
    let body = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("the body line");
    assert!(body.contains(r"Jos\u00e9"));
    assert!(out.contains(&format!("POST {}", receiver.url)));
    assert!(out.contains(&format!("Content-Length: {}", body.len())));
    assert!(out.contains(&format!(
        "X-Hub-Signature-256: {}",
        sign(b"wa-emulator-secret", body.as_bytes())
    )));
    // No receiver needed at all for a dry run.
    a.to = None;
    assert_eq!(run_captured(&a).await.0, 0);
}

#[allow(clippy::disallowed_methods, reason = "pacing is real time")]
#[tokio::test]
async fn rate_spaces_the_requests() {
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let tmp = TempDir::new("rate");
    for n in ["a", "b", "c"] {
        tmp.write(&format!("{n}.json"), &status_body("wamid.X", "Test Name"));
    }
    let mut a = args(vec![tmp.0.clone()], Some(&receiver.url));
    a.rate = Some(20.0);
    let t0 = Instant::now();
    let (code, _, _) = run_captured(&a).await;
    assert_eq!(code, 0);
    assert_eq!(receiver.seen().len(), 3);
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn rewriting_keeps_a_call_s_connect_and_terminate_linked() {
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let tmp = TempDir::new("rewrite");
    let call = |event: &str, t: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"value": {
            "calls": [{"id": "wacid.ORIGINAL=", "event": event, "timestamp": t}]}, "field": "calls"}]}]})
        .to_string()
    };
    tmp.write("1_connect.json", &call("connect", "1776340800"));
    tmp.write("2_terminate.json", &call("terminate", "1776340920"));
    let mut a = args(vec![tmp.0.clone()], Some(&receiver.url));
    a.rewrite_ids = true;
    a.rewrite_timestamps = true;
    let (code, _, _) = run_captured(&a).await;
    assert_eq!(code, 0);
    let bodies: Vec<Value> = receiver
        .seen()
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    let call_of = |b: &Value| b["entry"][0]["changes"][0]["value"]["calls"][0].clone();
    let (connect, terminate) = (call_of(&bodies[0]), call_of(&bodies[1]));
    assert_eq!(connect["id"], terminate["id"]);
    assert_ne!(connect["id"], "wacid.ORIGINAL=");
    assert!(connect["id"].as_str().unwrap().starts_with("wacid."));
    assert_eq!(terminate["timestamp"], "1800000000");
    assert_eq!(connect["timestamp"], "1799999880");
}

#[test]
fn timestamps_shift_together_and_keep_their_types() {
    let mut a = json!({"entry": [{"time": 1_000_000_050, "changes": [{"value": {"calls": [{
        "timestamp": "1000000100", "start_time": "1000000000", "end_time": "1000000100", "duration": 100}]}}]}]});
    let mut b = json!({"messages": [{"timestamp": "1000000010", "interactive": {"call_permission_reply": {
        "expiration_timestamp": "1000604810"}}}]});
    let shift = rewrite_timestamps(&mut [&mut a, &mut b], 2_000_000_000);
    assert_eq!(shift, Some(999_999_900));
    let call = &a["entry"][0]["changes"][0]["value"]["calls"][0];
    assert_eq!(call["timestamp"], "2000000000");
    assert_eq!(call["start_time"], "1999999900");
    assert_eq!(call["duration"], 100);
    assert_eq!(a["entry"][0]["time"], json!(1_999_999_950));
    assert_eq!(b["messages"][0]["timestamp"], "1999999910");
    // The expiry stays seven days after the reply, in the future.
    assert_eq!(
        b["messages"][0]["interactive"]["call_permission_reply"]["expiration_timestamp"],
        "2000604710"
    );
    let mut no_times = json!({"code": 131026});
    assert_eq!(rewrite_timestamps(&mut [&mut no_times], 5), None);
}

#[test]
fn ids_are_replaced_consistently_across_bodies() {
    let mut status =
        json!({"statuses": [{"id": "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI1QjE3QzY0RTJFN0M0QjlBOEQA"}]});
    let mut reply = json!({"messages": [{"id": "wamid.REPLY", "context": {
        "id": "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI1QjE3QzY0RTJFN0M0QjlBOEQA"}}],
        "note": "text mentioning wamid. stays", "calls": [{"id": "wacid.C1"}]});
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let map = rewrite_ids(&mut [&mut status, &mut reply], &mut rng);
    assert_eq!(map.len(), 3);
    let new_msg = status["statuses"][0]["id"].as_str().unwrap();
    assert_eq!(reply["messages"][0]["context"]["id"], new_msg);
    assert!(new_msg.starts_with("wamid."));
    assert_eq!(
        new_msg.len(),
        "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI1QjE3QzY0RTJFN0M0QjlBOEQA".len()
    );
    assert_ne!(reply["messages"][0]["id"], "wamid.REPLY");
    assert_ne!(reply["messages"][0]["id"], new_msg);
    assert!(reply["calls"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("wacid."));
    assert_eq!(reply["note"], "text mentioning wamid. stays");
}

#[test]
fn the_secret_defaults_and_can_come_from_the_environment() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        replay: ReplayArgs,
    }
    use clap::Parser;
    std::env::remove_var("WA_EMULATOR_APP_SECRET");
    let cli = Cli::try_parse_from(["replay", "fixtures", "--to", "http://127.0.0.1:1/"]).unwrap();
    assert_eq!(cli.replay.app_secret, "wa-emulator-secret");
    std::env::set_var("WA_EMULATOR_APP_SECRET", "from-env");
    let cli = Cli::try_parse_from(["replay", "fixtures", "--to", "http://127.0.0.1:1/"]).unwrap();
    std::env::remove_var("WA_EMULATOR_APP_SECRET");
    assert_eq!(cli.replay.app_secret, "from-env");
    let cli = Cli::try_parse_from([
        "replay",
        "a.json",
        "b",
        "--to",
        "http://x/",
        "--app-secret",
        "s",
        "--rate",
        "2.5",
        "--rewrite-ids",
        "--rewrite-timestamps",
    ])
    .unwrap();
    assert_eq!(cli.replay.paths.len(), 2);
    assert_eq!(cli.replay.app_secret, "s");
    assert_eq!(cli.replay.rate, Some(2.5));
    assert!(cli.replay.rewrite_ids && cli.replay.rewrite_timestamps && !cli.replay.dry_run);
    assert!(
        Cli::try_parse_from(["replay", "a.json"]).is_err(),
        "--to is required"
    );
    assert!(Cli::try_parse_from(["replay", "a.json", "--dry-run"]).is_ok());
    assert!(
        Cli::try_parse_from(["replay", "--to", "http://x/"]).is_err(),
        "a path is required"
    );
}

/// Replaying the repository's whole fixture folder: every file is sent, accepted and
/// arrives as exactly the stored JSON.
#[tokio::test]
async fn the_whole_fixture_folder_replays_and_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let files = json_files(&dir).unwrap();
    assert!(files.len() >= 20, "fixtures folder at {}", dir.display());
    let receiver = Receiver::start("wa-emulator-secret", 200).await;
    let (code, out, err) = run_captured(&args(vec![dir], Some(&receiver.url))).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let seen = receiver.seen();
    assert_eq!(seen.len(), files.len());
    for (file, s) in files.iter().zip(&seen) {
        assert!(s.signature_valid && s.body.is_ascii(), "{}", file.display());
        let sent: Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!(sent, read_json(file).unwrap(), "{}", file.display());
    }
}
