//! Benchmark companion of the emulator: a webhook sink, load drivers and a start-up timer.
//!
//! ```text
//! sink serve    --listen ADDR [--secret S] [--verify-token T]
//! sink pipeline --emulator URL --listen ADDR [--connections C] [--duration S] [--rate R]
//! sink send     --emulator URL --count N [--connections C] [--timeout S] [--recipients distinct]
//! sink drain    --emulator URL --sink URL [--timeout S]
//! sink startup  --addr HOST:PORT [--path P] [--runs N] -- COMMAND ARGS…
//! ```
//!
//! - `serve` answers Meta's GET verification handshake, checks `X-Hub-Signature-256` on
//!   every webhook, counts deliveries, bad signatures and duplicates (the same bytes
//!   twice), and reports them as `key=value` lines on `GET /__sink/stats`.
//! - `pipeline` runs the same receiver in-process, points the emulator at it, sends
//!   `voice_call` messages (as fast as `--connections` allow, or at `--rate` sends/s)
//!   and matches every delivered status to its send by message id. Sender and receiver
//!   share one monotonic clock, so request-to-delivery delay is exact, not the
//!   second-granular `timestamp` of the status.
//! - `send` is a count-bounded load loop (the one-million-sends memory run). With
//!   `--recipients distinct` every send goes to a number never used before (the memory
//!   run over a million distinct users); it also reports the send rate of each quarter
//!   of the count, so a cost that grows with the users shows as a falling rate.
//! - `drain` waits until the emulator has nothing pending and compares its delivery count
//!   with the sink's: nothing lost means both agree.
//! - `startup` spawns a server N times and times spawn → first `200` on `--path`.
//!
//! Every result is printed as `key=value` lines for `emulator/bench/run.sh`. Loopback only;
//! not part of the test suite.
//!
//! Signatures are checked with the emulator's `webhook::codec::verify` (the same HMAC a
//! receiver computes). The load drivers keep their own client on purpose: one keep-alive
//! connection per `--connections`, so the load's concurrency is exactly what was asked,
//! where the library's client would pool and time out on its own terms; `startup` probes
//! with a blocking socket so no runtime is part of what it times.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example: it prints its results"
)]

#[allow(clippy::disallowed_methods, reason = "benchmarks measure real time")]
#[cfg(feature = "server")]
mod bench {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use std::collections::{HashMap, HashSet};
    use std::convert::Infallible;
    use std::hash::{Hash, Hasher};
    use std::io::{Read, Write};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use tokio::net::{TcpListener, TcpStream};
    use wa_emulator::webhook::codec::verify;

    pub const PHONE_ID: &str = "106540352242922";
    pub const TOKEN: &str = "wa-emulator-token";
    /// The README's `voice_call` button: a valid send that produces `sent` + `delivered`.
    pub const SEND_BODY: &str = r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","body":{"text":"Call us on WhatsApp now"},"action":{"name":"voice_call","parameters":{"display_text":"Call Now","ttl_minutes":100,"payload":"P"}}}}"#;

    // ---- arguments --------------------------------------------------------------------

    /// `--key value` pairs and whatever follows `--`.
    struct Args {
        flags: HashMap<String, String>,
        rest: Vec<String>,
    }

    impl Args {
        fn parse(raw: impl Iterator<Item = String>) -> Self {
            let mut flags = HashMap::new();
            let mut rest = Vec::new();
            let mut raw = raw.peekable();
            while let Some(a) = raw.next() {
                if a == "--" {
                    rest.extend(raw.by_ref());
                    break;
                }
                match a.strip_prefix("--") {
                    Some(k) => {
                        let v = raw
                            .next()
                            .unwrap_or_else(|| die(&format!("--{k} needs a value")));
                        flags.insert(k.to_owned(), v);
                    }
                    None => die(&format!("unexpected argument {a}")),
                }
            }
            Self { flags, rest }
        }

        fn str(&self, k: &str, default: &str) -> String {
            self.flags
                .get(k)
                .cloned()
                .unwrap_or_else(|| default.to_owned())
        }

        fn required(&self, k: &str) -> String {
            self.flags
                .get(k)
                .cloned()
                .unwrap_or_else(|| die(&format!("--{k} is required")))
        }

        fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> T {
            match self.flags.get(k) {
                None => default,
                Some(v) => v
                    .parse()
                    .unwrap_or_else(|_| die(&format!("--{k} {v} is not a number"))),
            }
        }
    }

