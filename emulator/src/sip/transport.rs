//! The tokio shell around [`Uac`]: resolves the server, owns the UDP socket or TCP
//! connection, reads the clock, runs the timers and reports events.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::message::{frame_len, skip_keepalive, SipMessage};
use super::uac::{Output, Uac};
use super::{InviteParams, SipEvent, SipServer, Transport, UacConfig};

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

/// Starts signalling a call on the current tokio runtime with the standard RFC 3261
/// timers. Every event goes to `events`, tagged with the wacid.
#[must_use = "the handle is the only way to hang the call up"]
pub fn start_call(
    params: InviteParams,
    events: UnboundedSender<(String, SipEvent)>,
) -> CallHandle {
    start_call_with(params, UacConfig::default(), events)
}

/// [`start_call`] with chosen timers.
#[must_use = "the handle is the only way to hang the call up"]
pub fn start_call_with(
    params: InviteParams,
    config: UacConfig,
    events: UnboundedSender<(String, SipEvent)>,
) -> CallHandle {
    let (commands, receiver) = unbounded_channel();
    let wacid = params.wacid.clone();
    tokio::spawn(run(params, config, events, receiver));
    CallHandle { wacid, commands }
}

fn message_event(outgoing: bool, raw: String) -> SipEvent {
    SipEvent::Message {
        outgoing,
        first_line: raw.lines().next().unwrap_or_default().to_owned(),
        raw,
    }
}

async fn run(
    params: InviteParams,
    config: UacConfig,
    events: UnboundedSender<(String, SipEvent)>,
    mut commands: UnboundedReceiver<Command>,
) {
    let wacid = params.wacid.clone();
    let report = |event: SipEvent| {
        let _ = events.send((wacid.clone(), event));
    };
    let server = params.server.clone();
    let link = match resolve(&server).await {
        Ok(remote) => Link::open(server.transport, remote, &config).await,
        Err(e) => Err(e),
    };
    let mut link = match link {
        Ok(link) => link,
        Err(e) => {
            tracing::warn!(wacid = %wacid, server = %server.hostname, port = server.port, error = %e, "SIP server unreachable");
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

async fn resolve(server: &SipServer) -> io::Result<SocketAddr> {
    let host = server.hostname.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, server.port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for SIP server"))
}

/// The path to the server: a connected UDP socket, or a TCP connection that is
/// re-established when a request must go out after it dropped.
enum Link {
    Udp(UdpSocket),
    Tcp {
        remote: SocketAddr,
        stream: Option<TcpStream>,
        buf: Vec<u8>,
        connect_timeout: std::time::Duration,
    },
}

impl Link {
    async fn open(transport: Transport, remote: SocketAddr, config: &UacConfig) -> io::Result<Link> {
        match transport {
            Transport::Udp => {
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
            Transport::Tcp => {
                let connect_timeout = config.transaction_timeout();
                let stream = connect(remote, connect_timeout).await?;
                Ok(Link::Tcp {
                    remote,
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
            Link::Tcp { stream: Some(s), .. } => s.local_addr(),
            Link::Tcp { stream: None, .. } => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp(socket) => socket.send(data).await.map(|_| ()),
            Link::Tcp {
                remote,
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
                let mut fresh = connect(*remote, *connect_timeout).await?;
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
            Link::Tcp { stream, buf, .. } => loop {
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

async fn connect(remote: SocketAddr, timeout: std::time::Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(remote))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
