//! Traffic as the article made it: an HTTP GET, a ping, the article's HTTP server.
//!
//! On local places (lab, topology) these run natively in the namespace (a socket opened by a
//! thread that joined it), so the lab needs neither curl nor ping. On kube places they run
//! `curl` and `ping` in the node probe. Every operation has a deadline, and the client's source
//! port is chosen by the caller so captures can filter on the exact connection.

use crate::error::{Error, Result};
use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Type, LaxNetSlice, LaxSlicedPacket, TransportSlice,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// An ICMP echo id: the process id mixed with a counter, so parallel pings of one process,
/// and of two processes, tell their replies apart. (Client source ports are
/// [`crate::ports::source_port`]'s.)
pub(crate) fn next_echo_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    (std::process::id() as u16) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One echo reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    pub seq: u16,
    pub ttl: u8,
}

/// Runs `f` (given the place's label) inside the network namespace `netns` of a local place,
/// on tokio's blocking pool: the socket work it does blocks.
pub(crate) fn in_netns<T: Send + 'static>(
    label: &str,
    netns: &Path,
    f: impl FnOnce(&str) -> Result<T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T>> + Send + 'static {
    let netns = netns.to_path_buf();
    let label = label.to_string();
    async move {
        tokio::task::spawn_blocking(move || crate::netns::in_netns(&netns, move || f(&label)))
            .await
            .map_err(|e| Error::Internal(format!("a traffic thread failed: {e}")))?
    }
}

