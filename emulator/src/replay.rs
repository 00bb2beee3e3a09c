//! `wa-emulator replay FILE|DIR… --to URL`: posts webhook fixtures to a receiver, signed the
//! way Meta signs them.
//!
//! For QA replaying recorded webhooks against a service without the emulator running. Each
//! body is re-encoded ASCII-escaped (`\uXXXX`, lowercase hex), signed with the app secret
//! (`X-Hub-Signature-256`) and sent with `Content-Length`, one request per fixture, in order.
//! Every input is read and checked before the first request, so a broken folder never
//! half-replays. Exit codes: 0 every receiver answer was 2xx, 1 any was not (or a connection
//! failed), 2 usage or input error.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::Uri;
use rand::Rng;
use serde_json::Value;

use crate::fixture::{json_files, read_json};
use crate::server::client::{Client, ClientError, Response};
use crate::webhook::codec::{encode_ascii, sign};

const EXIT_OK: i32 = 0;
const EXIT_FAILED: i32 = 1;
const EXIT_USAGE: i32 = 2;

/// Meta gives up on a webhook request after about 20 s; a receiver slower than that fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Keys that date the event itself; the newest of these becomes "now" when rewriting.
const EVENT_TIME_KEYS: &[&str] = &["timestamp", "start_time", "end_time", "time"];
/// Keys that are shifted with the events but do not decide the shift (they lie in the future).
const FUTURE_TIME_KEYS: &[&str] = &["expiration_timestamp"];

/// Arguments of `wa-emulator replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Fixture files, or folders searched recursively for `*.json` (replayed in path order).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Receiver URL (http:// only), e.g. http://127.0.0.1:8000/webhook.
    #[arg(long, value_name = "URL", required_unless_present = "dry_run")]
    pub to: Option<String>,

    /// App secret the bodies are signed with (X-Hub-Signature-256).
    #[arg(
        long,
        env = "WA_EMULATOR_APP_SECRET",
        default_value = "wa-emulator-secret",
        hide_env_values = true
    )]
    pub app_secret: String,

    /// Shift every timestamp so the newest event happens now, keeping relative spacing.
    #[arg(long)]
    pub rewrite_timestamps: bool,

    /// Replace wamid./wacid. ids by fresh ones, the same old id by the same new id in all files.
    #[arg(long)]
    pub rewrite_ids: bool,

    /// At most this many requests per second.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,

    /// Print the request line, headers and body of each request instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the replay, printing one line per fixture on stdout and problems on stderr.
/// Returns the process exit code.
pub async fn run(args: ReplayArgs) -> i32 {
    #[allow(clippy::disallowed_methods, reason = "the one wall-clock read")]
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    replay(&args, now, &mut std::io::stdout(), &mut std::io::stderr()).await
}

/// One body ready to send.
struct Prepared {
    path: PathBuf,
    body: Value,
}