    fn die(msg: &str) -> ! {
        eprintln!("sink: {msg}");
        std::process::exit(2)
    }

    /// `http://127.0.0.1:4004[/…]` → `127.0.0.1:4004`.
    fn authority(url: &str) -> String {
        let rest = url.strip_prefix("http://").unwrap_or_else(|| {
            die(&format!(
                "{url}: only http:// URLs on loopback are supported"
            ))
        });
        rest.split('/').next().unwrap_or(rest).to_owned()
    }

    pub fn main() {
        let mut raw = std::env::args().skip(1);
        let cmd = raw.next().unwrap_or_default();
        let args = Args::parse(raw);
        if cmd == "startup" {
            // Plain threads: the runtime must not be part of what is timed.
            return startup(&args);
        }
        // One thread: the benchmark pins this process to one core.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| die(&format!("cannot start the runtime: {e}")));
        runtime.block_on(async move {
            match cmd.as_str() {
                "serve" => serve(&args).await,
                "pipeline" => pipeline(&args).await,
                "send" => send(&args).await,
                "drain" => drain(&args).await,
                _ => die(
                    "usage: sink serve|pipeline|send|drain|startup [--flags] (see the file's docs)",
                ),
            }
        });
    }

    // ---- the receiver -----------------------------------------------------------------

    /// What the receiver saw. `arrivals` is kept only by `pipeline`, which needs each
    /// delivery's message id and status to match it with its send.
    struct Sink {
        secret: Vec<u8>,
        verify_token: Option<String>,
        received: AtomicU64,
        bad_signature: AtomicU64,
        duplicates: AtomicU64,
        /// TCP connections accepted: far more than the emulator's pool size means it
        /// reconnects instead of reusing connections.
        connections: AtomicU64,
        seen: Mutex<HashSet<u64>>,
        arrivals: Option<Mutex<Vec<Arrival>>>,
        epoch: Instant,
        /// Microseconds after `epoch` of the first and the latest delivery (0: none yet).
        first_us: AtomicU64,
        last_us: AtomicU64,
    }

    struct Arrival {
        at: Instant,
        body: Bytes,
    }

    impl Sink {
        fn new(secret: &str, verify_token: Option<String>, keep_arrivals: bool) -> Self {
            Self {
                secret: secret.as_bytes().to_vec(),
                verify_token,
                received: AtomicU64::new(0),
                bad_signature: AtomicU64::new(0),
                duplicates: AtomicU64::new(0),
                connections: AtomicU64::new(0),
                seen: Mutex::new(HashSet::new()),
                arrivals: keep_arrivals.then(|| Mutex::new(Vec::new())),
                epoch: Instant::now(),
                first_us: AtomicU64::new(0),
                last_us: AtomicU64::new(0),
            }
        }

        fn stats(&self) -> String {
            format!(
                "received={}\nbad_signature={}\nduplicates={}\nconnections={}\nfirst_us={}\nlast_us={}\n",
                self.received.load(Ordering::Relaxed),
                self.bad_signature.load(Ordering::Relaxed),
                self.duplicates.load(Ordering::Relaxed),
                self.connections.load(Ordering::Relaxed),
                self.first_us.load(Ordering::Relaxed),
                self.last_us.load(Ordering::Relaxed),
            )
        }

        fn signature_ok(&self, header: Option<&str>, body: &[u8]) -> bool {
            header.is_some_and(|h| verify(&self.secret, body, h))
        }

        async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let at = Instant::now();
            if parts.method == hyper::Method::GET {
                if parts.uri.path() == "/__sink/stats" {
                    return text(200, self.stats());
                }
                return self.handshake(parts.uri.query().unwrap_or(""));
            }
            let sig = parts
                .headers
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok());
            if !self.signature_ok(sig, &body) {
                self.bad_signature.fetch_add(1, Ordering::Relaxed);
                return text(401, "bad signature".into());
            }
            let mut h = std::collections::hash_map::DefaultHasher::new();
            body.hash(&mut h);
            if !self.seen.lock().expect("not poisoned").insert(h.finish()) {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            let us = (at - self.epoch).as_micros() as u64;
            let _ =
                self.first_us
                    .compare_exchange(0, us.max(1), Ordering::Relaxed, Ordering::Relaxed);
            self.last_us.fetch_max(us, Ordering::Relaxed);
            if let Some(a) = &self.arrivals {
                a.lock().expect("not poisoned").push(Arrival { at, body });
            }
            self.received.fetch_add(1, Ordering::Relaxed);
            text(200, String::new())
        }

