//! The media shell: one UDP socket on loopback for every call's endpoint, the clock and
//! the 20 ms pacing, and the admin routes that reach an endpoint
//! (`GET /__emulator/calls/{id}/media`, `POST …/dtmf`, `POST …/play`).
//!
//! One task owns the socket and the endpoints, sans-IO, of two kinds: WebRTC
//! ([`crate::media::endpoint`]) and, for SIP calls with SDES keys or plain RTP,
//! [`crate::media::rtp`]. It routes each datagram to the endpoint that accepts it (STUN
//! by its ICE usernames, the rest by the address ICE chose; RTP by the address the
//! business's SDP named or the one it latched to, else, before latching or when several
//! calls share an address, by the packet's SRTP key or SSRC), ticks endpoints at their
//! deadlines, and reports what the core must know (first audio, failure) to the call's
//! tenant, logged first.

use super::tenants::Tenant;
use super::{run_effects, wal, Shared};
use crate::api::{Request, Response};
use crate::domain::error::{ApiError, ErrorKind};
use crate::domain::ids::CallId;
use crate::media::endpoint::{Datagram, Endpoint, Happening, Identity, Report};
use crate::media::rtp::RtpEndpoint;
use crate::media::sdp::{Local, Remote, RtpSession};
use crate::media::sound::{self, Source};
use base64::Engine as _;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Ended calls whose endpoint report is kept for `GET …/media`.
const KEPT_ENDED: usize = 1_000;
/// How often ended work is looked for when nothing else happens.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

#[allow(clippy::disallowed_methods, reason = "the media shell's clock")]
fn now() -> Instant {
    Instant::now()
}

/// (tenant id, wacid): tenants may draw the same call ids.
type Key = (String, String);

enum Command {
    Start {
        tenant: Weak<Tenant>,
        key: Key,
        ice: (String, String),
        remote: Box<Remote>,
    },
    StartRtp {
        tenant: Weak<Tenant>,
        key: Key,
        session: Box<RtpSession>,
    },
    Talk(Key),
    Stop(Key),
    Play(Key, Source, oneshot::Sender<Result<(), String>>),
    Dtmf(Key, String, oneshot::Sender<Result<(), String>>),
    Report(Key, oneshot::Sender<Option<Report>>),
}

/// Handed to the shell's parts: where the endpoints listen, and the command queue.
pub(crate) struct MediaHub {
    pub local: Option<Local>,
    commands: mpsc::UnboundedSender<Command>,
}

/// What [`MediaHub::new`] leaves for [`run`].
pub(crate) struct MediaTask {
    socket: std::net::UdpSocket,
    identity: Identity,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl MediaHub {
    /// Binds the endpoints' socket on loopback and makes the DTLS certificate. Without
    /// them (no socket), calls stay signalling only.
    pub fn new() -> (MediaHub, Option<MediaTask>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ready = std::net::UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| e.to_string())
            .and_then(|s| {
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
                let addr = s.local_addr().map_err(|e| e.to_string())?;
                Ok((s, addr, super::keys::media_identity()?))
            });
        match ready {
            Ok((socket, addr, identity)) => (
                MediaHub {
                    local: Some(Local {
                        addr,
                        fingerprint: identity.fingerprint.clone(),
                    }),
                    commands: tx,
                },
                Some(MediaTask {
                    socket,
                    identity,
                    commands: rx,
                }),
            ),
            Err(e) => {
                tracing::warn!("no media endpoint (calls are signalling only): {e}");
                (
                    MediaHub {
                        local: None,
                        commands: tx,
                    },
                    None,
                )
            }
        }
    }

