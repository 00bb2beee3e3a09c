//! The tokio shell around [`Uas`]: the gateway's listeners (UDP and TCP on one port, TLS
//! on another), its connections, the clock and the timers. One task owns every call; the
//! sockets' tasks hand it what arrives, and the [`GatewayHost`] (the server, which joins
//! the gateway to the engines) judges INVITEs and hears what happens.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::digest::Credentials;
use super::message::{frame_len, skip_keepalive, SipMessage};
use super::uas::{answer_without_call, GatewayEvent, Output, Uas, WithoutCall};
use super::UacConfig;
use crate::domain::ids::CallId;
use crate::domain::sip::{AdmittedCall, GatewayReply, IncomingInvite, SipRefusal, SipTransport};

/// Calls the gateway serves at once; INVITEs beyond get 503.
const MAX_CALLS: usize = 10_000;
/// Stream connections open at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 1_024;
/// Inputs waiting for the gateway's task; the sockets wait when it is full.
const INPUT_QUEUE: usize = 4_096;
/// Messages waiting to be written on one connection; a peer that reads none of them
/// loses its connection.
const WRITE_QUEUE: usize = 256;
/// Messages of a call logged before anyone owns it, kept until its owner is known.
const PENDING_LOG: usize = 32;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who owns an admitted call: the host's name for it (the server's tenant id).
pub type Owner = String;

/// What the gateway needs from the emulator. Called from the gateway's task, one call at
/// a time, so implementations may lock engines briefly.
pub trait GatewayHost: Send + Sync + 'static {
    /// Judges an INVITE: the owner and the call when the user's phone rings, else the
    /// refusal and, when known, whose refusal it is (for the message log).
    fn admit(
        &self,
        invite: &IncomingInvite,
        credentials: &Credentials,
    ) -> Result<(Owner, AdmittedCall), (Option<Owner>, SipRefusal)>;
    /// An admitted call ended on the business's side, or the gateway gave up on it.
    fn event(&self, owner: &str, wacid: &CallId, event: GatewayEvent);
    /// A SIP message sent or received: of an admitted call (`owner`, the wacid), or of
    /// no known call (`None`, the SIP Call-ID).
    fn message(&self, owner: Option<&str>, call: &str, outgoing: bool, raw: &str);
}

/// Where the gateway listens.
#[derive(Clone)]
pub struct GatewayConfig {
    /// UDP and TCP, on one port (port 0: a free one, the same for both).
    pub addr: SocketAddr,
    /// TLS, with this server config (port 0: a free one).
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    pub timers: UacConfig,
}

/// The running gateway. Dropping it does not stop it; [`Gateway::stop`] does.
#[derive(Clone)]
pub struct Gateway {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: Option<SocketAddr>,
    inputs: mpsc::Sender<Input>,
    stop: Arc<watch::Sender<bool>>,
}

impl Gateway {
    /// Binds the listeners and starts the gateway on the current tokio runtime.
    pub async fn start(config: GatewayConfig, host: Arc<dyn GatewayHost>) -> io::Result<Gateway> {
        let (udp_socket, tcp_listener) = bind_pair(config.addr).await?;
        let udp = udp_socket.local_addr()?;
        let tcp = tcp_listener.local_addr()?;
        let tls = match &config.tls {
            Some((addr, server)) => {
                let listener = TcpListener::bind(addr).await?;
                Some((listener, server.clone()))
            }
            None => None,
        };
        let tls_addr = match &tls {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        };
        let (inputs, rx) = mpsc::channel(INPUT_QUEUE);
        let (stop, stopped) = watch::channel(false);
        let udp_socket = Arc::new(udp_socket);
        tokio::spawn(read_datagrams(
            udp_socket.clone(),
            inputs.clone(),
            stopped.clone(),
        ));
        let conns = Connections {
            inputs: inputs.clone(),
            stop: stopped.clone(),
            open: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        };
        tokio::spawn(accept(tcp_listener, None, conns.clone()));
        if let Some((listener, server)) = tls {
            let acceptor = tokio_rustls::TlsAcceptor::from(server);
            tokio::spawn(accept(listener, Some(acceptor), conns));
        }
        let core = Core {
            timers: config.timers,
            host,
            udp: udp_socket,
            calls: HashMap::new(),
            by_wacid: HashMap::new(),
            writers: HashMap::new(),
        };
        tokio::spawn(core.run(rx, stopped));
        Ok(Gateway {
            udp,
            tcp,
            tls: tls_addr,
            inputs,
            stop: Arc::new(stop),
        })
    }

