//! The write-ahead log of `--state FILE`: every input to the engine, on disk before it is
//! acknowledged. (Not the request history of `GET /__emulator/requests`, which is state.)
//!
//! The engine is deterministic: the same inputs at the same times from the same state give
//! the same state (ids included). So persistence is a snapshot (`FILE`) plus an append-only
//! log of every input since (`FILE.wal`), one JSON line each. An acknowledged request is
//! in the log, fsynced, before its response leaves (group commit: one fsync covers every
//! input queued meanwhile). At start the snapshot is loaded, the log replayed (a torn last
//! line from a crash is ignored), and both are compacted into a new snapshot.

use crate::api::{self, Context, Request};
use crate::engine::Engine;
use crate::webhook::outbox::Outcome;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Inputs logged between two compactions.
const COMPACT_EVERY: u64 = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Input {
    /// A request handled by the API layer.
    Api {
        now: u64,
        method: String,
        pq: String,
        auth: Option<String>,
        body: String,
    },
    /// A webhook delivery attempt's outcome.
    Record {
        now: u64,
        seq: u64,
        url: String,
        status: Option<u16>,
        body: Option<String>,
        error: Option<String>,
    },
    /// One virtual-clock step toward `target`.
    Step { target: u64 },
    /// The callback URL was set (after its handshake) or cleared.
    Webhook {
        app: Option<String>,
        url: Option<String>,
        token: Option<String>,
    },
    /// A business's INVITE to the SIP gateway that rang a user (refused ones change
    /// nothing). Replayed as admitted: the password it was checked with is state.
    SipAdmit {
        now: u64,
        invite: crate::domain::sip::IncomingInvite,
    },
    /// A SIP event for a call.
    Sip {
        now: u64,
        wacid: String,
        event: SipInput,
    },
    /// What a call's media endpoint saw.
    Media {
        now: u64,
        wacid: String,
        event: MediaInput,
    },
    /// Where the process's media endpoint listened (first in every log): the SDPs of the
    /// inputs after it point there, and SDES keys are drawn only with an endpoint, so a
    /// replay needs the endpoint of the process that logged them, not its own.
    MediaLocal {
        addr: Option<std::net::SocketAddr>,
        fingerprint: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaInput {
    FirstAudio,
    Failed {
        why: String,
    },
    /// The business's audio stopped mid-call, silent for `silent_ms` of real time when
    /// the endpoint noticed.
    AudioStopped {
        silent_ms: u64,
    },
    AudioResumed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SipInput {
    Message {
        outgoing: bool,
        first_line: String,
        raw: String,
    },
    Answered {
        sdp: String,
    },
    Failed {
        status: u16,
    },
    TimedOut,
    Bye,
}

impl Input {
    pub fn api(now: u64, req: &Request) -> Self {
        Input::Api {
            now,
            method: req.method.clone(),
            pq: if req.raw_query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.raw_query)
            },
            auth: req.header("authorization").map(str::to_owned),
            body: base64::engine::general_purpose::STANDARD.encode(&req.body),
        }
    }

    pub fn record(now: u64, seq: u64, url: &str, outcome: &Outcome) -> Self {
        let (status, body, error) = match outcome {
            Outcome::Status { status, body } => (Some(*status), Some(body.clone()), None),
            Outcome::Error(e) => (None, None, Some(e.clone())),
        };
        Input::Record {
            now,
            seq,
            url: url.to_owned(),
            status,
            body,
            error,
        }
    }

    pub fn media_local(local: Option<&crate::media::sdp::Local>) -> Self {
        Input::MediaLocal {
            addr: local.map(|l| l.addr),
            fingerprint: local.map(|l| l.fingerprint.clone()),
        }
    }

    /// Applies the input to the engine exactly as it was applied the first time.
    pub fn apply(self, engine: &mut Engine, ctx: &Context) {
        match self {
            Input::Api {
                now,
                method,
                pq,
                auth,
                body,
            } => {
                engine.observe_real_time(now);
                let headers = auth
                    .map(|a| vec![("authorization".to_owned(), a)])
                    .unwrap_or_default();
                let body = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap_or_default();
                let _ = api::handle(engine, &Request::new(&method, &pq, headers, body), ctx);
            }
            Input::Record {
                now,
                seq,
                url,
                status,
                body,
                error,
            } => {
                engine.observe_real_time(now);
                let outcome = match status {
                    Some(status) => Outcome::Status {
                        status,
                        body: body.unwrap_or_default(),
                    },
                    None => Outcome::Error(error.unwrap_or_default()),
                };
                engine.st.outbox.record(seq, url, outcome, now);
            }
            Input::Step { target } => {
                engine.advance_step(target);
            }
            Input::Webhook { app, url, token } => {
                engine.set_webhook_url(app.as_deref(), url, token)
            }
            Input::SipAdmit { now, invite } => {
                engine.observe_real_time(now);
                engine.begin();
                let admission = engine.sip_admit(&invite, &|_| true);
                engine.finish(matches!(
                    admission,
                    crate::domain::sip::Admission::Ringing(_)
                ));
            }
            Input::Sip { now, wacid, event } => {
                engine.observe_real_time(now);
                let call = crate::domain::ids::CallId(wacid.clone());
                match event {
                    SipInput::Message {
                        outgoing,
                        first_line,
                        raw,
                    } => engine.sip_log(&wacid, outgoing, first_line, raw),
                    SipInput::Answered { sdp } => engine.sip_answered(&call, sdp),
                    SipInput::Failed { status } => engine.sip_failed(&call, status),
                    SipInput::TimedOut => engine.sip_timed_out(&call),
                    SipInput::Bye => engine.sip_bye_from_server(&call),
                }
            }
            Input::Media { now, wacid, event } => {
                engine.observe_real_time(now);
                let call = crate::domain::ids::CallId(wacid);
                match event {
                    MediaInput::FirstAudio => engine.media_first_audio(&call),
                    MediaInput::Failed { why } => engine.media_failed(&call, why),
                    MediaInput::AudioStopped { silent_ms } => {
                        engine.media_audio_stopped(&call, silent_ms)
                    }
                    MediaInput::AudioResumed => engine.media_audio_resumed(&call),
                }
            }
            Input::MediaLocal { addr, fingerprint } => {
                engine.media_local = addr
                    .zip(fingerprint)
                    .map(|(addr, fingerprint)| crate::media::sdp::Local { addr, fingerprint });
            }
        }
        // Replays never redo side effects such as SIP INVITEs.
        engine.take_effects();
    }
}

pub fn wal_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".wal");
    PathBuf::from(p)
}