    /// Runs a media effect of a tenant's engine.
    pub fn run(&self, tenant: &Arc<Tenant>, effect: crate::engine::Effect) {
        use crate::engine::Effect;
        let key = |c: &CallId| (tenant.id.clone(), c.as_str().to_owned());
        let cmd = match effect {
            Effect::MediaStart {
                call_id,
                ice,
                remote,
            } => Command::Start {
                tenant: Arc::downgrade(tenant),
                key: key(&call_id),
                ice,
                remote,
            },
            Effect::MediaStartRtp { call_id, session } => Command::StartRtp {
                tenant: Arc::downgrade(tenant),
                key: key(&call_id),
                session,
            },
            Effect::MediaTalk { call_id } => Command::Talk(key(&call_id)),
            Effect::MediaStop { call_id } => Command::Stop(key(&call_id)),
            _ => return,
        };
        let _ = self.commands.send(cmd);
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).ok()?;
        rx.await.ok()
    }
}

struct Slot {
    tenant: Weak<Tenant>,
    endpoint: Kind,
}

/// The two kinds of endpoint, one interface for the task.
enum Kind {
    WebRtc(Box<Endpoint>),
    Rtp(Box<RtpEndpoint>),
}

impl Kind {
    fn is_finished(&self) -> bool {
        match self {
            Kind::WebRtc(e) => e.is_finished(),
            Kind::Rtp(e) => e.is_finished(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Kind::WebRtc(e) => Some(e.deadline()),
            Kind::Rtp(e) => e.deadline(),
        }
    }

    fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        match self {
            Kind::WebRtc(e) => e.receive(now, from, bytes),
            Kind::Rtp(e) => e.receive(now, from, bytes),
        }
    }

    fn tick(&mut self, now: Instant) {
        match self {
            Kind::WebRtc(e) => e.tick(now),
            Kind::Rtp(e) => e.tick(now),
        }
    }

    fn drain(&mut self, out: &mut Vec<Datagram>) {
        match self {
            Kind::WebRtc(e) => e.drain(out),
            Kind::Rtp(e) => e.drain(out),
        }
    }

    fn take_happenings(&mut self) -> Vec<Happening> {
        match self {
            Kind::WebRtc(e) => e.take_happenings(),
            Kind::Rtp(e) => e.take_happenings(),
        }
    }

    fn set_talking(&mut self, talking: bool, now: Instant) {
        match self {
            Kind::WebRtc(e) => e.set_talking(talking, now),
            Kind::Rtp(e) => e.set_talking(talking, now),
        }
    }

    fn play(&mut self, source: Source) {
        match self {
            Kind::WebRtc(e) => e.play(source),
            Kind::Rtp(e) => e.play(source),
        }
    }

    fn press(&mut self, digits: &str) -> Result<(), String> {
        match self {
            Kind::WebRtc(e) => e.press(digits),
            Kind::Rtp(e) => e.press(digits),
        }
    }

    fn close(&mut self) {
        match self {
            Kind::WebRtc(e) => e.close(),
            Kind::Rtp(e) => e.close(),
        }
    }

    fn report(&self) -> Report {
        match self {
            Kind::WebRtc(e) => e.report(),
            Kind::Rtp(e) => e.report(),
        }
    }
}

/// The call an RTP or SRTP datagram from `from` belongs to: by the business's address
/// (its SDP's, or the one latched to), the packet's content deciding between calls that
/// share one; else, before latching, by its content alone (the key, or the SSRC).
fn rtp_owner(slots: &HashMap<Key, Slot>, from: SocketAddr, bytes: &[u8]) -> Option<Key> {
    let by_addr: Vec<(&Key, &RtpEndpoint)> = slots
        .iter()
        .filter_map(|(k, s)| match &s.endpoint {
            Kind::Rtp(e) if e.accepts_address(from) => Some((k, &**e)),
            _ => None,
        })
        .collect();
    match by_addr.as_slice() {
        [(k, _)] => return Some((*k).clone()),
        [] => {}
        several => {
            let first = several[0].0;
            let k = several
                .iter()
                .find(|(_, e)| e.claims(bytes))
                .map_or(first, |(k, _)| *k);
            return Some(k.clone());
        }
    }
    slots.iter().find_map(|(k, s)| match &s.endpoint {
        Kind::Rtp(e) if e.accepts_content(bytes) => Some(k.clone()),
        _ => None,
    })
}