/// [`run`] with the clock and the output streams passed in.
async fn replay<O: Write, E: Write>(args: &ReplayArgs, now: i64, out: &mut O, err: &mut E) -> i32 {
    // Console output is best effort: a closed pipe must not change the exit code.
    macro_rules! say { ($w:expr, $($t:tt)*) => { let _ = writeln!($w, $($t)*); } }

    let target = match args.to.as_deref().map(parse_target).transpose() {
        Ok(t) => t,
        Err(msg) => {
            say!(err, "replay: {msg}");
            return EXIT_USAGE;
        }
    };
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            say!(
                err,
                "replay: --rate must be a positive number of requests per second, got {rate}"
            );
            return EXIT_USAGE;
        }
    }
    let mut fixtures = match load_inputs(&args.paths, err) {
        Ok(f) => f,
        Err(msg) => {
            say!(err, "replay: {msg}");
            return EXIT_USAGE;
        }
    };
    if fixtures.is_empty() {
        say!(err, "replay: nothing to replay: no webhook bodies found");
        return EXIT_USAGE;
    }
    {
        let mut bodies: Vec<&mut Value> = fixtures.iter_mut().map(|f| &mut f.body).collect();
        if args.rewrite_timestamps {
            rewrite_timestamps(&mut bodies, now);
        }
        if args.rewrite_ids {
            #[allow(clippy::disallowed_methods, reason = "fresh ids on every run")]
            rewrite_ids(&mut bodies, &mut rand::thread_rng());
        }
    }

    let secret = args.app_secret.as_bytes();
    if args.dry_run {
        let url = args.to.as_deref().unwrap_or("<--to URL>");
        for f in &fixtures {
            let body = encode_ascii(&f.body);
            say!(out, "=== {}", f.path.display());
            say!(out, "POST {url}");
            say!(out, "Content-Type: application/json");
            say!(out, "Content-Length: {}", body.len());
            say!(
                out,
                "X-Hub-Signature-256: {}",
                sign(secret, body.as_bytes())
            );
            say!(out, "");
            say!(out, "{body}");
            say!(out, "");
        }
        return EXIT_OK;
    }
    let Some(target) = target else {
        say!(
            err,
            "replay: --to URL is required unless --dry-run is given"
        );
        return EXIT_USAGE;
    };

    let client = Client::new().with_timeout(REQUEST_TIMEOUT);
    let interval = args.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    #[allow(clippy::disallowed_methods, reason = "--rate paces in real time")]
    let started = tokio::time::Instant::now();
    let (mut accepted, mut failed) = (0usize, 0usize);
    for (i, f) in fixtures.iter().enumerate() {
        if let Some(interval) = interval {
            tokio::time::sleep_until(started + interval * i as u32).await;
        }
        let body = encode_ascii(&f.body);
        let signature = sign(secret, body.as_bytes());
        #[allow(clippy::disallowed_methods, reason = "reports the real round trip")]
        let t0 = Instant::now();
        let outcome = send(&client, &target, body, &signature).await;
        #[allow(clippy::disallowed_methods, reason = "reports the real round trip")]
        let ms = t0.elapsed().as_millis();
        match outcome {
            Ok(answer) if answer.is_success() => {
                accepted += 1;
                say!(out, "{}  {}  {ms} ms", f.path.display(), answer.status);
            }
            Ok(answer) => {
                failed += 1;
                say!(
                    out,
                    "{}  {}  {ms} ms  body: {}",
                    f.path.display(),
                    answer.status,
                    excerpt(&answer.body)
                );
            }
            Err(e) => {
                failed += 1;
                // The fixture names the request; the problem says why it got no answer.
                say!(out, "{}  failed: {}  {ms} ms", f.path.display(), e.problem);
            }
        }
    }
    say!(
        out,
        "replayed {} fixture(s) to {}: {accepted} answered 2xx, {failed} did not",
        fixtures.len(),
        target
    );
    if failed == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn parse_target(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("--to {url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.authority().is_some() => Ok(uri),
        Some("https") => Err(format!(
            "--to {url}: only http:// is supported (put a TLS-terminating proxy in front for https)"
        )),
        _ => Err(format!(
            "--to {url:?}: expected an absolute http:// URL like http://127.0.0.1:8000/webhook"
        )),
    }
}

/// Reads every input before anything is sent. Files named explicitly must be webhook bodies;
/// other JSON found while walking a folder (recorded responses, say) is skipped with a note.
fn load_inputs<E: Write>(paths: &[PathBuf], err: &mut E) -> Result<Vec<Prepared>, String> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            let found = json_files(path).map_err(|e| e.to_string())?;
            if found.is_empty() {
                return Err(format!("{}: no .json files in this folder", path.display()));
            }
            for file in found {
                let body = read_json(&file).map_err(|e| e.to_string())?;
                if is_webhook_body(&body) {
                    out.push(Prepared { path: file, body });
                } else {
                    let _ = writeln!(
                        err,
                        "replay: skipping {}: not a webhook body (no \"object\" and \"entry\")",
                        file.display()
                    );
                }
            }
        } else {
            let body = read_json(path).map_err(|e| e.to_string())?;
            if !is_webhook_body(&body) {
                return Err(format!(
                    "{}: not a webhook body: expected a JSON object with \"object\" and an \"entry\" array",
                    path.display()
                ));
            }
            out.push(Prepared {
                path: path.clone(),
                body,
            });
        }
    }
    Ok(out)
}

fn is_webhook_body(v: &Value) -> bool {
    v.get("object").is_some_and(Value::is_string) && v.get("entry").is_some_and(Value::is_array)
}

/// One signed POST, headers as Meta sends them (`Content-Length`, never chunked).
async fn send(
    client: &Client,
    target: &Uri,
    body: String,
    signature: &str,
) -> Result<Response, ClientError> {
    let length = body.len().to_string();
    let headers = [
        ("content-type", "application/json"),
        ("content-length", length.as_str()),
        ("x-hub-signature-256", signature),
        (
            "user-agent",
            concat!("wa-emulator-replay/", env!("CARGO_PKG_VERSION")),
        ),
    ];
    client
        .request("POST", &target.to_string(), &headers, body)
        .await
}

fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "(empty)".to_owned()
    } else if one_line.chars().count() > MAX {
        format!("{}…", one_line.chars().take(MAX).collect::<String>())
    } else {
        one_line
    }
}

