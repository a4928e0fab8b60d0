//! ICMP echo requests sent with Don't Fragment, and what became of each (MTU-2): answered,
//! refused by the sender's own stack (`EMSGSIZE`, ping's "message too long"), answered by a
//! router with ICMP fragmentation needed, or lost. Telling "refused at the source" from "lost"
//! is the point: a black hole loses full-size packets silently.
//!
//! On local places the request is sent in-process from a raw ICMP socket with `IP_HDRINCL`, so
//! the suite writes the IPv4 header itself, DF set: the kernel then refuses, with `EMSGSIZE`, a
//! packet larger than the outgoing device's MTU (`raw_send_hdrinc`), and a cached path MTU
//! never changes what is sent. The same raw socket receives every ICMP packet of the namespace:
//! the echo reply, or an ICMP error quoting the request. On kube places iputils `ping -M do -s N`
//! runs in the pod through the node probe and its output is read by [`parse_ping_df`].

use crate::error::{Error, Result};
use etherparse::{IcmpEchoHeader, Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Bytes of IPv4 and ICMP header in an echo request: a payload of `MTU - 28` fills the MTU.
pub const ECHO_HEADERS: u32 = 28;
/// How long one attempt waits for an answer before the next is sent.
const ATTEMPT: Duration = Duration::from_secs(1);
/// Attempts before an echo counts as lost.
const ATTEMPTS: u16 = 3;

/// What became of an echo request sent with DF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DfOutcome {
    /// An echo reply came back, with this TTL.
    Answered { ttl: u8 },
    /// The sender's own stack refused it as larger than the route's MTU (`EMSGSIZE`); the MTU
    /// when the sender said (iputils: `mtu=1450`).
    RefusedAtSource { mtu: Option<u32> },
    /// A router on the path answered ICMP fragmentation needed (type 3 code 4), with the
    /// next-hop MTU when it gave one.
    FragmentationNeeded { from: Ipv4Addr, mtu: Option<u32> },
    /// Another ICMP error came back (host unreachable, TTL exceeded, ...).
    IcmpError {
        from: Ipv4Addr,
        icmp_type: u8,
        code: u8,
    },
    /// Nothing came back, from anyone, in every attempt.
    Lost,
}

impl DfOutcome {
    /// The outcome's name as a report keeps it: `answered`, `refused_at_source`,
    /// `fragmentation_needed`, `icmp_error`, `lost`.
    pub fn name(&self) -> &'static str {
        match self {
            DfOutcome::Answered { .. } => "answered",
            DfOutcome::RefusedAtSource { .. } => "refused_at_source",
            DfOutcome::FragmentationNeeded { .. } => "fragmentation_needed",
            DfOutcome::IcmpError { .. } => "icmp_error",
            DfOutcome::Lost => "lost",
        }
    }
}

impl fmt::Display for DfOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mtu = |m: &Option<u32>| m.map(|m| format!(", MTU {m}")).unwrap_or_default();
        match self {
            DfOutcome::Answered { ttl } => write!(f, "answered (ttl {ttl})"),
            DfOutcome::RefusedAtSource { mtu: m } => {
                write!(f, "refused at the source: message too long{}", mtu(m))
            }
            DfOutcome::FragmentationNeeded { from, mtu: m } => {
                write!(f, "ICMP fragmentation needed from {from}{}", mtu(m))
            }
            DfOutcome::IcmpError {
                from,
                icmp_type,
                code,
            } => write!(f, "ICMP error type {icmp_type} code {code} from {from}"),
            DfOutcome::Lost => write!(
                f,
                "lost: no reply and no error in {ATTEMPTS} attempts of {} s",
                ATTEMPT.as_secs()
            ),
        }
    }
}

/// One echo request with DF: its ICMP payload size (`ping -s`) and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfEcho {
    pub payload: u32,
    pub outcome: DfOutcome,
}

/// Sends echo requests of `payload` bytes with DF to `ip` from the current thread's namespace
/// (up to [`ATTEMPTS`], one a second, within `deadline`) until one is answered, refused or
/// answered with an ICMP error.
pub(crate) fn df_echo_here(
    label: &str,
    ip: Ipv4Addr,
    payload: u32,
    deadline: Duration,
) -> Result<DfEcho> {
    let command = format!("ping -M do -s {payload} {ip}");
    let fail = |problem: String| Error::Command {
        place: label.to_string(),
        command: command.clone(),
        problem,
    };
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(|e| fail(format!("raw ICMP socket: {e}")))?;
    socket
        .set_header_included_v4(true)
        .map_err(|e| fail(format!("IP_HDRINCL: {e}")))?;
    let id = crate::traffic::next_echo_id();
    let started = Instant::now();
    let target = SockAddr::from(SocketAddrV4::new(ip, 0));
    for seq in 1..=ATTEMPTS {
        let packet = df_request(ip, id, seq, payload).map_err(fail)?;
        match socket.send_to(&packet, &target) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                let outcome = DfOutcome::RefusedAtSource { mtu: None };
                return Ok(DfEcho { payload, outcome });
            }
            Err(e) => return Err(fail(format!("send failed: {e}"))),
        }
        let wait_until = (started.elapsed() + ATTEMPT).min(deadline);
        let mut buf = vec![0u8; 65536];
        while let Some(n) = crate::traffic::receive_until(&socket, &mut buf, started, wait_until)
            .map_err(|e| fail(e.to_string()))?
        {
            if let Some(outcome) = answer_to(&buf[..n], ip, id, seq) {
                return Ok(DfEcho { payload, outcome });
            }
        }
        if started.elapsed() >= deadline {
            break;
        }
    }
    let outcome = DfOutcome::Lost;
    Ok(DfEcho { payload, outcome })
}