/// The user's SSRC of an RTP endpoint: random, as RFC 3550 §8.1 wants.
#[allow(clippy::disallowed_methods, reason = "the media shell's randomness")]
fn new_ssrc() -> u32 {
    rand::random()
}

/// The media task: until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, task: MediaTask, mut stop: watch::Receiver<bool>) {
    let MediaTask {
        socket,
        identity,
        mut commands,
    } = task;
    let Ok(socket) = tokio::net::UdpSocket::from_std(socket) else {
        return;
    };
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let mut slots: HashMap<Key, Slot> = HashMap::new();
    let mut by_addr: HashMap<SocketAddr, Key> = HashMap::new();
    let mut ended: VecDeque<Key> = VecDeque::new();
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    let mut next_housekeeping = now() + HOUSEKEEPING;
    loop {
        let deadline = slots
            .values()
            .filter(|s| !s.endpoint.is_finished())
            .filter_map(|s| s.endpoint.deadline())
            .min()
            .unwrap_or(next_housekeeping)
            .min(next_housekeeping);
        let mut touched: Vec<Key> = Vec::new();
        let mut rtp_routed = false;
        tokio::select! {
            _ = stop.changed() => return,
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let t = now();
                let bytes = &buf[..n];
                let is_stun = n > 0 && bytes[0] < 2;
                let key = by_addr
                    .get(&from)
                    .filter(|k| !is_stun && slots.contains_key(*k))
                    .cloned()
                    .or_else(|| {
                        slots
                            .iter()
                            .find(|(_, s)| match &s.endpoint {
                                Kind::WebRtc(e) => !e.is_finished() && e.accepts(t, from, bytes),
                                Kind::Rtp(_) => false,
                            })
                            .map(|(k, _)| k.clone())
                    })
                    .or_else(|| rtp_owner(&slots, from, bytes).inspect(|_| rtp_routed = true));
                if let Some(k) = key {
                    if let Some(s) = slots.get_mut(&k) {
                        s.endpoint.receive(t, from, bytes);
                        // RTP is routed afresh each time: calls may share an address.
                        if !rtp_routed && by_addr.len() < 10_000 {
                            by_addr.insert(from, k.clone());
                        }
                        touched.push(k);
                    }
                }
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return };
                let t = now();
                match cmd {
                    Command::Start { tenant, key, ice, remote } => {
                        match Endpoint::new(&identity, local, ice, &remote, t) {
                            Ok(endpoint) => {
                                let endpoint = Kind::WebRtc(Box::new(endpoint));
                                slots.insert(key.clone(), Slot { tenant, endpoint });
                                touched.push(key);
                            }
                            Err(why) => {
                                if let Some(tenant) = tenant.upgrade() {
                                    report(&shared, &tenant, &key.1, Happening::Failed(why));
                                }
                            }
                        }
                    }
                    Command::StartRtp { tenant, key, session } => {
                        match RtpEndpoint::new(&session, new_ssrc(), t) {
                            Ok(endpoint) => {
                                let endpoint = Kind::Rtp(Box::new(endpoint));
                                slots.insert(key.clone(), Slot { tenant, endpoint });
                                touched.push(key);
                            }
                            Err(why) => {
                                if let Some(tenant) = tenant.upgrade() {
                                    report(&shared, &tenant, &key.1, Happening::Failed(why));
                                }
                            }
                        }
                    }
                    Command::Talk(key) => {
                        if let Some(s) = slots.get_mut(&key) {
                            s.endpoint.set_talking(true, t);
                            touched.push(key);
                        }
                    }
                    Command::Stop(key) => {
                        if let Some(s) = slots.get_mut(&key) {
                            s.endpoint.close();
                            touched.push(key.clone());
                            ended.push_back(key);
                        }
                    }
                    Command::Play(key, source, reply) => {
                        let r = match slots.get_mut(&key) {
                            Some(s) if !s.endpoint.is_finished() => {
                                s.endpoint.play(source);
                                Ok(())
                            }
                            _ => Err("the call's media endpoint is closed".to_owned()),
                        };
                        let _ = reply.send(r);
                    }
                    Command::Dtmf(key, digits, reply) => {
                        let r = match slots.get_mut(&key) {
                            Some(s) if !s.endpoint.is_finished() => s.endpoint.press(&digits),
                            _ => Err("the call's media endpoint is closed".to_owned()),
                        };
                        let _ = reply.send(r);
                    }
                    Command::Report(key, reply) => {
                        let _ = reply.send(slots.get(&key).map(|s| s.endpoint.report()));
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let t = now();
                for (k, s) in slots.iter_mut() {
                    if !s.endpoint.is_finished() && s.endpoint.deadline().is_some_and(|d| d <= t) {
                        s.endpoint.tick(t);
                        touched.push(k.clone());
                    }
                }
            }
        }
        for k in touched {
            let Some(s) = slots.get_mut(&k) else { continue };
            s.endpoint.drain(&mut out);
            for d in out.drain(..) {
                // UDP on loopback: a full socket buffer drops the packet, as a network would.
                let _ = socket.try_send_to(&d.bytes, d.to);
            }
            let happened = s.endpoint.take_happenings();
            if happened.is_empty() {
                continue;
            }
            if let Some(tenant) = s.tenant.upgrade() {
                for h in happened {
                    report(&shared, &tenant, &k.1, h);
                }
            }
        }
        let t = now();
        if t >= next_housekeeping {
            next_housekeeping = t + HOUSEKEEPING;
            housekeeping(&shared, &mut slots, &mut by_addr, &mut ended);
        }
    }
}

