//! Traffic as the article made it: an HTTP GET, a ping, the article's HTTP server.
//!
//! On local places (lab, topology) these run natively in the namespace (a socket opened by a
//! thread that joined it), so the lab needs neither curl nor ping. On kube places they run
//! `curl` and `ping` in the node probe. Every operation has a deadline, and the client's source
//! port is chosen by the caller so captures can filter on the exact connection.

use crate::error::{Error, Result};
use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Slice, Icmpv6Type, LaxNetSlice,
    LaxSlicedPacket, TransportSlice,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener};
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
    /// The reply's TTL (IPv4) or hop limit (IPv6) as it arrived.
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

/// `GET /` to `ip:port` from source port `src_port` (IPv4 or IPv6: `[fd00::1]:8080`), on a
/// socket of this thread's namespace; returns the body of a `200` answer.
pub(crate) fn http_get_here(
    label: &str,
    ip: IpAddr,
    port: u16,
    src_port: u16,
    deadline: Duration,
) -> Result<Vec<u8>> {
    let server = SocketAddr::new(ip, port);
    let command = format!("GET http://{server}/ from source port {src_port}");
    let fail = |problem: String| Error::Command {
        place: label.to_string(),
        command: command.clone(),
        problem,
    };
    let started = Instant::now();
    let socket = Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(|e| fail(format!("socket: {e}")))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail(format!("SO_REUSEADDR: {e}")))?;
    let local = match ip {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, src_port)),
        IpAddr::V6(_) => {
            // An IPv6 client only: its source port is not also taken for IPv4.
            socket
                .set_only_v6(true)
                .map_err(|e| fail(format!("IPV6_V6ONLY: {e}")))?;
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, src_port))
        }
    };
    socket
        .bind(&SockAddr::from(local))
        .map_err(|e| fail(format!("bind to source port {src_port}: {e}")))?;
    socket
        .connect_timeout(&SockAddr::from(server), deadline)
        .map_err(|e| fail(format!("connect failed: {e}")))?;
    let mut stream: std::net::TcpStream = socket.into();
    let left = deadline
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| fail(format!("read timeout: {e}")))?;
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {server}\r\nUser-Agent: calico-conformance\r\nAccept: */*\r\nConnection: close\r\n\r\n").as_bytes())
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

/// Pings `ip` `count` times from this thread's namespace (a raw ICMP socket for IPv4, a raw
/// ICMPv6 socket for IPv6); the replies that came back before `deadline`, each with the TTL
/// (IPv4) or hop limit (IPv6) it arrived with.
pub(crate) fn ping_here(
    label: &str,
    ip: IpAddr,
    count: u16,
    deadline: Duration,
) -> Result<Vec<EchoReply>> {
    let command = match ip {
        IpAddr::V4(_) => format!("ping -c {count} {ip}"),
        IpAddr::V6(_) => format!("ping -6 -c {count} {ip}"),
    };
    let done = match ip {
        IpAddr::V4(ip) => ping_v4(ip, count, deadline),
        IpAddr::V6(ip) => ping_v6(ip, count, deadline),
    };
    done.map_err(|problem| Error::Command {
        place: label.to_string(),
        command,
        problem,
    })
}

fn ping_v4(
    ip: Ipv4Addr,
    count: u16,
    deadline: Duration,
) -> std::result::Result<Vec<EchoReply>, String> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(|e| format!("raw ICMP socket: {e}"))?;
    let id = next_echo_id();
    let started = Instant::now();
    let per_reply = deadline / u32::from(count.max(1));
    let mut replies = Vec::new();
    let target = SockAddr::from(SocketAddrV4::new(ip, 0));
    for seq in 1..=count {
        let request = echo_request(id, seq);
        socket
            .send_to(&request, &target)
            .map_err(|e| format!("send failed: {e}"))?;
        let wait_until = (started.elapsed() + per_reply).min(deadline);
        let mut buf = vec![0u8; 65536];
        while let Some(n) = receive_until(&socket, &mut buf, started, wait_until)? {
            if let Some(reply) = parse_echo_reply(&buf[..n], ip, id, seq) {
                replies.push(reply);
                break;
            }
        }
    }
    Ok(replies)
}

/// As [`ping_v4`] over a raw ICMPv6 socket. The kernel fills in the ICMPv6 checksum (it
/// always does on `IPPROTO_ICMPV6` raw sockets, RFC 3542 section 3.1) and hands over the
/// ICMPv6 message without the IPv6 header: the source comes from `recvmsg`'s address and the
/// hop limit from its `IPV6_HOPLIMIT` control message. Everything else the socket sees (our
/// own requests on `lo`, neighbour discovery, other pings' replies) is skipped.
fn ping_v6(
    ip: Ipv6Addr,
    count: u16,
    deadline: Duration,
) -> std::result::Result<Vec<EchoReply>, String> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        .map_err(|e| format!("raw ICMPv6 socket: {e}"))?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)
        .map_err(|e| format!("IPV6_RECVHOPLIMIT: {e}"))?;
    let id = next_echo_id();
    let started = Instant::now();
    let per_reply = deadline / u32::from(count.max(1));
    let mut replies = Vec::new();
    let target = SockAddr::from(SocketAddrV6::new(ip, 0, 0, 0));
    let mut buf = vec![0u8; 65536];
    for seq in 1..=count {
        let request = echo6_request(id, seq);
        socket
            .send_to(&request, &target)
            .map_err(|e| format!("send failed: {e}"))?;
        let wait_until = (started.elapsed() + per_reply).min(deadline);
        while let Some(got) = receive6_until(&socket, &mut buf, started, wait_until)? {
            if got.from != Some(ip) || !is_echo6_reply(&buf[..got.len], id, seq) {
                continue;
            }
            let Some(ttl) = got.hop_limit else {
                return Err(format!(
                    "the echo reply {seq} came without its hop limit (no IPV6_HOPLIMIT message)"
                ));
            };
            replies.push(EchoReply { seq, ttl });
            break;
        }
    }
    Ok(replies)
}

/// One ICMPv6 message as a raw ICMPv6 socket received it.
struct Received6 {
    /// Its length in the buffer.
    len: usize,
    /// Who sent it.
    from: Option<Ipv6Addr>,
    /// The hop limit it arrived with (`IPV6_HOPLIMIT`).
    hop_limit: Option<u8>,
}

/// Sets `socket`'s read timeout to what is left until `wait_until` (time since `started`), at
/// least 1 ms; `false` when the time is up.
fn read_timeout_left(
    socket: &Socket,
    started: Instant,
    wait_until: Duration,
) -> std::result::Result<bool, String> {
    if started.elapsed() >= wait_until {
        return Ok(false);
    }
    let left = wait_until
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    socket
        .set_read_timeout(Some(left))
        .map_err(|e| format!("read timeout: {e}"))?;
    Ok(true)
}

/// As [`receive_until`], with `recvmsg` on a raw ICMPv6 socket: one message before
/// `wait_until` (time since `started`) with its source and hop limit, or `None` once the time
/// is up.
fn receive6_until(
    socket: &Socket,
    buf: &mut [u8],
    started: Instant,
    wait_until: Duration,
) -> std::result::Result<Option<Received6>, String> {
    use nix::errno::Errno;
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
    use std::os::fd::AsRawFd;
    loop {
        if !read_timeout_left(socket, started, wait_until)? {
            return Ok(None);
        }
        let mut iov = [std::io::IoSliceMut::new(&mut *buf)];
        let mut cmsg = nix::cmsg_space!(libc::c_int);
        match recvmsg::<SockaddrIn6>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        ) {
            Ok(msg) => {
                let hop_limit = msg.cmsgs().ok().and_then(|mut cmsgs| {
                    cmsgs.find_map(|c| match c {
                        ControlMessageOwned::Ipv6HopLimit(h) => u8::try_from(h).ok(),
                        _ => None,
                    })
                });
                return Ok(Some(Received6 {
                    len: msg.bytes,
                    from: msg.address.map(|a| a.ip()),
                    hop_limit,
                }));
            }
            // SO_RCVTIMEO ran out: the time is up.
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("receive failed: {e}")),
        }
    }
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
    if !read_timeout_left(socket, started, wait_until)? {
        return Ok(None);
    }
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

/// An ICMPv6 echo request (type 128, our id and seq, then the payload) as a raw ICMPv6 socket
/// sends it: checksum zero, the kernel computes it over the IPv6 pseudo-header it alone knows
/// (the source address is its choice) and adds the IPv6 header.
fn echo6_request(id: u16, seq: u16) -> Vec<u8> {
    let header = Icmpv6Header::new(Icmpv6Type::EchoRequest(IcmpEchoHeader { id, seq }));
    let mut packet = header.to_bytes().to_vec();
    packet.extend_from_slice(ECHO_PAYLOAD);
    packet
}

/// Whether `icmp` (an ICMPv6 message, as a raw ICMPv6 socket receives it) is an echo reply
/// (type 129) with our id and seq.
fn is_echo6_reply(icmp: &[u8], id: u16, seq: u16) -> bool {
    Icmpv6Slice::from_slice(icmp).is_ok_and(|m| {
        matches!(
            m.icmp_type(),
            Icmpv6Type::EchoReply(echo) if echo == IcmpEchoHeader { id, seq }
        )
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
    /// Listens on `[::]:port` in `netns`, dual stack (IPv4 clients arrive as v4-mapped
    /// addresses), or on `0.0.0.0:port` where the namespace has no IPv6; answers every request
    /// with `body` + newline, as the article's server does.
    pub fn start(netns: &Path, port: u16, body: String) -> Result<HttpServer> {
        let where_ = netns.display().to_string();
        let listener = crate::netns::in_netns(netns, move || {
            let l = match listen_dual_stack(port) {
                Some(listening) => listening
                    .map_err(|e| Error::io(format!("listening on [::]:{port} in {where_}"), e))?,
                None => TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                    .map_err(|e| Error::io(format!("listening on port {port} in {where_}"), e))?,
            };
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

/// A listener on `[::]:port` with `IPV6_V6ONLY` off, in this thread's namespace; `None` when
/// the namespace has no IPv6 (no `/proc/sys/net/ipv6`, or the IPv6 socket or its bind is
/// refused with `EAFNOSUPPORT` / `EADDRNOTAVAIL`), for the caller to listen on IPv4 alone.
fn listen_dual_stack(port: u16) -> Option<std::io::Result<TcpListener>> {
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return None;
    }
    let no_ipv6 = |e: &std::io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
        )
    };
    let socket = match Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)) {
        Ok(s) => s,
        Err(e) if no_ipv6(&e) => return None,
        Err(e) => return Some(Err(e)),
    };
    let listening = (|| {
        // As std's TcpListener::bind does.
        socket.set_reuse_address(true)?;
        socket.set_only_v6(false)?;
        socket.bind(&SockAddr::from(SocketAddr::from((
            Ipv6Addr::UNSPECIFIED,
            port,
        ))))?;
        socket.listen(128)
    })();
    match listening {
        Ok(()) => Some(Ok(socket.into())),
        Err(e) if no_ipv6(&e) => None,
        Err(e) => Some(Err(e)),
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

    #[test]
    fn ipv6_echo_requests_are_type_128_with_id_and_seq() {
        let p = echo6_request(0x1234, 7);
        // Type 128, code 0, checksum left to the kernel, id, seq, then the payload.
        assert_eq!(&p[..8], &[128, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(&p[8..], ECHO_PAYLOAD);
    }

    #[test]
    fn ipv6_echo_replies_are_told_from_requests_and_other_ids() {
        let mut reply = vec![129, 0, 0xab, 0xcd, 0x12, 0x34, 0, 7];
        reply.extend_from_slice(ECHO_PAYLOAD);
        assert!(is_echo6_reply(&reply, 0x1234, 7));
        assert!(!is_echo6_reply(&reply, 0x1235, 7));
        assert!(!is_echo6_reply(&reply, 0x1234, 8));
        // Our own request, as a raw ICMPv6 socket sees it on lo.
        assert!(!is_echo6_reply(&echo6_request(0x1234, 7), 0x1234, 7));
        // A neighbour solicitation.
        assert!(!is_echo6_reply(&[135, 0, 0, 0, 0, 0, 0, 0], 0x1234, 7));
        assert!(!is_echo6_reply(&reply[..4], 0x1234, 7));
    }

    /// A new network namespace of this process with `lo` up (`127.0.0.1`, `::1`) and nothing
    /// else, freed when the returned descriptor is dropped.
    fn namespace_with_lo_up(tag: &str) -> crate::lab::holder::HeldNs {
        let label = format!(
            "calico-conformance-test:traffic-{tag}-{}",
            std::process::id()
        );
        let ns = crate::lab::holder::new_namespaces(vec![label])
            .unwrap()
            .pop()
            .unwrap();
        let status = crate::netns::command_in(&ns.path(), "ip")
            .unwrap()
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(status.success(), "ip link set lo up: {status}");
        ns
    }

    #[test]
    fn pings_and_gets_over_ipv6_and_ipv4_in_a_fresh_namespace() {
        let ns = namespace_with_lo_up("ping-get");
        let deadline = Duration::from_secs(3);
        let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
        let v4: IpAddr = Ipv4Addr::LOCALHOST.into();
        let replies = crate::netns::in_netns(&ns.path(), move || {
            Ok((
                ping_here("test", v6, 2, deadline)?,
                ping_here("test", v4, 2, deadline)?,
            ))
        })
        .unwrap();
        let expected = vec![EchoReply { seq: 1, ttl: 64 }, EchoReply { seq: 2, ttl: 64 }];
        assert_eq!(replies.0, expected, "ping -6 ::1");
        assert_eq!(replies.1, expected, "ping 127.0.0.1");

        let server = HttpServer::start(&ns.path(), 8080, "<p>Hi from test</p>".into()).unwrap();
        let bodies = crate::netns::in_netns(&ns.path(), move || {
            Ok((
                http_get_here("test", v6, 8080, 40001, deadline)?,
                http_get_here("test", v4, 8080, 40002, deadline)?,
            ))
        })
        .unwrap();
        assert_eq!(bodies.0, b"<p>Hi from test</p>\n", "GET http://[::1]:8080/");
        assert_eq!(
            bodies.1, b"<p>Hi from test</p>\n",
            "GET http://127.0.0.1:8080/"
        );
        drop(server);
    }

    #[test]
    fn an_unanswered_ipv6_ping_ends_at_its_deadline_and_errors_name_the_url() {
        let ns = namespace_with_lo_up("unanswered");
        // Nobody has this address (lo is the only link and has no route to it): the request
        // is refused at the source or goes unanswered, within the deadline either way.
        let nobody: IpAddr = "fd00::1".parse().unwrap();
        let started = Instant::now();
        let (ping, get) = crate::netns::in_netns(&ns.path(), move || {
            Ok((
                ping_here("test", nobody, 2, Duration::from_millis(300)),
                http_get_here(
                    "test",
                    Ipv6Addr::LOCALHOST.into(),
                    8081,
                    40003,
                    Duration::from_secs(1),
                ),
            ))
        })
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        match ping {
            Ok(replies) => assert!(replies.is_empty(), "{replies:?}"),
            Err(e) => assert!(e.to_string().contains("ping -6 -c 2 fd00::1"), "{e}"),
        }
        let e = get.unwrap_err().to_string();
        assert!(
            e.contains("GET http://[::1]:8081/ from source port 40003"),
            "{e}"
        );
    }
}