/// An IPv4 packet carrying an echo request of `payload` bytes, DF set, source left to the
/// kernel (0.0.0.0: `raw_send_hdrinc` fills it in, with the id and checksum).
fn df_request(
    to: Ipv4Addr,
    id: u16,
    seq: u16,
    payload: u32,
) -> std::result::Result<Vec<u8>, String> {
    let data: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
    let icmp =
        Icmpv4Header::with_checksum(Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }), &data);
    let len = u16::try_from(icmp.header_len() + data.len())
        .map_err(|_| format!("an echo payload of {payload} bytes does not fit in IPv4"))?;
    let mut ip = Ipv4Header::new(len, 64, IpNumber::ICMP, [0; 4], to.octets())
        .map_err(|e| format!("an echo payload of {payload} bytes: {e}"))?;
    ip.dont_fragment = true;
    let mut packet = ip.to_bytes().to_vec();
    packet.extend_from_slice(&icmp.to_bytes());
    packet.extend_from_slice(&data);
    Ok(packet)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn addr(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

/// What the received IPv4 packet `ip_packet` says about our request (`to`, `id`, `seq`): our
/// echo reply, or an ICMP error quoting our request; `None` for anything else.
fn answer_to(ip_packet: &[u8], to: Ipv4Addr, id: u16, seq: u16) -> Option<DfOutcome> {
    let ihl = usize::from(ip_packet.first()? & 0x0f) * 4;
    let (ttl, from) = (*ip_packet.get(8)?, addr(ip_packet, 12)?);
    let icmp = ip_packet.get(ihl..)?;
    let (icmp_type, code) = (*icmp.first()?, *icmp.get(1)?);
    if icmp_type == 0 {
        let ours = from == to && be16(icmp, 4)? == id && be16(icmp, 6)? == seq;
        return ours.then_some(DfOutcome::Answered { ttl });
    }
    // Destination unreachable, time exceeded, parameter problem: they quote our request.
    if !matches!(icmp_type, 3 | 11 | 12) {
        return None;
    }
    let quoted = icmp.get(8..)?;
    let q_ihl = usize::from(quoted.first()? & 0x0f) * 4;
    let q_icmp = quoted.get(q_ihl..)?;
    let ours = *quoted.get(9)? == 1
        && addr(quoted, 16)? == to
        && *q_icmp.first()? == 8
        && be16(q_icmp, 4)? == id
        && be16(q_icmp, 6)? == seq;
    if !ours {
        return None;
    }
    Some(if (icmp_type, code) == (3, 4) {
        let mtu = be16(icmp, 6).filter(|m| *m != 0).map(u32::from);
        DfOutcome::FragmentationNeeded { from, mtu }
    } else {
        DfOutcome::IcmpError {
            from,
            icmp_type,
            code,
        }
    })
}

/// The argv of iputils `ping` for one DF echo of `payload` bytes to `ip`: one answer wanted,
/// one request a second, at most [`ATTEMPTS`] seconds.
pub fn ping_df_argv(ip: Ipv4Addr, payload: u32) -> Vec<String> {
    [
        "ping",
        "-n",
        "-M",
        "do",
        "-s",
        &payload.to_string(),
        "-c",
        "1",
        "-W",
        "1",
        "-w",
        &ATTEMPTS.to_string(),
        &ip.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What iputils `ping -M do` printed about its requests: a reply line (`1480 bytes from
/// 192.168.2.12: icmp_seq=1 ttl=62 time=0.1 ms`) wins; else the first error, the local one
/// (`ping: local error: message too long, mtu=1450`; older iputils `ping: sendmsg: Message too
/// long`) or one from a router (`From 10.12.22.2 icmp_seq=1 Frag needed and DF set (mtu =
/// 1400)`, any other `From <ip> icmp_seq=N <error>`); else lost.
pub fn parse_ping_df(text: &str) -> DfOutcome {
    let ttl = text
        .lines()
        .filter(|l| l.contains("bytes from"))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("ttl=")))
        .and_then(|t| t.parse().ok());
    if let Some(ttl) = ttl {
        return DfOutcome::Answered { ttl };
    }
    let number_after = |line: &str, key: &str| -> Option<u32> {
        let rest = &line[line.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    for line in text.lines() {
        let lower = line.to_lowercase();
        if lower.contains("message too long") {
            let mtu = number_after(line, "mtu=");
            return DfOutcome::RefusedAtSource { mtu };
        }
        let Some(rest) = line.strip_prefix("From ") else {
            continue;
        };
        let Some(from) = rest
            .split_whitespace()
            .next()
            .and_then(|a| a.trim_end_matches(':').parse().ok())
        else {
            continue;
        };
        if lower.contains("frag needed") {
            let mtu = number_after(line, "mtu =");
            return DfOutcome::FragmentationNeeded { from, mtu };
        }
        // iputils names the error, not its numbers: keep the unreachable kind as code 255.
        let icmp_type = if lower.contains("time to live exceeded") {
            11
        } else {
            3
        };
        let code = if lower.contains("host unreachable") {
            1
        } else {
            255
        };
        return DfOutcome::IcmpError {
            from,
            icmp_type,
            code,
        };
    }
    DfOutcome::Lost
}

#[cfg(test)]
mod tests {
    use super::*;

    const TO: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 12);

    #[test]
    fn a_df_request_fills_the_mtu_with_df_set() {
        let p = df_request(TO, 0x1234, 1, 1472).unwrap();
        assert_eq!(p.len(), 1500);
        assert_eq!(p[6] & 0x40, 0x40, "DF");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 1500);
        assert_eq!(&p[16..20], &TO.octets());
        assert_eq!((p[20], p[24], p[25]), (8, 0x12, 0x34));
        assert!(df_request(TO, 1, 1, 70_000).is_err());
    }

    fn recorded(file: &str) -> String {
        crate::fixtures::read_text(&format!("recorded/mtu/{file}"))
    }

    #[test]
    fn iputils_outputs_are_read_as_what_became_of_the_request() {
        let node = Ipv4Addr::new(10, 12, 22, 2);
        let cases = [
            ("ping-df-answered.txt", DfOutcome::Answered { ttl: 62 }),
            (
                "ping-df-message-too-long.txt",
                DfOutcome::RefusedAtSource { mtu: Some(1500) },
            ),
            (
                "ping-df-frag-needed.txt",
                DfOutcome::FragmentationNeeded {
                    from: node,
                    mtu: Some(1400),
                },
            ),
            ("ping-df-lost.txt", DfOutcome::Lost),
        ];
        for (file, want) in cases {
            assert_eq!(parse_ping_df(&recorded(file)), want, "{file}");
        }
        let older = "PING x\nping: sendmsg: Message too long\n";
        assert_eq!(
            parse_ping_df(older),
            DfOutcome::RefusedAtSource { mtu: None }
        );
        let unreachable = "From 10.12.22.3 icmp_seq=1 Destination Host Unreachable\n";
        assert!(matches!(
            parse_ping_df(unreachable),
            DfOutcome::IcmpError { code: 1, .. }
        ));
        assert_eq!(
            ping_df_argv(TO, 1472).join(" "),
            "ping -n -M do -s 1472 -c 1 -W 1 -w 3 192.168.2.12"
        );
    }

    fn reply(from: Ipv4Addr, icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 61, 1, 0, 0];
        p.extend_from_slice(&from.octets());
        p.extend_from_slice(&[192, 168, 1, 12]);
        p.extend_from_slice(icmp);
        p
    }

    #[test]
    fn replies_and_icmp_errors_quoting_our_request_are_told_apart() {
        let echo_reply = reply(TO, &[0, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert_eq!(
            answer_to(&echo_reply, TO, 0x1234, 1),
            Some(DfOutcome::Answered { ttl: 61 })
        );
        assert_eq!(answer_to(&echo_reply, TO, 0x1234, 2), None);
        let request = df_request(TO, 0x1234, 1, 1472).unwrap();
        let node = Ipv4Addr::new(10, 12, 22, 2);
        let mut frag_needed = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        frag_needed.extend_from_slice(&request[..28]);
        assert_eq!(
            answer_to(&reply(node, &frag_needed), TO, 0x1234, 1),
            Some(DfOutcome::FragmentationNeeded {
                from: node,
                mtu: Some(1400)
            })
        );
        assert_eq!(answer_to(&reply(node, &frag_needed), TO, 0x1235, 1), None);
        frag_needed[1] = 1;
        assert_eq!(
            answer_to(&reply(node, &frag_needed), TO, 0x1234, 1),
            Some(DfOutcome::IcmpError {
                from: node,
                icmp_type: 3,
                code: 1
            })
        );
        assert_eq!(answer_to(&frag_needed[..5], TO, 0x1234, 1), None);
    }
}