/// Runs effects left in the engines of tenants with live endpoints (timers fired on a
/// lock, such as 138021, end calls between requests), and forgets the oldest ended
/// endpoints and those of deleted tenants.
fn housekeeping(
    shared: &Arc<Shared>,
    slots: &mut HashMap<Key, Slot>,
    by_addr: &mut HashMap<SocketAddr, Key>,
    ended: &mut VecDeque<Key>,
) {
    let mut seen: Vec<Arc<Tenant>> = Vec::new();
    for s in slots.values_mut() {
        match s.tenant.upgrade() {
            Some(t) if t.is_deleted() => s.endpoint.close(),
            Some(t) if !s.endpoint.is_finished() && !seen.iter().any(|x| Arc::ptr_eq(x, &t)) => {
                seen.push(t)
            }
            None => s.endpoint.close(),
            _ => {}
        }
    }
    for t in seen {
        let effects = t.lock().take_effects();
        if !effects.is_empty() {
            run_effects(shared, &t, effects);
            shared.touched(&t);
        }
    }
    while ended.len() > KEPT_ENDED {
        if let Some(k) = ended.pop_front() {
            slots.remove(&k);
        }
    }
    by_addr.retain(|_, k| slots.contains_key(k));
}

/// Tells a call's engine what its endpoint saw, logged first (the default tenant).
fn report(shared: &Arc<Shared>, tenant: &Arc<Tenant>, wacid: &str, h: Happening) {
    if tenant.is_deleted() {
        return;
    }
    let call = CallId(wacid.to_owned());
    let effects = {
        let mut engine = tenant.lock();
        let now = engine.now();
        let event = match &h {
            Happening::FirstAudio => wal::MediaInput::FirstAudio,
            Happening::Failed(why) => wal::MediaInput::Failed { why: why.clone() },
            Happening::AudioStopped { silent_for } => wal::MediaInput::AudioStopped {
                silent_ms: silent_for.as_millis() as u64,
            },
            Happening::AudioResumed => wal::MediaInput::AudioResumed,
        };
        let _ = shared.log_input(tenant, &mut engine, || wal::Input::Media {
            now,
            wacid: wacid.to_owned(),
            event,
        });
        match h {
            Happening::FirstAudio => engine.media_first_audio(&call),
            Happening::Failed(why) => engine.media_failed(&call, why),
            Happening::AudioStopped { silent_for } => {
                engine.media_audio_stopped(&call, silent_for.as_millis() as u64)
            }
            Happening::AudioResumed => engine.media_audio_resumed(&call),
        }
        engine.take_effects()
    };
    run_effects(shared, tenant, effects);
    shared.touched(tenant);
}

