//! The tokio shell around [`Uac`]: resolves the server, owns the UDP socket or the TCP
//! or TLS connection, reads the clock, runs the timers and reports events.
//!
//! TLS is a client as Meta's gateway is one (cloud-api §8.2): SNI and the certificate
//! check use the configured hostname, the certificate must chain to the roots of the
//! [`ClientConfig`] given (the system's plus `--sip-ca`, `server::tls::Trust`), and no
//! client certificate is offered.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::message::{frame_len, skip_keepalive, SipMessage};
use super::uac::{Output, Uac};
use super::{SipEvent, UacConfig};
#[cfg(test)]
use crate::domain::ids::CallId;
use crate::domain::sip::{SipInvite, SipServer, SipTransport};

#[derive(Debug)]
enum Command {
    Hangup(u64),
}

/// Controls one call started by [`start_call`]. Cloning is cheap; all clones control the
/// same call. Dropping them does not end the call.
#[derive(Debug, Clone)]
pub struct CallHandle {
    wacid: String,
    commands: UnboundedSender<Command>,
}

impl CallHandle {
    pub fn wacid(&self) -> &str {
        &self.wacid
    }

    /// The user hung up after `duration_secs` of conversation: BYE (with
    /// `x-wa-meta-call-duration`) when answered, CANCEL while still ringing. A no-op once
    /// the call is over.
    pub fn hangup(&self, duration_secs: u64) {
        let _ = self.commands.send(Command::Hangup(duration_secs));
    }

    /// The signalling task has finished (the call is over and its socket closed).
    pub fn is_finished(&self) -> bool {
        self.commands.is_closed()
    }
}

/// Starts signalling a call on the current tokio runtime (panics outside one) with the
/// standard RFC 3261 timers. Every event goes to `events`, tagged with the wacid. `tls`
/// checks the certificate of a TLS server (unused over UDP and TCP).
#[must_use = "the handle is the only way to hang the call up"]
pub fn start_call(
    params: SipInvite,
    tls: Arc<ClientConfig>,
    events: UnboundedSender<(String, SipEvent)>,
) -> CallHandle {
    start_call_with(params, UacConfig::default(), tls, events)
}

/// [`start_call`] with chosen timers.
#[must_use = "the handle is the only way to hang the call up"]
pub fn start_call_with(
    params: SipInvite,
    config: UacConfig,
    tls: Arc<ClientConfig>,
    events: UnboundedSender<(String, SipEvent)>,
) -> CallHandle {
    let (commands, receiver) = unbounded_channel();
    let wacid = params.call_id.0.clone();
    tokio::spawn(run(params, config, tls, events, receiver));
    CallHandle { wacid, commands }
}

fn message_event(outgoing: bool, raw: String) -> SipEvent {
    SipEvent::Message {
        outgoing,
        first_line: raw.lines().next().unwrap_or_default().to_owned(),
        raw,
    }
}