        /// `hub.mode=subscribe&hub.challenge=N&hub.verify_token=T` → `N`.
        fn handshake(&self, query: &str) -> hyper::Response<Full<Bytes>> {
            let get = |k: &str| {
                query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_owned())
            };
            let (Some(challenge), Some(mode)) = (get("hub.challenge"), get("hub.mode")) else {
                return text(400, "expected hub.mode and hub.challenge".into());
            };
            if mode != "subscribe" {
                return text(400, format!("hub.mode {mode}"));
            }
            if let Some(want) = &self.verify_token {
                if get("hub.verify_token").as_deref() != Some(want.as_str()) {
                    return text(403, "wrong hub.verify_token".into());
                }
            }
            text(200, challenge)
        }
    }

    fn text(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(body)))
            .expect("static headers are valid")
    }

    async fn listen(addr: &str, sink: Arc<Sink>) -> SocketAddr {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| die(&format!("cannot listen on {addr}: {e}")));
        let local = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                sink.connections.fetch_add(1, Ordering::Relaxed);
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let sink = sink.clone();
                        async move { Ok::<_, Infallible>(sink.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        local
    }

    async fn serve(args: &Args) {
        let sink = Arc::new(Sink::new(
            &args.str("secret", "wa-emulator-secret"),
            args.flags.get("verify-token").cloned(),
            false,
        ));
        let addr = listen(&args.str("listen", "127.0.0.1:4011"), sink).await;
        println!("sink listening on http://{addr}/webhook");
        std::future::pending::<()>().await;
    }

    // ---- a minimal client -------------------------------------------------------------

    /// One keep-alive HTTP/1.1 connection.
    struct Conn {
        host: String,
        tx: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    }

    impl Conn {
        async fn open(host: &str) -> Result<Self, String> {
            let stream = TcpStream::connect(host)
                .await
                .map_err(|e| format!("connect {host}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            Ok(Self {
                host: host.to_owned(),
                tx,
            })
        }

        async fn call(
            &mut self,
            method: &str,
            path: &str,
            body: Bytes,
        ) -> Result<(u16, Bytes), String> {
            let req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", &self.host)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::new(body))
                .map_err(|e| e.to_string())?;
            self.tx.ready().await.map_err(|e| e.to_string())?;
            let resp = self.tx.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, body))
        }
    }

    async fn once(
        host: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, Bytes), String> {
        Conn::open(host)
            .await?
            .call(method, path, Bytes::from(body.to_owned()))
            .await
    }

    /// `pending`, `last_seq` and `evicted` of the emulator's delivery log (no entries).
    async fn outbox_counts(host: &str) -> Result<(u64, u64, u64), String> {
        let (status, body) = once(host, "GET", "/__emulator/webhooks?limit=0", "").await?;
        if status != 200 {
            return Err(format!("GET /__emulator/webhooks answered {status}"));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
        match (n("pending"), n("last_seq"), n("evicted")) {
            (Some(p), Some(l), Some(e)) => Ok((p, l, e)),
            _ => Err("the delivery log lacks pending/last_seq/evicted".into()),
        }
    }

    fn stat_field(text: &str, key: &str) -> u64 {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    /// The `messages[0].id` of a send's answer, found without a full parse.
    fn message_id(body: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(body).ok()?;
        let start = text.find("\"messages\"")?;
        let rest = &text[start..];
        let id = rest.find("\"id\":\"")? + 6;
        let end = rest[id..].find('"')?;
        Some(rest[id..id + end].to_owned())
    }

    // ---- load -------------------------------------------------------------------------

    #[derive(Default)]
    struct Load {
        ok: u64,
        non_2xx: u64,
        errors: u64,
        first_error: Option<String>,
        sends: Vec<(String, Instant)>,
    }

    /// One connection sending until `stop` (a time or a shared count runs out), every
    /// `period` if paced; message ids and send times are kept when `keep` is set.
    /// Progress of a count-bounded run: sends answered, and when each quarter was done.
    struct Progress {
        count: u64,
        done: AtomicU64,
        marks: Mutex<Vec<Instant>>,
    }

    impl Progress {
        fn one_done(&self) {
            let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
            let k = n * 4 / self.count.max(1);
            if (n - 1) * 4 / self.count.max(1) < k {
                // The n-th answer completed quarter k.
                let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
                while (m.len() as u64) < k.min(4) {
                    m.push(Instant::now());
                }
            }
        }
    }

    /// The `to` of the n-th distinct recipient: +1 631 numbers, one per send.
    fn distinct_body(n: u64) -> Bytes {
        let to = format!("1631{:07}", n % 10_000_000);
        Bytes::from(SEND_BODY.replace("16315551234", &to))
    }

    async fn drive(
        host: String,
        deadline: Instant,
        budget: Option<Arc<AtomicU64>>,
        period: Option<(Duration, Duration)>,
        keep: bool,
        progress: Option<(Arc<Progress>, bool)>,
    ) -> Load {
        let mut load = Load::default();
        let mut conn = match Conn::open(&host).await {
            Ok(c) => c,
            Err(e) => {
                load.errors += 1;
                load.first_error = Some(e);
                return load;
            }
        };
        let path = format!("/v21.0/{PHONE_ID}/messages");
        let body = Bytes::from_static(SEND_BODY.as_bytes());
        let mut ticks = period.map(|(offset, every)| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            if Instant::now() >= deadline {
                break;
            }
            let mut body = body.clone();
            if let Some(b) = &budget {
                match b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
                    Err(_) => break,
                    Ok(n) => {
                        if let Some((_, true)) = &progress {
                            body = distinct_body(n);
                        }
                    }
                }
            }
            if let Some(t) = &mut ticks {
                t.tick().await;
            }
            let t0 = Instant::now();
            match conn.call("POST", &path, body).await {
                Ok((200, resp)) => {
                    load.ok += 1;
                    if let Some((p, _)) = &progress {
                        p.one_done();
                    }
                    if keep {
                        if let Some(id) = message_id(&resp) {
                            load.sends.push((id, t0));
                        }
                    }
                }
                Ok((status, resp)) => {
                    load.non_2xx += 1;
                    load.first_error.get_or_insert_with(|| {
                        format!("HTTP {status}: {}", String::from_utf8_lossy(&resp))
                    });
                }
                Err(e) => {
                    load.errors += 1;
                    load.first_error.get_or_insert(e);
                    match Conn::open(&host).await {
                        Ok(c) => conn = c,
                        Err(_) => break,
                    }
                }
            }
        }
        load
    }

    async fn drive_all(
        host: &str,
        connections: usize,
        deadline: Instant,
        budget: Option<Arc<AtomicU64>>,
        rate: Option<f64>,
        keep: bool,
        progress: Option<(Arc<Progress>, bool)>,
    ) -> Load {
        let mut tasks = Vec::new();
        for i in 0..connections {
            let period = rate.map(|r| {
                let every = Duration::from_secs_f64(connections as f64 / r);
                (every.mul_f64(i as f64 / connections as f64), every)
            });
            tasks.push(tokio::spawn(drive(
                host.to_owned(),
                deadline,
                budget.clone(),
                period,
                keep,
                progress.clone(),
            )));
        }
        let mut all = Load::default();
        for t in tasks {
            let l = t.await.unwrap_or_default();
            all.ok += l.ok;
            all.non_2xx += l.non_2xx;
            all.errors += l.errors;
            if all.first_error.is_none() {
                all.first_error = l.first_error;
            }
            all.sends.extend(l.sends);
        }
        all
    }

    fn print_load(load: &Load, elapsed: Duration) {
        println!("sends_ok={}", load.ok);
        println!("sends_non_2xx={}", load.non_2xx);
        println!("send_errors={}", load.errors);
        println!("send_elapsed_s={:.3}", elapsed.as_secs_f64());
        println!(
            "sends_per_s={:.0}",
            load.ok as f64 / elapsed.as_secs_f64().max(1e-9)
        );
        if let Some(e) = &load.first_error {
            println!("first_error={}", e.replace('\n', " "));
        }
    }

    async fn send(args: &Args) {
        let host = authority(&args.required("emulator"));
        let count: u64 = args.num("count", 1_000_000);
        let connections: usize = args.num("connections", 32);
        let timeout = Duration::from_secs(args.num("timeout", 300));
        let distinct = match args.str("recipients", "same").as_str() {
            "same" => false,
            "distinct" => true,
            other => die(&format!("--recipients {other}: expected same or distinct")),
        };
        let start = Instant::now();
        let budget = Arc::new(AtomicU64::new(count));
        let progress = Arc::new(Progress {
            count,
            done: AtomicU64::new(0),
            marks: Mutex::new(Vec::new()),
        });
        let load = drive_all(
            &host,
            connections,
            start + timeout,
            Some(budget),
            None,
            false,
            Some((progress.clone(), distinct)),
        )
        .await;
        print_load(&load, start.elapsed());
        // Sends/s within each quarter of the count (fewer when the run was cut short).
        let marks = progress.marks.lock().unwrap_or_else(|p| p.into_inner());
        let mut from = start;
        let rates: Vec<String> = marks
            .iter()
            .map(|&t| {
                let r = (count as f64 / 4.0) / t.duration_since(from).as_secs_f64().max(1e-9);
                from = t;
                format!("{r:.0}")
            })
            .collect();
        println!("quarter_sends_per_s={}", rates.join(" "));
    }

    /// Waits (bounded) until the emulator has nothing pending and the sink has received
    /// every delivery the emulator made; `None` when the time ran out.
    async fn wait_drained<F, Fut>(
        host: &str,
        received: F,
        base_seq: u64,
        timeout: Duration,
    ) -> (u64, u64, u64, bool)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = u64>,
    {
        let until = Instant::now() + timeout;
        loop {
            let (pending, last_seq, evicted) = outbox_counts(host)
                .await
                .unwrap_or_else(|e| die(&format!("emulator: {e}")));
            let got = received().await;
            if pending == 0 && got >= last_seq - base_seq {
                return (pending, last_seq, evicted, true);
            }
            if Instant::now() > until {
                return (pending, last_seq, evicted, false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn drain(args: &Args) {
        let host = authority(&args.required("emulator"));
        let sink_host = authority(&args.required("sink"));
        let timeout = Duration::from_secs(args.num("timeout", 60));
        let start = Instant::now();
        let sink_stats = || async {
            match once(&sink_host, "GET", "/__sink/stats", "").await {
                Ok((_, b)) => stat_field(&String::from_utf8_lossy(&b), "received"),
                Err(e) => die(&format!("sink: {e}")),
            }
        };
        let (pending, last_seq, evicted, drained) =
            wait_drained(&host, sink_stats, 0, timeout).await;
        let (_, stats) = once(&sink_host, "GET", "/__sink/stats", "")
            .await
            .unwrap_or_else(|e| die(&format!("sink: {e}")));
        let stats = String::from_utf8_lossy(&stats).into_owned();
        let received = stat_field(&stats, "received");
        let duplicates = stat_field(&stats, "duplicates");
        println!("drained={drained}");
        println!("drain_wait_s={:.3}", start.elapsed().as_secs_f64());
        println!("emulator_deliveries={last_seq}");
        println!("emulator_pending={pending}");
        println!("emulator_evicted={evicted}");
        print!("{stats}");
        // Lost: made by the emulator but never received (exactly once) by the sink.
        println!(
            "lost={}",
            last_seq.saturating_sub(received.saturating_sub(duplicates))
        );
    }

    // ---- the webhook pipeline ---------------------------------------------------------

    fn percentile(sorted: &[Duration], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1e3
    }

    /// CPU seconds this process has used (user + system), from `/proc/self/stat`.
    fn own_cpu_s() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
        (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
    }

    async fn pipeline(args: &Args) {
        let host = authority(&args.required("emulator"));
        let connections: usize = args.num("connections", 32);
        let duration = Duration::from_secs_f64(args.num("duration", 10.0));
        let rate: Option<f64> = args.flags.get("rate").map(|_| args.num("rate", 0.0));
        let drain_timeout = Duration::from_secs(args.num("drain-timeout", 60));
        let sink = Arc::new(Sink::new(
            &args.str("secret", "wa-emulator-secret"),
            None,
            true,
        ));
        let addr = listen(&args.str("listen", "127.0.0.1:0"), sink.clone()).await;
        let put = format!(r#"{{"url":"http://{addr}/webhook"}}"#);
        match once(&host, "PUT", "/__emulator/webhook", &put).await {
            Ok((200, _)) => {}
            Ok((s, b)) => die(&format!(
                "PUT /__emulator/webhook answered {s}: {}",
                String::from_utf8_lossy(&b)
            )),
            Err(e) => die(&format!("emulator: {e}")),
        }
        let (_, base_seq, _) = outbox_counts(&host)
            .await
            .unwrap_or_else(|e| die(&format!("emulator: {e}")));
        let cpu0 = own_cpu_s();
        let start = Instant::now();
        let load = drive_all(&host, connections, start + duration, None, rate, true, None).await;
        let send_elapsed = start.elapsed();
        let received = || async { sink.received.load(Ordering::Relaxed) };
        let (pending, last_seq, evicted, drained) =
            wait_drained(&host, received, base_seq, drain_timeout).await;
        let cpu = own_cpu_s() - cpu0;

        let sent_at: HashMap<&str, Instant> =
            load.sends.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        let arrivals = std::mem::take(
            &mut *sink
                .arrivals
                .as_ref()
                .expect("kept")
                .lock()
                .expect("not poisoned"),
        );
        let mut delays = Vec::with_capacity(arrivals.len());
        let mut unmatched = 0u64;
        let mut last_arrival = start;
        for a in &arrivals {
            last_arrival = last_arrival.max(a.at);
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            let id = v["entry"][0]["changes"][0]["value"]["statuses"][0]["id"].as_str();
            match id.and_then(|id| sent_at.get(id)) {
                Some(t0) => delays.push(a.at.saturating_duration_since(*t0)),
                None => unmatched += 1,
            }
        }
        delays.sort();
        let made = last_seq - base_seq;
        let received = sink.received.load(Ordering::Relaxed);
        let duplicates = sink.duplicates.load(Ordering::Relaxed);
        let span = last_arrival.saturating_duration_since(start).as_secs_f64();
        print_load(&load, send_elapsed);
        println!("drained={drained}");
        println!("emulator_deliveries={made}");
        println!("emulator_pending={pending}");
        println!("emulator_evicted={evicted}");
        println!("received={received}");
        println!(
            "bad_signature={}",
            sink.bad_signature.load(Ordering::Relaxed)
        );
        println!("duplicates={duplicates}");
        println!("connections={}", sink.connections.load(Ordering::Relaxed));
        println!("unmatched={unmatched}");
        println!(
            "lost={}",
            made.saturating_sub(received.saturating_sub(duplicates))
        );
        println!("deliveries_per_s={:.0}", received as f64 / span.max(1e-9));
        println!("delay_p50_ms={:.3}", percentile(&delays, 0.50));
        println!("delay_p90_ms={:.3}", percentile(&delays, 0.90));
        println!("delay_p99_ms={:.3}", percentile(&delays, 0.99));
        println!("delay_max_ms={:.3}", percentile(&delays, 1.0));
        println!(
            "driver_cpu_share={:.2}",
            cpu / start.elapsed().as_secs_f64().max(1e-9)
        );
    }

    // ---- start-up ---------------------------------------------------------------------

    /// One blocking `GET path`; true on a `200`.
    fn healthy(addr: &SocketAddr, path: &str) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(addr, Duration::from_millis(50))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    }

    fn startup(args: &Args) {
        let addr: SocketAddr = args
            .required("addr")
            .parse()
            .unwrap_or_else(|_| die("--addr needs HOST:PORT"));
        let path = args.str("path", "/__emulator/health");
        let runs: usize = args.num("runs", 20);
        let Some((program, rest)) = args.rest.split_first() else {
            die("startup needs `-- COMMAND ARGS…`");
        };
        if healthy(&addr, &path) {
            die(&format!("something already answers on {addr}"));
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t0 = Instant::now();
            let mut child = std::process::Command::new(program)
                .args(rest)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| die(&format!("cannot start {program}: {e}")));
            let limit = t0 + Duration::from_secs(10);
            let mut up = false;
            while Instant::now() < limit {
                if healthy(&addr, &path) {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            let elapsed = t0.elapsed();
            let _ = child.kill();
            let _ = child.wait();
            if !up {
                die(&format!(
                    "{program} did not answer 200 on {path} within 10 s"
                ));
            }
            times.push(elapsed);
            // Let the port be released before the next start.
            std::thread::sleep(Duration::from_millis(20));
        }
        times.sort();
        println!("startup_runs={runs}");
        println!("startup_p50_ms={:.2}", percentile(&times, 0.5));
        println!("startup_min_ms={:.2}", percentile(&times, 0.0));
        println!("startup_max_ms={:.2}", percentile(&times, 1.0));
    }
}

#[cfg(feature = "server")]
fn main() {
    bench::main()
}

#[cfg(not(feature = "server"))]
fn main() {
    eprintln!("the benchmark sink needs the `server` feature (hyper, tokio)");
    std::process::exit(2);
}
