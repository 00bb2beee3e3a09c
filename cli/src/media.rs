//! The user's media on a call (issue 18): `wa-emulator media CALL_ID` reads the user's
//! endpoint (`GET /__emulator/calls/{id}/media`), `dtmf` presses keys and `play` changes
//! what the user says (`POST …/dtmf`, `POST …/play`). Each prints the endpoint's state in
//! words, or the emulator's refusal with its reason.

use crate::Target;
use base64::Engine as _;
use serde_json::{json, Value};
use wa_emulator::server::client::Client;

/// What `play` sends: exactly one source (clap's group makes sure).
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Sound {
    /// A sine tone of this many hertz (20–20000), until told otherwise.
    #[arg(long, value_name = "HZ")]
    pub tone: Option<u32>,
    /// A PCM WAV file (any rate, mono or stereo, up to 300 s), played once.
    #[arg(long, value_name = "FILE")]
    pub wav: Option<std::path::PathBuf>,
    /// Silence (the default of every call).
    #[arg(long)]
    pub silence: bool,
}

/// `wa-emulator media CALL_ID [--json]`.
pub async fn show(target: &Target, call_id: &str, raw: bool) -> i32 {
    let path = format!("/__emulator/calls/{}/media", encode(call_id));
    match send(target, "GET", &path, None).await {
        Ok(report) => {
            print(&report, raw);
            0
        }
        Err(code) => code,
    }
}

/// `wa-emulator dtmf CALL_ID DIGITS`.
pub async fn dtmf(target: &Target, call_id: &str, digits: &str, raw: bool) -> i32 {
    let path = format!("/__emulator/calls/{}/dtmf", encode(call_id));
    match send(target, "POST", &path, Some(json!({ "digits": digits }))).await {
        Ok(report) => {
            if !raw {
                println!("the user pressed {digits} (RFC 4733 events of 100 ms each)");
            }
            print(&report, raw);
            0
        }
        Err(code) => code,
    }
}

/// `wa-emulator play CALL_ID --tone HZ | --wav FILE | --silence`.
pub async fn play(target: &Target, call_id: &str, sound: &Sound, raw: bool) -> i32 {
    let (body, said) = if let Some(hz) = sound.tone {
        (json!({ "tone_hz": hz }), format!("a {hz} Hz tone"))
    } else if let Some(file) = &sound.wav {
        match std::fs::read(file) {
            Ok(bytes) => (
                json!({ "wav": base64::engine::general_purpose::STANDARD.encode(bytes) }),
                format!("{} (once)", file.display()),
            ),
            Err(e) => {
                eprintln!("error: cannot read the WAV file {}: {e}", file.display());
                return 2;
            }
        }
    } else {
        (json!({ "silence": true }), "silence".to_owned())
    };
    let path = format!("/__emulator/calls/{}/play", encode(call_id));
    match send(target, "POST", &path, Some(body)).await {
        Ok(report) => {
            if !raw {
                println!("the user now says {said}");
            }
            print(&report, raw);
            0
        }
        Err(code) => code,
    }
}

/// The answer's JSON, or the exit code after saying why there is none (2: no
/// emulator; 1: it refused).
async fn send(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, i32> {
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let answer = match Client::new()
        .json(method, &url, target.admin_token.as_deref(), body.as_ref())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: cannot reach the emulator at {}: {}\n  start one with `wa-emulator serve`, or pass --url",
                target.url, e.problem
            );
            return Err(2);
        }
    };
    let (status, v) = (answer.status.as_u16(), answer.json());
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let error = &v["error"];
    let text = |k: &str| error[k].as_str().unwrap_or("").to_owned();
    let details = error["error_data"]["details"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| text("message"));
    match error["error_data"]["reason"].as_str() {
        Some(reason) => {
            eprintln!("refused ({status}, {reason}): {details}");
            if let Some(help) = help(reason) {
                eprintln!("  {help}");
            }
        }
        None => eprintln!("refused ({status}): {details}"),
    }
    Err(1)
}

/// What to do about a media refusal.
fn help(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "no_media" => "the call is signalling only: send an SDP with ICE credentials and a candidate (a real WebRTC stack's) for the user's media to connect",
        "media_refused" => "the business's SDP offered no telephone-event, or too many keys wait, or the endpoint closed; `wa-emulator media CALL_ID` shows its state",
        "call_ended" => "the call has ended; `wa-emulator media CALL_ID` still shows what flowed",
        _ => return None,
    })
}

/// Prints the media report in words (or as JSON).
fn print(r: &Value, raw: bool) {
    if raw {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    let call = r["call_id"].as_str().unwrap_or("");
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let state = s(&r["state"]);
    if state == "none" {
        println!("call {call}: signalling only (the business's SDP had no ICE candidate): no media flows");
        return;
    }
    println!(
        "call {call}: media {state} (ICE {}, DTLS {})",
        s(&r["ice"]),
        s(&r["dtls"])
    );
    if let Some(f) = r["failure"].as_str() {
        println!("  failure:  {f}");
    }
    println!("  the user says: {}", s(&r["playing"]));
    let rx = &r["received"];
    let mut heard = counts(rx);
    match rx["first_packet_ms"].as_u64() {
        Some(ms) => heard.push_str(&format!(", the first {ms} ms after the SDP")),
        None => heard.push_str(", no audio yet"),
    }
    if let Some(db) = rx["audio_level_dbfs"].as_f64() {
        heard.push_str(&format!(", level {db:.1} dBFS"));
    }
    println!("  received: {heard}, keys {}", keys(&rx["dtmf"]));
    println!(
        "  sent:     {}, keys {}",
        counts(&r["sent"]),
        keys(&r["sent"]["dtmf"])
    );
}

fn counts(v: &Value) -> String {
    format!(
        "{} packets, {} bytes",
        v["packets"].as_u64().unwrap_or(0),
        v["bytes"].as_u64().unwrap_or(0)
    )
}

fn keys(v: &Value) -> String {
    match v.as_str() {
        Some("") | None => "none".to_owned(),
        Some(k) => format!("\"{k}\""),
    }
}

/// A call id in a path segment (ids are URL-safe today; this keeps a pasted one so).
fn encode(id: &str) -> String {
    id.chars()
        .flat_map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '_' | '~' => vec![c.to_string()],
            _ => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
        })
        .collect()
}