    /// The user acted on `owner`'s call `wacid`.
    pub fn reply(&self, owner: &str, wacid: &CallId, reply: GatewayReply) {
        self.command(Command::Reply(owner.to_owned(), wacid.clone(), reply));
    }

    /// `owner` is gone: its calls end (480 while ringing, BYE once answered).
    pub fn forget(&self, owner: &str) {
        self.command(Command::Forget(owner.to_owned()));
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    fn command(&self, command: Command) {
        if self.inputs.try_send(Input::Command(command)).is_err() {
            tracing::warn!("SIP gateway busy or stopped: a command to it was dropped");
        }
    }
}

/// UDP and TCP on the same port: with port 0, the port UDP got, tried for TCP until both
/// hold one.
async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?));
    }
    let mut last = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind(addr).await?;
        let mut both = udp.local_addr()?;
        both.set_ip(addr.ip());
        match TcpListener::bind(both).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()))
}

/// Where a message came from and its answers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flow {
    Udp(SocketAddr),
    /// A TCP or TLS connection, by number.
    Stream(u64),
}

enum Input {
    Datagram(SocketAddr, Vec<u8>),
    Opened {
        id: u64,
        transport: SipTransport,
        local: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Stream(u64, Vec<u8>),
    Closed(u64),
    Command(Command),
}

enum Command {
    Reply(Owner, CallId, GatewayReply),
    Forget(Owner),
}

async fn read_datagrams(
    socket: Arc<UdpSocket>,
    inputs: mpsc::Sender<Input>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.changed() => return,
        };
        match received {
            Ok((n, from)) => {
                if inputs
                    .send(Input::Datagram(from, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // An ICMP "port unreachable" for an earlier send, and the like.
            Err(e) => tracing::debug!(error = %e, "SIP gateway UDP receive error"),
        }
    }
}

#[derive(Clone)]
struct Connections {
    inputs: mpsc::Sender<Input>,
    stop: watch::Receiver<bool>,
    open: Arc<std::sync::atomic::AtomicUsize>,
}

async fn accept(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, conns: Connections) {
    use std::sync::atomic::Ordering;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut stop = conns.stop.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "SIP gateway accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if conns.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "SIP gateway: too many connections; closing this one");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let conns = conns.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            conns.open.fetch_add(1, Ordering::Relaxed);
            let local = stream.local_addr();
            match (tls, local) {
                (None, Ok(local)) => {
                    serve_stream(id, SipTransport::Tcp, local, stream, &conns).await
                }
                (Some(acceptor), Ok(local)) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            serve_stream(id, SipTransport::Tls, local, tls, &conns).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "SIP gateway TLS handshake failed")
                        }
                        Err(_) => tracing::info!(%peer, "SIP gateway TLS handshake timed out"),
                    }
                }
                (_, Err(e)) => {
                    tracing::debug!(error = %e, "SIP gateway connection without address")
                }
            }
            conns.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads framed messages from one connection and writes what the gateway sends on it.
