//! Media benchmark companion: N business-side WebRTC peers on str0m against a running
//! `wa-emulator serve --clock real`, measuring how evenly the emulator paces its audio.
//!
//! ```text
//! media_peer --emulator HOST:PORT --calls N [--seconds S] [--pid PID] [--clk-tck HZ]
//!            [--first-user WA_ID] [--phone-id ID] [--token T] [--connect-timeout S]
//! ```
//!
//! For each call: the user calls the business (`POST /__emulator/users/{wa_id}/call`),
//! the peer reads the emulator's offer from the call's record (`GET /__emulator/calls`,
//! `offer_sdp`: the SDP the connect webhook carries), answers it with its own SDP through
//! Graph `/calls` `pre_accept` then `accept`, completes ICE (controlling, against the
//! user's ICE-lite) and DTLS (client), and sends a 20 ms opus silence frame every 20 ms.
//! Every peer has its own UDP socket on loopback, as separate businesses would.
//!
//! Once every call is connected (or `--connect-timeout` passed) and one more second has
//! gone by, a window of `--seconds` is measured: the arrival time of each SRTP audio
//! packet of the emulator's, read right after `recv_from` (before decryption), and the
//! jitter of each interval between two consecutive packets of a call, `|interval − 20 ms|`.
//! A lost or skipped frame shows as a 20 ms (or longer) deviation, so it counts as jitter.
//! The emulator's CPU over the window comes from `/proc/PID/stat` (utime + stime), its RSS
//! from `/proc/PID/status` at the end; the peer's own CPU too, since a saturated peer
//! would delay its reads and blame the emulator. As a control, the peer times its own
//! pacing the same way (how late each of its frames went out): on a machine that other
//! work shares, both sides' tails move together.
//!
//! Afterwards each call's media report (`GET /__emulator/calls/{id}/media`) says whether
//! the emulator heard the peer, and every call is hung up so the next step starts clean.
//! Results are `key=value` lines for `emulator/bench/media.sh`. Loopback only; not part
//! of the test suite.
//!
//! All peers share one current-thread tokio runtime: the benchmark pins it to one CPU
//! and the emulator to the other.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example: it prints its results"
)]