#[allow(clippy::disallowed_methods, reason = "the SIP shell runs real timers")]
async fn run(
    params: SipInvite,
    config: UacConfig,
    tls: Arc<ClientConfig>,
    events: UnboundedSender<(String, SipEvent)>,
    mut commands: UnboundedReceiver<Command>,
) {
    let wacid = params.call_id.0.clone();
    let report = |event: SipEvent| {
        let _ = events.send((wacid.clone(), event));
    };
    let server = params.server.clone();
    let link = match resolve(&server, config.transaction_timeout()).await {
        Ok(remote) => Link::open(&server, remote, tls, &config).await,
        Err(e) => Err(e),
    };
    let mut link = match link {
        Ok(link) => link,
        Err(e) => {
            // The call's SIP log says why no INVITE left, TLS failures by name.
            let why = unreachable_reason(&e);
            let transport = server.transport.as_str();
            tracing::warn!(wacid = %wacid, server = %server.hostname, port = server.port, transport, "SIP server unreachable: {why}");
            report(SipEvent::Message {
                outgoing: true,
                first_line: format!(
                    "(not sent: {}:{} over {transport}: {why})",
                    server.hostname, server.port
                ),
                raw: String::new(),
            });
            report(SipEvent::TimedOut);
            return;
        }
    };
    let local = match link.local_addr() {
        Ok(local) => local,
        Err(e) => {
            tracing::warn!(wacid = %wacid, error = %e, "no local address for SIP");
            report(SipEvent::TimedOut);
            return;
        }
    };
    let mut uac = Uac::new(params, config, local, rand::random());
    let mut queue: VecDeque<Output> = uac.start(Instant::now()).into();
    let mut commands_open = true;
    loop {
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Event(event) => report(event),
                Output::Send(text) => {
                    let sent = link.send(text.as_bytes()).await;
                    report(message_event(true, text));
                    if let Err(e) = sent {
                        tracing::debug!(wacid = %wacid, error = %e, "SIP send failed");
                        queue.extend(uac.on_transport_error(Instant::now()));
                    }
                }
            }
        }
        if uac.is_finished() {
            break;
        }
        let deadline = uac.next_deadline();
        let timer = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = link.recv() => {
                let now = Instant::now();
                match received {
                    Ok(raw) => match SipMessage::parse(&raw) {
                        Ok(msg) => {
                            report(message_event(false, String::from_utf8_lossy(&raw).into_owned()));
                            queue.extend(uac.on_message(now, &msg));
                        }
                        Err(e) => tracing::debug!(wacid = %wacid, error = %e, "ignoring unparsable SIP input"),
                    },
                    Err(e) => {
                        tracing::debug!(wacid = %wacid, error = %e, "SIP transport error");
                        queue.extend(uac.on_transport_error(now));
                    }
                }
            }
            command = commands.recv(), if commands_open => match command {
                Some(Command::Hangup(duration)) => queue.extend(uac.hangup(Instant::now(), duration)),
                None => commands_open = false,
            },
            () = timer => queue.extend(uac.on_timeout(Instant::now())),
        }
    }
}

async fn resolve(server: &SipServer, timeout: std::time::Duration) -> io::Result<SocketAddr> {
    let host = server
        .hostname
        .trim_start_matches('[')
        .trim_end_matches(']');
    tokio::time::timeout(timeout, tokio::net::lookup_host((host, server.port)))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for SIP server"))
}

/// Why a call could not reach its server, for the SIP log: the TLS failure by name
/// (unknown CA, name mismatch, …, with the `--sip-ca` hint), else the I/O error.
fn unreachable_reason(e: &io::Error) -> String {
    crate::server::tls::describe_for(e, "--sip-ca")
        .map(|tls| format!("TLS handshake failed: {tls}"))
        .unwrap_or_else(|| e.to_string())
}

/// The path to the server: a connected UDP socket, or a TCP or TLS connection that is
/// re-established when a request must go out after it dropped.
enum Link {
    Udp(UdpSocket),
    Stream {
        remote: SocketAddr,
        /// The TLS client and the name the certificate must carry; `None` for TCP.
        tls: Option<(TlsConnector, ServerName<'static>)>,
        stream: Option<Conn>,
        buf: Vec<u8>,
        connect_timeout: std::time::Duration,
    },
}

/// One connection of a [`Link::Stream`].
enum Conn {
    Tcp(TcpStream),
    /// Boxed: a TLS session's buffers make it far larger than a socket.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Conn::Tcp(s) => s.local_addr(),
            Conn::Tls(s) => s.get_ref().0.local_addr(),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(data).await,
            Conn::Tls(s) => {
                s.write_all(data).await?;
                // The records may sit in the session until flushed.
                s.flush().await
            }
        }
    }

    /// Cancel-safe, as the reads of both streams are.
    async fn read(&mut self, chunk: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(chunk).await,
            Conn::Tls(s) => s.read(chunk).await,
        }
    }
}