pub(crate) fn http_get_here(
    label: &str,
    ip: Ipv4Addr,
    port: u16,
    src_port: u16,
    deadline: Duration,
) -> Result<Vec<u8>> {
    let command = format!("GET http://{ip}:{port}/ from source port {src_port}");
    let fail = |problem: String| Error::Command {
        place: label.to_string(),
        command: command.clone(),
        problem,
    };
    let started = Instant::now();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| fail(format!("socket: {e}")))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail(format!("SO_REUSEADDR: {e}")))?;
    socket
        .bind(&SockAddr::from(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            src_port,
        )))
        .map_err(|e| fail(format!("bind to source port {src_port}: {e}")))?;
    socket
        .connect_timeout(&SockAddr::from(SocketAddrV4::new(ip, port)), deadline)
        .map_err(|e| fail(format!("connect failed: {e}")))?;
    let mut stream: std::net::TcpStream = socket.into();
    let left = deadline
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| fail(format!("read timeout: {e}")))?;
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: calico-conformance\r\nAccept: */*\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| fail(format!("sending the request failed: {e}")))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| fail(format!("reading the response failed: {e}")))?;
    let text = String::from_utf8_lossy(&response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(fail(format!("the response has no header end: {text:?}")));
    };
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(fail(format!("the server answered `{status}`")));
    }
    Ok(body.as_bytes().to_vec())
}

pub(crate) fn ping_here(
    label: &str,
    ip: Ipv4Addr,
    count: u16,
    deadline: Duration,
) -> Result<Vec<EchoReply>> {
    let command = format!("ping -c {count} {ip}");
    let fail = |problem: String| Error::Command {
        place: label.to_string(),
        command: command.clone(),
        problem,
    };
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(|e| fail(format!("raw ICMP socket: {e}")))?;
    let id = next_echo_id();
    let started = Instant::now();
    let per_reply = deadline / u32::from(count.max(1));
    let mut replies = Vec::new();
    let target = SockAddr::from(SocketAddrV4::new(ip, 0));
    for seq in 1..=count {
        let request = echo_request(id, seq);
        socket
            .send_to(&request, &target)
            .map_err(|e| fail(format!("send failed: {e}")))?;
        let wait_until = (started.elapsed() + per_reply).min(deadline);
        let mut buf = vec![0u8; 65536];
        while let Some(n) = receive_until(&socket, &mut buf, started, wait_until)
            .map_err(|e| fail(e.to_string()))?
        {
            if let Some(reply) = parse_echo_reply(&buf[..n], ip, id, seq) {
                replies.push(reply);
                break;
            }
        }
    }
    Ok(replies)
}

/// Reads one datagram from `socket` into `buf` before `wait_until` (time since `started`):
/// its length, or `None` once the time is up. Errors say what failed (`read timeout: ...`,
/// `receive failed: ...`).
pub(crate) fn receive_until(
    socket: &Socket,
    buf: &mut [u8],
    started: Instant,
    wait_until: Duration,
) -> std::result::Result<Option<usize>, String> {
    if started.elapsed() >= wait_until {
        return Ok(None);
    }
    let left = wait_until
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    socket
        .set_read_timeout(Some(left))
        .map_err(|e| format!("read timeout: {e}"))?;
    match (&*socket).read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(format!("receive failed: {e}")),
    }
}

/// The payload of our echo requests (what `ping` sends is arbitrary; this says who sent it).
const ECHO_PAYLOAD: &[u8] = b"calico-conformance ping payload..";

/// An ICMP echo request (header with its checksum, then the payload), as a raw ICMP socket
/// sends it: the kernel adds the IPv4 header.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let header = Icmpv4Header::with_checksum(
        Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }),
        ECHO_PAYLOAD,
    );
    let mut packet = header.to_bytes().to_vec();
    packet.extend_from_slice(ECHO_PAYLOAD);
    packet
}

/// An echo reply from `from` with our id and seq, out of a raw IPv4 packet (what a raw ICMP
/// socket receives).
fn parse_echo_reply(ip_packet: &[u8], from: Ipv4Addr, id: u16, seq: u16) -> Option<EchoReply> {
    let packet = LaxSlicedPacket::from_ip(ip_packet).ok()?;
    let (Some(LaxNetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) =
        (&packet.net, &packet.transport)
    else {
        return None;
    };
    let header = ip.header();
    let ours = matches!(
        icmp.icmp_type(),
        Icmpv4Type::EchoReply(echo) if echo == IcmpEchoHeader { id, seq }
    );
    (ours && header.source_addr() == from).then_some(EchoReply {
        seq,
        ttl: header.ttl(),
    })
}

/// The article's HTTP server (`python -m SimpleHTTPServer 8080` serving an `index.html` that
/// says `<p>Hi from <pod></p>`), run natively inside a local namespace.
pub struct HttpServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Where it listens.
    pub netns: PathBuf,
    pub port: u16,
}

impl HttpServer {
    /// Listens on 0.0.0.0:`port` in `netns` and answers every request with `body` + newline,
    /// as the article's server does.
    pub fn start(netns: &Path, port: u16, body: String) -> Result<HttpServer> {
        let where_ = netns.display().to_string();
        let listener = crate::netns::in_netns(netns, move || {
            let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                .map_err(|e| Error::io(format!("listening on port {port} in {where_}"), e))?;
            l.set_nonblocking(true)
                .map_err(|e| Error::io("making the listener non-blocking", e))?;
            Ok(l)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("http server {}", netns.display()))
                .spawn(move || serve(listener, &stop, &body))
                .map_err(|e| Error::io("starting the HTTP server thread", e))?
        };
        Ok(HttpServer {
            stop,
            thread: Some(thread),
            netns: netns.to_path_buf(),
            port,
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, stop: &AtomicBool, body: &str) {
    let file = format!("{body}\n");
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/2.7.18\r\nContent-type: text/html\r\nContent-Length: {}\r\n\r\n{file}",
                    file.len()
                );
                let _ = conn.write_all(response.as_bytes());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Nothing waiting: look again shortly (the stop flag is checked each round).
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&listener),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u16));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo_request(0x1234, 7);
        assert_eq!(&p[..8], &[8, 0, p[2], p[3], 0x12, 0x34, 0, 7]);
        assert_eq!(&p[8..], ECHO_PAYLOAD);
        // The Internet checksum of a message that carries its checksum is zero.
        let sum = etherparse::checksum::Sum16BitWords::new().add_slice(&p);
        assert_eq!(sum.ones_complement(), 0);
    }

    #[test]
    fn replies_from_elsewhere_or_for_other_ids_are_not_ours() {
        let mut packet = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 63, 1, 0, 0, 192, 168, 1, 10, 192, 168, 1, 12,
        ];
        packet.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        let from = Ipv4Addr::new(192, 168, 1, 10);
        assert_eq!(
            parse_echo_reply(&packet, from, 0x1234, 7),
            Some(EchoReply { seq: 7, ttl: 63 })
        );
        assert_eq!(parse_echo_reply(&packet, from, 0x1235, 7), None);
        assert_eq!(
            parse_echo_reply(&packet, Ipv4Addr::new(10, 0, 0, 1), 0x1234, 7),
            None
        );
        assert_eq!(parse_echo_reply(&packet[..10], from, 0x1234, 7), None);
    }
}
