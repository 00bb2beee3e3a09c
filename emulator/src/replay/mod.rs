//! `wa-emulator replay FILE|DIR… --to URL`: posts webhook fixtures to a receiver, signed the
//! way Meta signs them.
//!
//! For QA replaying recorded webhooks against a service without the emulator running. Each
//! body is re-encoded ASCII-escaped (`\uXXXX`, lowercase hex), signed with the app secret
//! (`X-Hub-Signature-256`) and sent with `Content-Length`, one request per fixture, in order.
//! Every input is read and checked before the first request, so a broken folder never
//! half-replays. An https receiver's certificate is checked against the system's roots and
//! `--ca FILE` (or not at all with `--insecure`), and a TLS failure's report names the
//! reason ("unknown CA …"). Exit codes: 0 every receiver answer was 2xx, 1 any was not (or a connection
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
use crate::server::tls::Trust;
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

    /// Receiver URL, http:// or https://, e.g. https://localhost:8443/webhook.
    #[arg(long, value_name = "URL", required_unless_present = "dry_run")]
    pub to: Option<String>,

    /// Also trust these PEM certificates for an https receiver, besides the system's roots:
    /// the CA of a local setup (mkcert's rootCA.pem, your own CA) or a self-signed
    /// certificate itself. Without it, such a receiver's requests fail with "unknown CA".
    #[arg(long, env = "WA_EMULATOR_WEBHOOK_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Accept ANY certificate from an https receiver (no CA, name or date check), with a
    /// warning. For a quick try only: --ca checks what Meta checks.
    #[arg(
        long,
        env = "WA_EMULATOR_WEBHOOK_INSECURE",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub insecure: bool,

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

    let trust = Trust {
        ca_file: args.ca.clone(),
        insecure: args.insecure,
    };
    let https = target.scheme_str() == Some("https");
    let client = if https {
        Client::with_trust(&trust, "--ca")
    } else {
        trust.check().map(|()| Client::new())
    };
    let client = match client {
        Ok(c) => c.with_timeout(REQUEST_TIMEOUT),
        Err(msg) => {
            say!(err, "replay: --ca: {msg}");
            return EXIT_USAGE;
        }
    };
    if args.insecure && https {
        say!(
            err,
            "replay: --insecure: the receiver's certificate is NOT checked; use --ca FILE instead"
        );
    }
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
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(format!(
            "--to {url:?}: expected an absolute http:// or https:// URL like https://localhost:8443/webhook"
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
mod tests;