/// Loads the snapshot and replays the log; returns how many inputs were replayed.
pub fn recover(engine: &mut Engine, state: &Path, ctx: &Context) -> Result<usize, String> {
    match std::fs::read(state) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("state file {} is not valid JSON: {e}", state.display()))?;
            engine
                .restore(v)
                .map_err(|e| format!("state file {}: {e}", state.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read state file {}: {e}", state.display())),
    }
    let wal = wal_path(state);
    let file = match std::fs::File::open(&wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(format!(
                "cannot read the write-ahead log {}: {e}",
                wal.display()
            ))
        }
    };
    let mut n = 0;
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        // A crash can leave a torn last line: everything before it was acknowledged.
        let Ok(input) = serde_json::from_str::<Input>(&line) else {
            break;
        };
        input.apply(engine, ctx);
        n += 1;
    }
    engine.st.outbox.reindex();
    Ok(n)
}

/// Writes the snapshot atomically: temp file, fsync, rename.
pub fn write_snapshot(path: &Path, snapshot: &serde_json::Value) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, snapshot)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

pub enum Msg {
    Input(Vec<u8>, Option<tokio::sync::oneshot::Sender<()>>),
    /// A snapshot of the state after every input sent before it.
    Compact(serde_json::Value),
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// The log's writer: owns the files, batches inputs into one fsync, acknowledges.
#[derive(Clone)]
pub struct WriteAheadLog {
    tx: mpsc::Sender<Msg>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl WriteAheadLog {
    /// `first` begins the log, and begins it again after every compaction: what a replay
    /// needs of this process that the snapshot does not hold.
    pub fn start(state: PathBuf, first: &Input) -> std::io::Result<Self> {
        let wal = wal_path(&state);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal)?;
        let mut preamble = serde_json::to_vec(first).unwrap_or_default();
        preamble.push(b'\n');
        file.write_all(&preamble)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        std::thread::Builder::new()
            .name("wa-emulator-wal".into())
            .spawn(move || {
                let mut acks = Vec::new();
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let mut stop = None;
                    for msg in batch {
                        match msg {
                            Msg::Input(bytes, ack) => {
                                if let Err(e) =
                                    file.write_all(&bytes).and_then(|_| file.write_all(b"\n"))
                                {
                                    tracing::error!("write-ahead log write failed: {e}");
                                }
                                acks.extend(ack);
                            }
                            Msg::Compact(snapshot) => {
                                let _ = file.sync_data();
                                match write_snapshot(&state, &snapshot)
                                    .and_then(|_| file.set_len(0))
                                    .and_then(|_| file.write_all(&preamble))
                                {
                                    Ok(()) => {}
                                    Err(e) => {
                                        tracing::error!("write-ahead log compaction failed: {e}")
                                    }
                                }
                            }
                            Msg::Stop(ack) => stop = Some(ack),
                        }
                    }
                    if let Err(e) = file.sync_data() {
                        tracing::error!("write-ahead log fsync failed: {e}");
                    }
                    for ack in acks.drain(..) {
                        let _ = ack.send(());
                    }
                    if let Some(ack) = stop {
                        let _ = ack.send(());
                        return;
                    }
                }
            })?;
        Ok(Self { tx, written })
    }

    /// Queues an input (call with the engine locked, so log order is apply order).
    /// The receiver resolves once the input is on disk.
    pub fn append(&self, input: &Input, engine: &mut Engine) -> tokio::sync::oneshot::Receiver<()> {
        let (ack, done) = tokio::sync::oneshot::channel();
        let bytes = serde_json::to_vec(input).unwrap_or_default();
        let _ = self.tx.send(Msg::Input(bytes, Some(ack)));
        let n = self
            .written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if n.is_multiple_of(COMPACT_EVERY) {
            let _ = self.tx.send(Msg::Compact(engine.checkpoint()));
        }
        done
    }

    /// Compacts now (state after everything queued so far).
    pub fn compact(&self, engine: &mut Engine) {
        let _ = self.tx.send(Msg::Compact(engine.checkpoint()));
    }

    pub async fn stop(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Stop(ack)).is_ok() {
            let _ = done.await;
        }
    }
}