impl Link {
    async fn open(
        server: &SipServer,
        remote: SocketAddr,
        tls: Arc<ClientConfig>,
        config: &UacConfig,
    ) -> io::Result<Link> {
        let tls = match server.transport {
            SipTransport::Tls => {
                let host = server
                    .hostname
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{host:?} cannot be checked against a certificate: {e}"),
                    )
                })?;
                Some((TlsConnector::from(tls), name))
            }
            SipTransport::Udp | SipTransport::Tcp => None,
        };
        match server.transport {
            SipTransport::Udp => {
                let any: SocketAddr = if remote.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(any).await?;
                // Connecting fixes the peer (stray datagrams are dropped) and makes the
                // kernel pick the source address we advertise in Via and Contact.
                socket.connect(remote).await?;
                Ok(Link::Udp(socket))
            }
            SipTransport::Tcp | SipTransport::Tls => {
                let connect_timeout = config.transaction_timeout();
                let stream = connect(remote, tls.as_ref(), connect_timeout).await?;
                Ok(Link::Stream {
                    remote,
                    tls,
                    stream: Some(stream),
                    buf: Vec::new(),
                    connect_timeout,
                })
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Link::Udp(socket) => socket.local_addr(),
            Link::Stream {
                stream: Some(s), ..
            } => s.local_addr(),
            Link::Stream { stream: None, .. } => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp(socket) => socket.send(data).await.map(|_| ()),
            Link::Stream {
                remote,
                tls,
                stream,
                buf,
                connect_timeout,
            } => {
                if let Some(s) = stream.as_mut() {
                    if s.write_all(data).await.is_ok() {
                        return Ok(());
                    }
                }
                // The connection is gone (the server closed it): one fresh attempt.
                buf.clear();
                *stream = None;
                let mut fresh = connect(*remote, tls.as_ref(), *connect_timeout).await?;
                fresh.write_all(data).await?;
                *stream = Some(fresh);
                Ok(())
            }
        }
    }

    /// The next raw message. Cancel-safe: nothing is lost if the future is dropped.
    async fn recv(&mut self) -> io::Result<Vec<u8>> {
        match self {
            Link::Udp(socket) => {
                let mut datagram = vec![0u8; 65_535];
                let n = socket.recv(&mut datagram).await?;
                datagram.truncate(n);
                Ok(datagram)
            }
            Link::Stream { stream, buf, .. } => loop {
                let keepalive = buf.len() - skip_keepalive(buf).len();
                buf.drain(..keepalive);
                match frame_len(buf) {
                    Ok(Some(len)) => return Ok(buf.drain(..len).collect()),
                    Ok(None) => {}
                    Err(e) => {
                        // Unframeable input: the stream cannot be resynchronised.
                        buf.clear();
                        *stream = None;
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                let Some(s) = stream.as_mut() else {
                    return std::future::pending().await;
                };
                let mut chunk = [0u8; 8192];
                let n = match s.read(&mut chunk).await {
                    Ok(n) => n,
                    Err(e) => {
                        *stream = None;
                        return Err(e);
                    }
                };
                if n == 0 {
                    *stream = None;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            },
        }
    }
}

/// A TCP connection to `remote`, with the TLS handshake when `tls` is given; both
/// within `timeout`.
async fn connect(
    remote: SocketAddr,
    tls: Option<&(TlsConnector, ServerName<'static>)>,
    timeout: std::time::Duration,
) -> io::Result<Conn> {
    let open = async {
        let stream = TcpStream::connect(remote).await?;
        stream.set_nodelay(true)?;
        match tls {
            None => Ok(Conn::Tcp(stream)),
            Some((connector, name)) => {
                let session = connector.connect(name.clone(), stream).await?;
                Ok(Conn::Tls(Box::new(session)))
            }
        }
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::*;
    use crate::server::tls::{server_config, Ca, Trust};

    fn params(port: u16, transport: SipTransport) -> SipInvite {
        SipInvite {
            call_id: CallId::from("wacid.T"),
            user_number: "16315551234".into(),
            username: None,
            parent_user_id: None,
            header_names: Default::default(),
            user_id: None,
            business_number: "15550783881".into(),
            phone_number_id: "1".into(),
            server: SipServer {
                hostname: "127.0.0.1".into(),
                port,
                transport,
                request_uri_user_params: vec![],
            },
            sdp_offer: "v=0\r\n".into(),
            cta_payload: None,
            deeplink_payload: None,
            digest_username: "15550783881".into(),
            digest_password: "x".into(),
        }
    }

    /// The system's roots only, as without `--sip-ca`.
    fn trust() -> Arc<ClientConfig> {
        Trust::default().client_config("SIP servers").unwrap()
    }

    fn quick() -> UacConfig {
        UacConfig {
            t1: Duration::from_millis(50),
            t2: Duration::from_millis(200),
            timer_c: Duration::from_secs(5),
            linger: Duration::from_millis(100),
        }
    }

    /// The next event that is not a message log entry.
    async fn next_event(rx: &mut UnboundedReceiver<(String, SipEvent)>) -> SipEvent {
        loop {
            let (_, event) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("an event in time")
                .expect("channel open");
            if !matches!(event, SipEvent::Message { .. }) {
                return event;
            }
        }
    }

    /// Every datagram already queued on `socket`.
    fn drain(socket: &UdpSocket) -> Vec<String> {
        let mut buf = vec![0u8; 65_535];
        let mut got = Vec::new();
        while let Ok(n) = socket.try_recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    }

    #[allow(clippy::disallowed_methods, reason = "measures real SIP timers")]
    #[tokio::test]
    async fn udp_invite_to_a_silent_server_is_retransmitted_then_times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let (tx, mut rx) = unbounded_channel();
        let started = Instant::now();
        let handle = start_call_with(params(port, SipTransport::Udp), quick(), trust(), tx);
        assert_eq!(next_event(&mut rx).await, SipEvent::TimedOut);
        assert!(
            started.elapsed() >= Duration::from_millis(50 * 64),
            "Timer B is 64·T1"
        );
        let copies = drain(&server);
        // Sent at 0, 50, 150, 350, 750, 1550 and 3150 ms; a loaded machine may be late
        // for the last one, which Timer B (3200 ms) then pre-empts.
        assert!((6..=7).contains(&copies.len()), "{} copies", copies.len());
        assert!(copies[0].starts_with("INVITE sip:+15550783881@127.0.0.1:"));
        assert!(
            copies.iter().all(|c| *c == copies[0]),
            "retransmissions are identical"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(handle.is_finished());
    }

    #[allow(clippy::disallowed_methods, reason = "measures real time")]
    #[tokio::test]
    async fn unreachable_udp_server_fails_fast() {
        // A port nobody listens on: the ICMP "port unreachable" ends the call at once.
        let port = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (tx, mut rx) = unbounded_channel();
        let started = Instant::now();
        let _handle = start_call(params(port, SipTransport::Udp), trust(), tx);
        assert_eq!(next_event(&mut rx).await, SipEvent::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// The SIP log entries (first lines) and the closing event of a call that ends
    /// without any response.
    async fn log_and_end(
        rx: &mut UnboundedReceiver<(String, SipEvent)>,
    ) -> (Vec<String>, SipEvent) {
        let mut log = Vec::new();
        loop {
            let (_, event) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("an event in time")
                .expect("channel open");
            match event {
                SipEvent::Message { first_line, .. } => log.push(first_line),
                other => return (log, other),
            }
        }
    }

    #[tokio::test]
    async fn refused_tcp_connection_is_a_timeout() {
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (tx, mut rx) = unbounded_channel();
        let _handle = start_call(params(port, SipTransport::Tcp), trust(), tx);
        let (log, end) = log_and_end(&mut rx).await;
        assert_eq!(end, SipEvent::TimedOut);
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(
            log[0].starts_with(&format!("(not sent: 127.0.0.1:{port} over tcp: ")),
            "{log:?}"
        );
    }

    /// A TLS SIP server on loopback presenting `identity`; answers the first INVITE
    /// with 200 OK and the BYE with 200 OK; returns the INVITE's and BYE's texts.
    async fn tls_server(
        identity: crate::server::tls::ServerIdentity,
    ) -> (u16, tokio::task::JoinHandle<Vec<SipMessage>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&identity).unwrap());
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            let Ok((tcp, _)) = listener.accept().await else {
                return seen;
            };
            let Ok(mut conn) = acceptor.accept(tcp).await else {
                return seen;
            };
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return seen;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some(len)) = frame_len(&buf) {
                    let msg = SipMessage::parse(&buf[..len]).unwrap();
                    buf.drain(..len);
                    let method = msg.method().unwrap_or_default().to_owned();
                    if method == "INVITE" || method == "BYE" {
                        let mut ok = super::super::message::response_to(&msg, 200, "OK", "t1");
                        if method == "INVITE" {
                            ok.push("Contact", "<sip:127.0.0.1;transport=tls>");
                            ok.body = "v=0\r\nanswer\r\n".into();
                        }
                        conn.write_all(ok.render().as_bytes()).await.unwrap();
                        conn.flush().await.unwrap();
                    }
                    let done = method == "BYE";
                    seen.push(msg);
                    if done {
                        return seen;
                    }
                }
            }
        });
        (port, task)
    }

    fn trusting(ca: &Ca, name: &str) -> Arc<ClientConfig> {
        let file = std::env::temp_dir().join(format!(
            "wa-emulator-sip-ca-{}-{name}.pem",
            std::process::id()
        ));
        std::fs::write(&file, ca.pem()).unwrap();
        let config = Trust {
            ca_file: Some(file.clone()),
            insecure: false,
        }
        .client_config("SIP servers")
        .unwrap();
        let _ = std::fs::remove_file(file);
        config
    }

    #[tokio::test]
    async fn a_tls_call_checks_the_certificate_and_carries_tls_in_its_uris() {
        let ca = Ca::generate("business CA").unwrap();
        let (port, server) = tls_server(ca.issue(&["127.0.0.1"]).unwrap()).await;
        let (tx, mut rx) = unbounded_channel();
        let handle = start_call_with(
            params(port, SipTransport::Tls),
            quick(),
            trusting(&ca, "good"),
            tx,
        );
        assert_eq!(
            next_event(&mut rx).await,
            SipEvent::Answered {
                sdp: "v=0\r\nanswer\r\n".into()
            }
        );
        handle.hangup(7);
        assert_eq!(next_event(&mut rx).await, SipEvent::Ended);
        let seen = server.await.unwrap();
        let methods: Vec<&str> = seen.iter().filter_map(|m| m.method()).collect();
        assert_eq!(methods, ["INVITE", "ACK", "BYE"]);
        let invite = &seen[0];
        assert_eq!(
            invite.start,
            super::super::message::StartLine::Request {
                method: "INVITE".into(),
                uri: format!("sip:+15550783881@127.0.0.1:{port};transport=tls"),
            }
        );
        assert!(invite
            .header("via")
            .unwrap()
            .starts_with("SIP/2.0/TLS 127.0.0.1:"));
        assert!(invite
            .header("contact")
            .unwrap()
            .contains(";transport=tls;"));
        assert_eq!(seen[2].header("x-wa-meta-call-duration"), Some("7"));
    }

    /// Without the business's CA, or with a certificate for another name, the call ends
    /// as an unreachable server's does, and its SIP log names the reason.
    #[tokio::test]
    async fn a_tls_server_that_fails_the_check_is_named_in_the_log() {
        let ca = Ca::generate("business CA").unwrap();
        let cases = [
            (ca.issue(&["127.0.0.1"]).unwrap(), trust(), "unknown CA"),
            (
                ca.issue(&["sip.other.test"]).unwrap(),
                trusting(&ca, "mismatch"),
                "name mismatch (certificate is for sip.other.test, not 127.0.0.1)",
            ),
        ];
        for (identity, trust, reason) in cases {
            let (port, server) = tls_server(identity).await;
            let (tx, mut rx) = unbounded_channel();
            let _handle = start_call_with(params(port, SipTransport::Tls), quick(), trust, tx);
            let (log, end) = log_and_end(&mut rx).await;
            assert_eq!(end, SipEvent::TimedOut);
            let prefix =
                format!("(not sent: 127.0.0.1:{port} over tls: TLS handshake failed: {reason}");
            assert!(
                log.len() == 1 && log[0].starts_with(&prefix),
                "{log:?} should start with {prefix}"
            );
            assert!(
                server.await.unwrap().is_empty(),
                "no SIP message got through"
            );
        }
        // The hint names the flag that would help.
        let (port, _server) = tls_server(ca.issue(&["127.0.0.1"]).unwrap()).await;
        let (tx, mut rx) = unbounded_channel();
        let _handle = start_call_with(params(port, SipTransport::Tls), quick(), trust(), tx);
        let (log, _) = log_and_end(&mut rx).await;
        assert!(log[0].contains("pass --sip-ca FILE"), "{log:?}");
    }

    #[tokio::test]
    async fn tcp_responses_split_and_coalesced_are_framed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, mut rx) = unbounded_channel();
        let handle = start_call_with(params(port, SipTransport::Tcp), quick(), trust(), tx);
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let invite = loop {
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Ok(Some(len)) = frame_len(&buf) {
                break SipMessage::parse(&buf[..len]).unwrap();
            }
        };
        let respond = |status: u16, reason: &str, body: &str| {
            let mut r = super::super::message::response_to(&invite, status, reason, "t1");
            if status == 200 {
                r.push("Contact", "<sip:127.0.0.1>");
            }
            r.body = body.into();
            r.render()
        };
        // A keep-alive, then 100 and 180 in one write.
        let two = format!(
            "\r\n\r\n{}{}",
            respond(100, "Trying", ""),
            respond(180, "Ringing", "")
        );
        conn.write_all(two.as_bytes()).await.unwrap();
        assert_eq!(
            next_event(&mut rx).await,
            SipEvent::Provisional { status: 100 }
        );
        assert_eq!(
            next_event(&mut rx).await,
            SipEvent::Provisional { status: 180 }
        );
        // A 200 OK cut in the middle of its body.
        let ok = respond(200, "OK", "v=0\r\nanswer\r\n");
        let (a, b) = ok.split_at(ok.len() - 5);
        conn.write_all(a.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.write_all(b.as_bytes()).await.unwrap();
        assert_eq!(
            next_event(&mut rx).await,
            SipEvent::Answered {
                sdp: "v=0\r\nanswer\r\n".into()
            }
        );
        // The ACK arrives on the same connection, then the BYE after hang-up.
        handle.hangup(12);
        let mut buf = Vec::new();
        let mut methods = Vec::new();
        while methods.len() < 2 {
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            while let Ok(Some(len)) = frame_len(&buf) {
                let msg = SipMessage::parse(&buf[..len]).unwrap();
                methods.push(msg.method().unwrap().to_owned());
                if msg.method() == Some("BYE") {
                    assert_eq!(msg.header("x-wa-meta-call-duration"), Some("12"));
                    let ok = super::super::message::response_to(&msg, 200, "OK", "");
                    conn.write_all(ok.render().as_bytes()).await.unwrap();
                }
                buf.drain(..len);
            }
        }
        assert_eq!(methods, vec!["ACK", "BYE"]);
        assert_eq!(next_event(&mut rx).await, SipEvent::Ended);
    }

    #[tokio::test]
    async fn every_sent_and_received_message_is_reported() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let (tx, mut rx) = unbounded_channel();
        let _handle = start_call_with(params(port, SipTransport::Udp), quick(), trust(), tx);
        let mut buf = vec![0u8; 65_535];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        let invite = SipMessage::parse(&buf[..n]).unwrap();
        let busy = super::super::message::response_to(&invite, 486, "Busy Here", "t");
        server
            .send_to(busy.render().as_bytes(), from)
            .await
            .unwrap();
        let mut log = Vec::new();
        loop {
            let (wacid, event) = rx.recv().await.unwrap();
            assert_eq!(wacid, "wacid.T");
            match event {
                SipEvent::Message {
                    outgoing,
                    first_line,
                    raw,
                } => {
                    assert!(raw.starts_with(&first_line));
                    log.push((outgoing, first_line));
                }
                // The ACK is already out (and logged) when the failure is reported.
                SipEvent::Failed { status: 486, .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        let expected_invite = format!("INVITE sip:+15550783881@127.0.0.1:{port} SIP/2.0");
        assert_eq!(
            log,
            vec![
                (true, expected_invite.clone()),
                (false, "SIP/2.0 486 Busy Here".to_owned()),
                (true, expected_invite.replacen("INVITE", "ACK", 1)),
            ]
        );
    }
}