/// Whether the shell answers this admin request (routes that reach an endpoint).
/// Asked of every request (each send too), so it stops at the first segment that is not
/// `calls` and collects nothing.
pub(crate) fn owns(req: &Request) -> bool {
    let get = match req.method.as_str() {
        "GET" => true,
        "POST" => false,
        _ => return false,
    };
    let mut s = segment_iter(&req.path);
    if s.next() != Some("calls") {
        return false;
    }
    match (s.next(), s.next(), s.next()) {
        (Some(_), Some(action), None) if get => action == "media",
        (Some(_), Some(action), None) => matches!(action, "dtmf" | "play"),
        _ => false,
    }
}

fn segment_iter(path: &str) -> impl Iterator<Item = &str> {
    // `trim_start_matches(ADMIN_PREFIX)` as prefix comparisons, without a substring searcher.
    let mut path = path;
    while let Some(rest) = path.strip_prefix(crate::api::ADMIN_PREFIX) {
        path = rest;
    }
    path.split('/').filter(|s| !s.is_empty())
}

fn segments(path: &str) -> Vec<&str> {
    segment_iter(path).collect()
}

pub(crate) async fn serve(shared: &Arc<Shared>, tenant: &Arc<Tenant>, req: &Request) -> Response {
    let fail = |e: ApiError| {
        let mut engine = tenant.lock();
        Response::error(&mut engine, &e)
    };
    if !crate::api::admin_token_ok(&shared.ctx, req, false) {
        return fail(crate::api::admin_token_error());
    }
    let segs = segments(&req.path);
    let (Some(id), Some(action)) = (segs.get(1), segs.get(2)) else {
        return fail(ApiError::new(ErrorKind::NotFound, "No such route."));
    };
    let wacid = crate::api::decode_component(id);
    let call = tenant.lock().st.calls.get(&CallId(wacid.clone())).cloned();
    let Some(call) = call else {
        return fail(ApiError::new(
            ErrorKind::NotFound,
            format!("No call {wacid}."),
        ));
    };
    let key = (tenant.id.clone(), wacid.clone());
    let hub = &shared.media;
    if *action == "media" {
        let report = match call.media {
            Some(_) => hub.ask(|r| Command::Report(key, r)).await.flatten(),
            None => None,
        };
        return Response::ok(&media_json(&call, report));
    }
    let body = match crate::wire::json::parse_object(&req.body) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let o = crate::wire::json::Obj::new("", &body);
    let command = match *action {
        "dtmf" => match parse_digits(&o) {
            Ok(d) => Ok(Either::Dtmf(d)),
            Err(e) => Err(e),
        },
        _ => parse_play(&o).map(Either::Play),
    };
    let command = match command {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if !call.is_ongoing() {
        return fail(ApiError::refused(
            "call_ended",
            format!("Call {wacid} has already ended."),
        ));
    }
    if call.media.is_none() {
        return fail(ApiError::refused(
            "no_media",
            format!("Call {wacid} is signalling only: the business's SDP had no ICE credentials and candidate to connect the user's media to."),
        ));
    }
    let answer = match command {
        Either::Dtmf(d) => hub.ask(|r| Command::Dtmf(key.clone(), d, r)).await,
        Either::Play(s) => hub.ask(|r| Command::Play(key.clone(), s, r)).await,
    };
    match answer {
        Some(Ok(())) => {
            let report = hub.ask(|r| Command::Report(key, r)).await.flatten();
            Response::ok(&media_json(&call, report))
        }
        Some(Err(why)) => fail(ApiError::refused("media_refused", why)),
        None => fail(ApiError::refused(
            "no_media",
            "The emulator runs no media endpoint.",
        )),
    }
}

enum Either {
    Dtmf(String),
    Play(Source),
}

fn parse_digits(o: &crate::wire::json::Obj<'_>) -> Result<String, ApiError> {
    let digits = o.str_req("digits")?;
    let bad = crate::media::dtmf::invalid_keys(digits);
    if digits.is_empty() || digits.chars().count() > 64 || !bad.is_empty() {
        return Err(crate::wire::json::invalid(
            "digits",
            "1 to 64 phone keys (0-9, *, #, A-D)",
            crate::wire::json::quote_bounded(digits),
        ));
    }
    Ok(digits.to_owned())
}

fn parse_play(o: &crate::wire::json::Obj<'_>) -> Result<Source, ApiError> {
    let given: Vec<&str> = ["tone_hz", "wav", "silence"]
        .into_iter()
        .filter(|k| o.has(k))
        .collect();
    if given.len() != 1 {
        return Err(ApiError::new(
            ErrorKind::InvalidParameter,
            format!("Give exactly one of tone_hz (a number of hertz), wav (a base64 WAV file) or silence (true); got {}.", if given.is_empty() { "none".into() } else { given.join(", ") }),
        ));
    }
    if let Some(hz) = o.int_opt("tone_hz", 20, 20_000)? {
        return Ok(Source::tone(hz as f64));
    }
    if let Some(wav) = o.str_opt("wav")? {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(wav.trim())
            .map_err(|e| crate::wire::json::invalid("wav", "a base64-encoded WAV file", e))?;
        let samples = sound::wav_to_48k_mono(&bytes)
            .map_err(|e| crate::wire::json::invalid("wav", "a PCM WAV file", e))?;
        return Ok(Source::Clip { samples, at: 0 });
    }
    match o.bool_opt("silence")? {
        Some(true) => Ok(Source::Silence),
        _ => Err(crate::wire::json::invalid("silence", "true", "false")),
    }
}

/// The answer of the media routes: the endpoint's report, or what the call knows.
fn media_json(call: &crate::domain::call::Call, report: Option<Report>) -> serde_json::Value {
    let failure = call.media.as_ref().and_then(|m| m.failure.clone());
    let mut v = match report {
        Some(r) => serde_json::to_value(r).unwrap_or_default(),
        None => serde_json::json!({
            "state": if call.media.is_some() { "failed" } else { "none" },
            "ice": "none",
            "dtls": "none",
            "playing": "silence",
            "received": { "packets": 0, "bytes": 0, "first_packet_ms": null, "audio_level_dbfs": null, "dtmf": "" },
            "sent": { "packets": 0, "bytes": 0, "dtmf": "" },
        }),
    };
    v["call_id"] = serde_json::json!(call.id.as_str());
    if let Some(f) = failure {
        v["failure"] = serde_json::json!(f);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_only_the_media_routes() {
        let owned = |method: &str, path: &str| owns(&Request::new(method, path, Vec::new(), ""));
        for (method, path) in [
            ("GET", "/__emulator/calls/wacid.X/media"),
            ("POST", "/__emulator/calls/wacid.X/dtmf"),
            ("POST", "/__emulator/calls/wacid.X/play/"),
            ("post", "/__emulator//calls/x//play"),
            ("GET", "/__emulator/__emulator/calls/x/media"),
            ("GET", "/calls/x/media"),
        ] {
            assert!(owned(method, path), "{method} {path}");
        }
        for (method, path) in [
            ("POST", "/__emulator/calls/wacid.X/media"),
            ("GET", "/__emulator/calls/wacid.X/dtmf"),
            ("PUT", "/__emulator/calls/wacid.X/play"),
            ("GET", "/__emulator/calls/media"),
            ("GET", "/__emulator/calls/x/media/more"),
            ("GET", "/__emulator/x/calls/x/media"),
            ("GET", "//__emulator/calls/x/media"),
            ("POST", "/v21.0/106540352242922/messages"),
            ("GET", "/"),
        ] {
            assert!(!owned(method, path), "{method} {path}");
        }
    }
}