/// Unix seconds as fixtures hold them: a digit string or an integer, ten or eleven digits
/// (years 2001 to 5138), so small counters and millisecond values are left alone.
fn unix_seconds(v: &Value) -> Option<i64> {
    let n = match v {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().ok()?
        }
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    (1_000_000_000..100_000_000_000).contains(&n).then_some(n)
}

fn visit_keyed_mut(v: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                f(k, child);
                visit_keyed_mut(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                visit_keyed_mut(child, f);
            }
        }
        _ => {}
    }
}

/// Shifts every timestamp-like value (`timestamp`, `start_time`, `end_time`, `time`,
/// `expiration_timestamp`; string or integer unix seconds) by one offset so the newest event
/// time across all `bodies` equals `now`. Types are kept (a string stays a string);
/// `duration` and other numbers are untouched. Returns the offset applied, if any.
pub fn rewrite_timestamps(bodies: &mut [&mut Value], now: i64) -> Option<i64> {
    let mut newest_event: Option<i64> = None;
    let mut newest_any: Option<i64> = None;
    for body in bodies.iter_mut() {
        visit_keyed_mut(body, &mut |key, v| {
            if let Some(t) = unix_seconds(v) {
                if EVENT_TIME_KEYS.contains(&key) {
                    newest_event = newest_event.max(Some(t));
                }
                if EVENT_TIME_KEYS.contains(&key) || FUTURE_TIME_KEYS.contains(&key) {
                    newest_any = newest_any.max(Some(t));
                }
            }
        });
    }
    let shift = now - newest_event.or(newest_any)?;
    for body in bodies.iter_mut() {
        visit_keyed_mut(body, &mut |key, v| {
            if !(EVENT_TIME_KEYS.contains(&key) || FUTURE_TIME_KEYS.contains(&key)) {
                return;
            }
            let Some(t) = unix_seconds(v) else { return };
            *v = match v {
                Value::String(_) => Value::String((t + shift).to_string()),
                _ => Value::from(t + shift),
            };
        });
    }
    Some(shift)
}

/// Replaces every `wamid.…` and `wacid.…` string by a fresh id of the same prefix and length,
/// consistently: one old id maps to one new id in every body (a status keeps pointing at its
/// message, a terminate at its connect). Returns the mapping.
pub fn rewrite_ids(bodies: &mut [&mut Value], rng: &mut impl Rng) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut issued: HashSet<String> = HashSet::new();
    for body in bodies.iter_mut() {
        rewrite_ids_in(body, &mut map, &mut issued, rng);
    }
    map
}

fn rewrite_ids_in(
    v: &mut Value,
    map: &mut HashMap<String, String>,
    issued: &mut HashSet<String>,
    rng: &mut impl Rng,
) {
    match v {
        Value::String(s) => {
            let Some(prefix) = ["wamid.", "wacid."].into_iter().find(|p| s.starts_with(p)) else {
                return;
            };
            if let Some(new) = map.get(s.as_str()) {
                *s = new.clone();
                return;
            }
            let new = loop {
                let candidate = fresh_id(prefix, &s[prefix.len()..], rng);
                if candidate != *s && issued.insert(candidate.clone()) {
                    break candidate;
                }
            };
            map.insert(s.clone(), new.clone());
            *s = new;
        }
        Value::Array(items) => {
            for item in items {
                rewrite_ids_in(item, map, issued, rng);
            }
        }
        Value::Object(m) => {
            for (_, child) in m.iter_mut() {
                rewrite_ids_in(child, map, issued, rng);
            }
        }
        _ => {}
    }
}

/// `prefix` + base64-alphabet characters, as long as the old id and with its `=` padding.
fn fresh_id(prefix: &str, old_suffix: &str, rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let padding = old_suffix.len() - old_suffix.trim_end_matches('=').len();
    let random_len = old_suffix.len().max(16) - padding;
    let mut id = String::with_capacity(prefix.len() + random_len + padding);
    id.push_str(prefix);
    for _ in 0..random_len {
        id.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    id.push_str(&"=".repeat(padding));
    id
}

#[cfg(test)]
mod tests {
    use super::*;
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
                                let body =
                                    req.into_body().collect().await.unwrap().to_bytes().to_vec();
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
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
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
            "https://example.invalid/webhook",
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
        let mut status = json!({"statuses": [{"id": "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI1QjE3QzY0RTJFN0M0QjlBOEQA"}]});
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
        let cli =
            Cli::try_parse_from(["replay", "fixtures", "--to", "http://127.0.0.1:1/"]).unwrap();
        assert_eq!(cli.replay.app_secret, "wa-emulator-secret");
        std::env::set_var("WA_EMULATOR_APP_SECRET", "from-env");
        let cli =
            Cli::try_parse_from(["replay", "fixtures", "--to", "http://127.0.0.1:1/"]).unwrap();
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
}