async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    id: u64,
    transport: SipTransport,
    local: SocketAddr,
    stream: S,
    conns: &Connections,
) {
    let (writer, mut outgoing) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let opened = Input::Opened {
        id,
        transport,
        local,
        writer,
    };
    if conns.inputs.send(opened).await.is_err() {
        return;
    }
    let (mut read, mut write) = tokio::io::split(stream);
    let mut stop = conns.stop.clone();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        // Every whole message already buffered goes to the gateway first.
        let keepalive = buf.len() - skip_keepalive(&buf).len();
        buf.drain(..keepalive);
        match frame_len(&buf) {
            Ok(Some(len)) => {
                let msg: Vec<u8> = buf.drain(..len).collect();
                if conns.inputs.send(Input::Stream(id, msg)).await.is_err() {
                    break;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                // Unframeable input: the stream cannot be resynchronised.
                tracing::debug!(id, error = %e, "SIP gateway: unframeable stream; closing");
                break;
            }
        }
        tokio::select! {
            n = read.read(&mut chunk) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            out = outgoing.recv() => match out {
                Some(bytes) => {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
    let _ = write.shutdown().await;
    let _ = conns.inputs.send(Input::Closed(id)).await;
}

/// One call at the gateway and what the shell knows about it.
struct Entry {
    uas: Uas,
    flow: Flow,
    owner: Option<Owner>,
    /// Messages before an owner is known: logged once it is, or as nobody's.
    pending_log: Vec<(bool, String)>,
}

struct Writer {
    transport: SipTransport,
    local: SocketAddr,
    tx: mpsc::Sender<Vec<u8>>,
}

/// The gateway's task: every call, every timer.
struct Core {
    timers: UacConfig,
    host: Arc<dyn GatewayHost>,
    udp: Arc<UdpSocket>,
    /// By SIP Call-ID.
    calls: HashMap<String, Entry>,
    /// (owner, wacid) → SIP Call-ID.
    by_wacid: HashMap<(Owner, String), String>,
    writers: HashMap<u64, Writer>,
}

impl Core {
    #[allow(clippy::disallowed_methods, reason = "the gateway runs real timers")]
    async fn run(mut self, mut rx: mpsc::Receiver<Input>, mut stop: watch::Receiver<bool>) {
        loop {
            let deadline = self
                .calls
                .values()
                .filter_map(|e| e.uas.next_deadline())
                .min();
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.on_input(Instant::now(), input),
                    None => return,
                },
                () = timer => self.on_timers(Instant::now()),
                _ = stop.changed() => return,
            }
            self.sweep();
        }
    }

    fn on_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Datagram(from, bytes) => self.on_bytes(now, Flow::Udp(from), &bytes),
            Input::Stream(id, bytes) => self.on_bytes(now, Flow::Stream(id), &bytes),
            Input::Opened {
                id,
                transport,
                local,
                writer,
            } => {
                self.writers.insert(
                    id,
                    Writer {
                        transport,
                        local,
                        tx: writer,
                    },
                );
            }
            Input::Closed(id) => {
                self.writers.remove(&id);
                let keys: Vec<String> = self
                    .calls
                    .iter()
                    .filter(|(_, e)| e.flow == Flow::Stream(id))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.drive(now, &key, |uas, now| uas.on_transport_error(now));
                }
            }
            Input::Command(Command::Reply(owner, wacid, reply)) => {
                let key = self.by_wacid.get(&(owner, wacid.0)).cloned();
                if let Some(key) = key {
                    self.drive(now, &key, |uas, now| uas.reply(now, reply));
                }
            }
            Input::Command(Command::Forget(owner)) => {
                let keys: Vec<String> = self
                    .calls
                    .iter()
                    .filter(|(_, e)| e.owner.as_deref() == Some(owner.as_str()))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.drive(now, &key, |uas, now| {
                        let reply = if uas.is_ringing() {
                            GatewayReply::Refuse(SipRefusal::no_answer())
                        } else {
                            GatewayReply::Bye { duration_secs: 0 }
                        };
                        uas.reply(now, reply)
                    });
                }
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        let due: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, e)| e.uas.next_deadline().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.drive(now, &key, |uas, now| uas.on_timeout(now));
        }
    }

    fn on_bytes(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        let msg = match SipMessage::parse(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(error = %e, "SIP gateway: ignoring unparsable input");
                return;
            }
        };
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let Some(call_id) = msg.call_id().map(str::to_owned) else {
            return;
        };
        if let Some(entry) = self.calls.get_mut(&call_id) {
            // Answers go where the business last spoke from (it may have reconnected).
            if msg.status().is_none() {
                entry.flow = flow;
            }
            log(&*self.host, entry, &call_id, false, raw);
            self.drive(now, &call_id, |uas, now| uas.on_message(now, &msg));
            return;
        }
        #[allow(clippy::disallowed_methods, reason = "a tag for a stateless answer")]
        let tag = format!("{:016x}", rand::random::<u64>());
        let text = match answer_without_call(&msg, &tag) {
            WithoutCall::Ignore => return,
            WithoutCall::Reply(text) => text,
            WithoutCall::NewCall if self.calls.len() >= MAX_CALLS => {
                super::message::response_to(&msg, 503, "Service Unavailable", &tag).render()
            }
            WithoutCall::NewCall => {
                let Some((transport, local)) = self.flow_info(flow) else {
                    return;
                };
                #[allow(clippy::disallowed_methods, reason = "tags and nonces of a call")]
                let seed = rand::random();
                let uas = Uas::new(
                    &call_id,
                    self.timers.clone(),
                    transport,
                    local.to_string(),
                    seed,
                    now,
                );
                let mut entry = Entry {
                    uas,
                    flow,
                    owner: None,
                    pending_log: Vec::new(),
                };
                log(&*self.host, &mut entry, &call_id, false, raw);
                self.calls.insert(call_id.clone(), entry);
                self.drive(now, &call_id, |uas, now| uas.on_message(now, &msg));
                return;
            }
        };
        self.host.message(None, &call_id, false, &raw);
        self.host.message(None, &call_id, true, &text);
        let _ = self.send(flow, &text);
    }

    fn flow_info(&self, flow: Flow) -> Option<(SipTransport, SocketAddr)> {
        match flow {
            Flow::Udp(_) => Some((SipTransport::Udp, self.udp.local_addr().ok()?)),
            Flow::Stream(id) => self.writers.get(&id).map(|w| (w.transport, w.local)),
        }
    }

    /// Runs one step of a call's state machine and carries out its outputs.
    fn drive(
        &mut self,
        now: Instant,
        key: &str,
        step: impl FnOnce(&mut Uas, Instant) -> Vec<Output>,
    ) {
        let Some(entry) = self.calls.get_mut(key) else {
            return;
        };
        let mut queue: std::collections::VecDeque<Output> = step(&mut entry.uas, now).into();
        while let Some(output) = queue.pop_front() {
            let Some(entry) = self.calls.get_mut(key) else {
                return;
            };
            match output {
                Output::Send(text) => {
                    let flow = entry.flow;
                    log(&*self.host, entry, key, true, text.clone());
                    if self.send(flow, &text).is_err() {
                        if let Some(entry) = self.calls.get_mut(key) {
                            queue.extend(entry.uas.on_transport_error(now));
                        }
                    }
                }
                Output::Admit {
                    invite,
                    credentials,
                } => {
                    let result = self.host.admit(&invite, &credentials);
                    let Some(entry) = self.calls.get_mut(key) else {
                        return;
                    };
                    let result = match result {
                        Ok((owner, call)) => {
                            self.by_wacid
                                .insert((owner.clone(), call.call_id.0.clone()), key.to_owned());
                            entry.owner = Some(owner.clone());
                            let wacid = call.call_id.0.clone();
                            for (outgoing, raw) in std::mem::take(&mut entry.pending_log) {
                                self.host.message(Some(&owner), &wacid, outgoing, &raw);
                            }
                            Ok(call)
                        }
                        Err((owner, refusal)) => {
                            // The refusal's owner hears this call's messages so far.
                            if let Some(owner) = owner {
                                for (outgoing, raw) in std::mem::take(&mut entry.pending_log) {
                                    self.host.message(Some(&owner), key, outgoing, &raw);
                                }
                            }
                            Err(refusal)
                        }
                    };
                    queue.extend(entry.uas.admitted(now, result));
                }
                Output::Event(event) => {
                    if let (Some(owner), Some(wacid)) = (&entry.owner, entry.uas.wacid()) {
                        self.host.event(owner, wacid, event);
                    }
                }
            }
        }
    }

    fn send(&self, flow: Flow, text: &str) -> io::Result<()> {
        match flow {
            Flow::Udp(to) => self.udp.try_send_to(text.as_bytes(), to).map(|_| ()),
            Flow::Stream(id) => match self.writers.get(&id) {
                Some(w) => {
                    w.tx.try_send(text.as_bytes().to_vec())
                        .map_err(|_| io::Error::from(io::ErrorKind::WouldBlock))
                }
                None => Err(io::ErrorKind::NotConnected.into()),
            },
        }
    }

    /// Drops finished calls; their unowned messages are logged as nobody's.
    fn sweep(&mut self) {
        let done: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, e)| e.uas.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for key in done {
            if let Some(entry) = self.calls.remove(&key) {
                if entry.owner.is_none() {
                    for (outgoing, raw) in entry.pending_log {
                        self.host.message(None, &key, outgoing, &raw);
                    }
                }
                if let (Some(owner), Some(wacid)) = (entry.owner, entry.uas.wacid()) {
                    self.by_wacid.remove(&(owner, wacid.0.clone()));
                }
            }
        }
    }
}

/// Logs a message of `entry`: to its owner, or kept until one is known.
fn log(host: &dyn GatewayHost, entry: &mut Entry, key: &str, outgoing: bool, raw: String) {
    match (&entry.owner, entry.uas.wacid()) {
        (Some(owner), Some(wacid)) => host.message(Some(owner), wacid.as_str(), outgoing, &raw),
        _ if entry.pending_log.len() < PENDING_LOG => entry.pending_log.push((outgoing, raw)),
        _ => host.message(None, key, outgoing, &raw),
    }
}