#[allow(clippy::disallowed_methods, reason = "benchmarks measure real time")]
#[cfg(feature = "server")]
mod bench {
    use serde_json::{json, Value};
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use str0m::config::DtlsCert;
    use str0m::media::{MediaKind, Mid, Pt};
    use str0m::net::{Protocol, Receive};
    use str0m::rtp::{RtpWrite, Ssrc};
    use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc};
    use tokio::net::UdpSocket;
    use tokio::sync::watch;
    use wa_emulator::media::sdp::Remote;

    const FRAME: Duration = Duration::from_millis(20);
    /// An opus packet of 20 ms of silence (CELT fullband, the frame encoders emit for
    /// digital silence): valid for any decoder, and as cheap to send as audio gets.
    const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];
    /// Arrivals kept per call: 2 minutes of packets.
    const MAX_ARRIVALS: usize = 6_000;

    // ---- arguments --------------------------------------------------------------------

    struct Opts {
        emulator: String,
        calls: usize,
        seconds: u64,
        pid: Option<u32>,
        clk_tck: f64,
        first_user: u64,
        phone_id: String,
        token: String,
        connect_timeout: u64,
    }

    fn opts() -> Result<Opts, String> {
        let mut flags: HashMap<String, String> = HashMap::new();
        let mut raw = std::env::args().skip(1);
        while let Some(a) = raw.next() {
            let Some(k) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}"));
            };
            let v = raw.next().ok_or(format!("--{k} needs a value"))?;
            flags.insert(k.to_owned(), v);
        }
        let get = |k: &str, d: &str| flags.get(k).cloned().unwrap_or_else(|| d.to_owned());
        let num = |k: &str, d: &str| -> Result<u64, String> {
            get(k, d)
                .parse()
                .map_err(|e| format!("--{k}: {e} (a whole number)"))
        };
        Ok(Opts {
            emulator: flags
                .get("emulator")
                .cloned()
                .ok_or("--emulator HOST:PORT is needed")?,
            calls: num("calls", "1")? as usize,
            seconds: num("seconds", "10")?,
            pid: flags.get("pid").and_then(|p| p.parse().ok()),
            clk_tck: num("clk-tck", "100")? as f64,
            first_user: num("first-user", "16315500000")?,
            phone_id: get("phone-id", "106540352242922"),
            token: get("token", "wa-emulator-token"),
            connect_timeout: num("connect-timeout", "15")?,
        })
    }

    // ---- a blocking HTTP/1.1 client (setup and teardown only) ---------------------------

    fn http(
        host: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let mut s = TcpStream::connect(host).map_err(|e| format!("{host}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(format!("{method} {path}: no HTTP header in the answer"))?;
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut payload = raw[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            payload = dechunk(&payload);
        }
        let v = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        Ok((status, v))
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&b[..eol])
                .ok()
                .and_then(|s| {
                    usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok()
                })
                .unwrap_or(0);
            if size == 0 || b.len() < eol + 2 + size {
                break;
            }
            out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
            b = &b[(eol + 4 + size).min(b.len())..];
        }
        out
    }

    fn ok(r: Result<(u16, Value), String>, what: &str) -> Result<Value, String> {
        match r? {
            (200, v) => Ok(v),
            (s, v) => Err(format!("{what}: HTTP {s} {v}")),
        }
    }

    // ---- /proc --------------------------------------------------------------------------

    /// utime + stime of a process, in clock ticks.
    fn cpu_ticks(pid: &str) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: fields count from after its closing parenthesis.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    fn rss_mib(pid: u32) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    // ---- one peer ---------------------------------------------------------------------

    struct Peer {
        rtc: Rtc,
        socket: UdpSocket,
        local: SocketAddr,
        ssrc: Ssrc,
        pt: Pt,
    }

    #[derive(Default)]
    struct Outcome {
        connected: bool,
        failure: Option<String>,
        /// When each of the emulator's audio packets arrived (read from the socket).
        arrivals: Vec<Instant>,
        sent: u64,
        /// How late the peer's own frames went out (µs, with their time): the same
        /// measure on the peer's CPU, a control for the machine's own scheduling noise.
        own_lateness: Vec<(Instant, u32)>,
    }

    /// A peer for one call, and its answer SDP to the emulator's offer.
    async fn peer(
        i: usize,
        cert: &DtlsCert,
        offer: &str,
        now: Instant,
    ) -> Result<(Peer, String), String> {
        let remote = Remote::of(offer).ok_or("the emulator's offer has no media endpoint")?;
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let ufrag = format!("peer{i:05}");
        let pwd = format!("benchmarkpassword{i:08}");
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .set_dtls_cert(cert.clone())
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.clone(),
                pass: pwd.clone(),
            })
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
        for c in &remote.candidates {
            if let Ok(c) = Candidate::host(*c, "udp") {
                rtc.add_remote_candidate(c);
            }
        }
        let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
        let fingerprint = fp.split_once(' ').map(|(_, h)| h).unwrap_or(&fp).to_owned();
        let mid: Mid = remote.mid.as_str().into();
        let mut api = rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        });
        api.set_remote_fingerprint(
            format!("{} {}", remote.fingerprint.0, remote.fingerprint.1)
                .parse()
                .map_err(|e| format!("the offer's fingerprint: {e:?}"))?,
        );
        api.set_ice_controlling(true);
        // The offer is actpass: the peer answers active and starts DTLS.
        api.start_dtls(true).map_err(|e| e.to_string())?;
        api.declare_media(mid, MediaKind::Audio);
        let ssrc: Ssrc = (0x5000_0000 + i as u32).into();
        api.declare_stream_tx(ssrc, None, mid, None);
        let pt = remote.opus_pt;
        let port = local.port();
        let answer = [
            "v=0".to_owned(),
            format!("o=- {} 2 IN IP4 127.0.0.1", 1_000_000 + i),
            "s=-".into(),
            "t=0 0".into(),
            format!("a=group:BUNDLE {}", remote.mid),
            format!("m=audio {port} UDP/TLS/RTP/SAVPF {pt}"),
            "c=IN IP4 127.0.0.1".into(),
            format!("a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host"),
            format!("a=ice-ufrag:{ufrag}"),
            format!("a=ice-pwd:{pwd}"),
            format!("a=fingerprint:sha-256 {fingerprint}"),
            "a=setup:active".into(),
            format!("a=mid:{}", remote.mid),
            "a=sendrecv".into(),
            "a=rtcp-mux".into(),
            format!("a=rtpmap:{pt} opus/48000/2"),
            format!("a=ssrc:{} cname:bench", *ssrc),
            String::new(),
        ]
        .join("\r\n");
        Ok((
            Peer {
                rtc,
                socket,
                local,
                ssrc,
                pt: pt.into(),
            },
            answer,
        ))
    }

    /// Runs a peer until `stop`: ICE, DTLS, a silence frame every 20 ms, arrivals noted.
    async fn run_peer(
        mut p: Peer,
        mut stop: watch::Receiver<bool>,
        connected: Arc<AtomicUsize>,
    ) -> Outcome {
        let mut out = Outcome::default();
        let mut buf = vec![0u8; 2048];
        let mut next_frame: Option<Instant> = None;
        let mut seq: u64 = 1;
        let mut rtp_time: u32 = 0;
        let mut arrived = Instant::now();
        loop {
            // Drain str0m: datagrams out, events, the next timeout.
            let timeout = loop {
                match p.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = p.socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(Event::Connected)) => {
                        if !out.connected {
                            out.connected = true;
                            connected.fetch_add(1, Ordering::Relaxed);
                            next_frame = Some(Instant::now());
                        }
                    }
                    Ok(Output::Event(Event::RtpPacket(_))) => {
                        if out.arrivals.len() < MAX_ARRIVALS {
                            out.arrivals.push(arrived);
                        }
                    }
                    Ok(Output::Event(_)) => {}
                    Err(e) => {
                        out.failure = Some(e.to_string());
                        return out;
                    }
                }
            };
            let wake = next_frame.map_or(timeout, |f| f.min(timeout));
            tokio::select! {
                _ = stop.changed() => return out,
                r = p.socket.recv_from(&mut buf) => {
                    arrived = Instant::now();
                    let Ok((n, from)) = r else { continue };
                    if let Ok(r) = Receive::new(Protocol::Udp, from, p.local, &buf[..n]) {
                        if let Err(e) = p.rtc.handle_input(Input::Receive(arrived, r)) {
                            out.failure = Some(e.to_string());
                            return out;
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                        out.failure = Some(e.to_string());
                        return out;
                    }
                    while let Some(due) = next_frame.filter(|f| *f <= now) {
                        if out.own_lateness.len() < MAX_ARRIVALS {
                            out.own_lateness.push((due, (now - due).as_micros() as u32));
                        }
                        if let Some(tx) = p.rtc.direct_api().stream_tx(&p.ssrc) {
                            tx.write_rtp(RtpWrite::new(p.pt, seq.into(), rtp_time, due, OPUS_SILENCE.to_vec()));
                            out.sent += 1;
                        }
                        seq += 1;
                        rtp_time = rtp_time.wrapping_add(960);
                        // Far behind: skip ahead rather than burst.
                        next_frame = Some(if now - due > 10 * FRAME { now + FRAME } else { due + FRAME });
                    }
                }
            }
        }
    }

    // ---- a step -----------------------------------------------------------------------

    fn percentile(sorted: &[u32], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
    }

    pub fn main() -> Result<(), String> {
        let o = opts()?;
        let host = o.emulator.trim_start_matches("http://").to_owned();
        let graph = format!("/v21.0/{}/calls", o.phone_id);

        // The user calls, once per peer.
        let mut ids = Vec::with_capacity(o.calls);
        for i in 0..o.calls {
            let wa = o.first_user + i as u64;
            let v = ok(
                http(
                    &host,
                    "POST",
                    &format!("/__emulator/users/{wa}/call"),
                    None,
                    &json!({ "phone_number_id": o.phone_id }),
                ),
                "the user's call",
            )?;
            ids.push(
                v["call_id"]
                    .as_str()
                    .ok_or(format!("no call_id in {v}"))?
                    .to_owned(),
            );
        }
        // The offers, as the connect webhooks carry them.
        let list = ok(
            http(&host, "GET", "/__emulator/calls", None, &json!({})),
            "GET /__emulator/calls",
        )?;
        let offers: HashMap<String, String> = list["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["id"].as_str()?.to_owned(),
                    c["offer_sdp"].as_str()?.to_owned(),
                ))
            })
            .collect();

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .ok_or("no DTLS certificate")?;
        let connected = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let setup_start = Instant::now();
        let mut handles = Vec::new();
        let mut setup_failures = 0usize;
        let mut first_failure = String::new();
        for (i, id) in ids.iter().enumerate() {
            let offer = offers.get(id).ok_or(format!("no offer for {id}"))?;
            let made = rt.block_on(peer(i, &cert, offer, Instant::now()));
            let (p, answer) = match made {
                Ok(x) => x,
                Err(e) => {
                    setup_failures += 1;
                    first_failure = e;
                    continue;
                }
            };
            let session = json!({ "sdp_type": "answer", "sdp": answer });
            let mut answered = true;
            for action in ["pre_accept", "accept"] {
                let r = http(
                    &host,
                    "POST",
                    &graph,
                    Some(&o.token),
                    &json!({ "messaging_product": "whatsapp", "call_id": id, "action": action, "session": session }),
                );
                if let Err(e) = ok(r, action) {
                    answered = false;
                    first_failure = e;
                }
            }
            if !answered {
                setup_failures += 1;
                continue;
            }
            handles.push(rt.spawn(run_peer(p, stop_rx.clone(), connected.clone())));
        }
        let answered = handles.len();
        let setup_secs = setup_start.elapsed().as_secs_f64();

        let pid = o.pid.map(|p| p.to_string());
        let me = std::process::id().to_string();
        let (window, emu_ticks, peer_ticks, outcomes) = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(o.connect_timeout);
            while connected.load(Ordering::Relaxed) < answered && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Settle: the first frames after DTLS are not the steady state.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let start = Instant::now();
            let e0 = pid.as_deref().and_then(cpu_ticks);
            let p0 = cpu_ticks(&me);
            tokio::time::sleep(Duration::from_secs(o.seconds)).await;
            let end = Instant::now();
            let e1 = pid.as_deref().and_then(cpu_ticks);
            let p1 = cpu_ticks(&me);
            let _ = stop_tx.send(true);
            let mut outcomes = Vec::new();
            for h in handles {
                outcomes.push(h.await.unwrap_or_default());
            }
            (
                (start, end),
                e0.zip(e1).map(|(a, b)| b - a),
                p0.zip(p1).map(|(a, b)| b - a),
                outcomes,
            )
        });
        let (start, end) = window;
        let secs = (end - start).as_secs_f64();

        let mut jitter_us: Vec<u32> = Vec::new();
        let mut packets = 0u64;
        let mut calls_with_audio = 0usize;
        let mut sent = 0u64;
        let mut own_late_us: Vec<u32> = Vec::new();
        for out in &outcomes {
            own_late_us.extend(
                out.own_lateness
                    .iter()
                    .filter(|(t, _)| *t >= start && *t <= end)
                    .map(|(_, l)| *l),
            );
            let inside: Vec<Instant> = out
                .arrivals
                .iter()
                .copied()
                .filter(|t| *t >= start && *t <= end)
                .collect();
            packets += inside.len() as u64;
            calls_with_audio += usize::from(!inside.is_empty());
            sent += out.sent;
            for w in inside.windows(2) {
                let d = (w[1] - w[0]).as_micros() as i64 - FRAME.as_micros() as i64;
                jitter_us.push(d.unsigned_abs() as u32);
            }
            if let Some(f) = &out.failure {
                first_failure = f.clone();
            }
        }
        jitter_us.sort_unstable();
        own_late_us.sort_unstable();
        let connected_n = outcomes.iter().filter(|o| o.connected).count();
        let expected = connected_n as f64 * secs / FRAME.as_secs_f64();

        // What the emulator heard, then every call hung up.
        let mut heard = 0usize;
        for id in &ids {
            if let Ok((200, m)) = http(
                &host,
                "GET",
                &format!("/__emulator/calls/{id}/media"),
                None,
                &json!({}),
            ) {
                if m["state"] == "connected" && m["received"]["packets"].as_u64() > Some(0) {
                    heard += 1;
                }
            }
        }
        for id in &ids {
            let _ = http(
                &host,
                "POST",
                &format!("/__emulator/calls/{id}/hangup"),
                None,
                &json!({}),
            );
        }

        let cpu = |t: Option<u64>| {
            t.map_or("".to_owned(), |t| {
                format!("{:.1}", t as f64 / o.clk_tck / secs * 100.0)
            })
        };
        println!("calls={}", o.calls);
        println!("answered={answered}");
        println!("setup_failures={setup_failures}");
        println!("connected={connected_n}");
        println!("calls_with_audio={calls_with_audio}");
        println!("emulator_heard={heard}");
        println!("window_s={secs:.2}");
        println!("setup_s={setup_secs:.2}");
        println!("packets={packets}");
        println!("expected_packets={expected:.0}");
        println!("peer_sent={sent}");
        println!("intervals={}", jitter_us.len());
        println!("jitter_p50_ms={:.3}", percentile(&jitter_us, 0.50));
        println!("jitter_p99_ms={:.3}", percentile(&jitter_us, 0.99));
        println!(
            "jitter_max_ms={:.3}",
            jitter_us.last().map_or(0.0, |m| f64::from(*m) / 1000.0)
        );
        println!(
            "over_5ms={}",
            jitter_us.iter().filter(|j| **j > 5_000).count()
        );
        println!("peer_lateness_p99_ms={:.3}", percentile(&own_late_us, 0.99));
        println!(
            "peer_lateness_max_ms={:.3}",
            own_late_us.last().map_or(0.0, |m| f64::from(*m) / 1000.0)
        );
        println!("emulator_cpu_pct={}", cpu(emu_ticks));
        println!("peer_cpu_pct={}", cpu(peer_ticks));
        println!(
            "emulator_rss_mib={}",
            o.pid
                .and_then(rss_mib)
                .map_or("".to_owned(), |r| format!("{r:.1}"))
        );
        println!("first_failure={}", first_failure.replace('\n', " "));
        Ok(())
    }
}

fn main() {
    #[cfg(feature = "server")]
    if let Err(e) = bench::main() {
        eprintln!("media_peer: {e}");
        std::process::exit(1);
    }
    #[cfg(not(feature = "server"))]
    eprintln!("media_peer needs the `server` feature");
}
