//! Checks on captured frames. A [`Match`] is a named frame filter that describes itself
//! (`who-has 169.254.1.1 tell 192.168.1.12`); [`seen`], [`every`] and [`none_while_seen`]
//! compare the [`Frames`] a capture kept with matches, and print both.
//!
//! **Every zero is paired**: [`none_while_seen`] only passes when the paired capture saw the
//! traffic, so a dead capture or a broken filter cannot pass it.

pub use super::value::EncapsulationFields;
use super::{Check, Shown, Value};
use crate::capture::CaptureResult;
use crate::evidence::capture_name;
use crate::facts::Encapsulation;
use crate::observe::packet::{
    ArpOp, EncapKind, Frame, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, L3, L4, Mac, Ndp, Tcp,
    VXLAN_PORT, mac_str,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

/// How many frames a message shows.
const SHOWN: usize = 8;

type Test = Arc<dyn Fn(&Frame) -> bool + Send + Sync>;

/// A named frame filter.
#[derive(Clone)]
pub struct Match {
    what: String,
    value: Option<Value>,
    test: Test,
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Match({:?})", self.what)
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

fn ipv4_between(ip: Option<&crate::observe::packet::Ipv4>, a: Ipv4Addr, b: Ipv4Addr) -> bool {
    ip.is_some_and(|ip| (ip.src == a && ip.dst == b) || (ip.src == b && ip.dst == a))
}

fn ipv6_between(ip: Option<&crate::observe::packet::Ipv6>, a: Ipv6Addr, b: Ipv6Addr) -> bool {
    ip.is_some_and(|ip| (ip.src == a && ip.dst == b) || (ip.src == b && ip.dst == a))
}

/// The TCP segment of this frame (not its inner packet), over IPv4 or IPv6.
fn any_tcp(f: &Frame) -> Option<&Tcp> {
    f.tcp().map(|(_, t)| t).or_else(|| f.tcp6().map(|(_, t)| t))
}

impl Match {
    /// Frames for which `test` holds, described as `what`.
    pub fn new(
        what: impl Into<String>,
        test: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Match {
        Match {
            what: what.into(),
            value: None,
            test: Arc::new(test),
        }
    }

    /// True when `frame` matches.
    pub fn matches(&self, frame: &Frame) -> bool {
        (self.test)(frame)
    }

    /// Frames that match this and `test` too, described as `<this>, <what>`.
    pub fn and(
        self,
        what: impl fmt::Display,
        test: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Match {
        let first = self.test;
        Match {
            what: format!("{}, {what}", self.what),
            value: self.value,
            test: Arc::new(move |f| first(f) && test(f)),
        }
    }

    /// Any ARP frame.
    pub fn arp() -> Match {
        Match::new("ARP", |f| f.arp().is_some())
    }

    /// An ARP request for `target` (from `sender`, when given): `who-has T tell S`.
    pub fn arp_request(target: Ipv4Addr, sender: Option<Ipv4Addr>) -> Match {
        let tell = sender.map(|s| format!(" tell {s}")).unwrap_or_default();
        Match::new(format!("who-has {target}{tell}"), move |f| {
            f.arp().is_some_and(|a| {
                a.op == ArpOp::Request
                    && a.target_ip == target
                    && sender.is_none_or(|s| a.sender_ip == s)
            })
        })
    }

    /// An ARP reply `ip is-at mac`, sent from `mac`.
    pub fn arp_reply(ip: Ipv4Addr, mac: Mac) -> Match {
        let m = mac_str(&mac);
        Match::new(format!("{ip} is-at {m} sent from {m}"), move |f| {
            f.arp().is_some_and(|a| {
                a.op == ArpOp::Reply
                    && a.sender_ip == ip
                    && a.sender_mac == mac
                    && f.eth.is_none_or(|e| e.src == mac)
            })
        })
    }

    /// Any NDP neighbor solicitation or advertisement.
    pub fn ndp() -> Match {
        Match::new("NDP", |f| f.ndp().is_some())
    }

    /// An NDP neighbor solicitation for `target`: `neighbor solicitation who-has T`.
    pub fn ndp_solicit(target: Ipv6Addr) -> Match {
        Match::new(
            format!("neighbor solicitation who-has {target}"),
            move |f| matches!(f.ndp(), Some(Ndp::Solicitation { target: t, .. }) if *t == target),
        )
    }

    /// An NDP neighbor advertisement `target is-at mac`, sent from `mac`: its target is
    /// `target`, its Ethernet source `mac`, and its target link-layer address option, when it
    /// has one, `mac`. Without an Ethernet header (a cooked capture) the option must be there.
    pub fn ndp_advert(target: Ipv6Addr, mac: Mac) -> Match {
        let m = mac_str(&mac);
        Match::new(
            format!("neighbor advertisement {target} is-at {m} sent from {m}"),
            move |f| match f.ndp() {
                Some(Ndp::Advertisement {
                    target: t,
                    target_mac,
                    ..
                }) => {
                    *t == target
                        && (f.eth.is_some() || target_mac.is_some())
                        && f.eth.is_none_or(|e| e.src == mac)
                        && target_mac.is_none_or(|o| o == mac)
                }
                _ => false,
            },
        )
    }

    /// An ICMPv6 echo request or reply between `a` and `b`, either way (this frame, not a
    /// packet it carries).
    pub fn icmpv6_echo_between(a: Ipv6Addr, b: Ipv6Addr) -> Match {
        Match::new(format!("ICMPv6 echo between {a} and {b}"), move |f| {
            f.icmpv6().is_some_and(|(ip, icmp)| {
                matches!(icmp.icmp_type, ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY)
                    && ipv6_between(Some(ip), a, b)
            })
        })
    }

    /// TCP over IPv6 between `a` and `b`, either way, addresses and ports untranslated (this
    /// frame, not a packet it carries).
    pub fn tcp6_between(a: SocketAddrV6, b: SocketAddrV6) -> Match {
        Match::new(format!("between {a} and {b}, untranslated"), move |f| {
            f.is_tcp6_between(a, b)
        })
    }

    /// The innermost packet is IPv6 between `a` and `b`, either way.
    pub fn inner6_between(a: Ipv6Addr, b: Ipv6Addr) -> Match {
        Match::new(
            format!("inner source and destination {a} and {b}"),
            move |f| ipv6_between(f.innermost().ipv6(), a, b),
        )
    }

    /// The packets of an IPv6 pod-to-pod connection on the underlay between the nodes' IPv6
    /// addresses `nodes`, as the encapsulation `mode` wraps them: VXLAN (UDP 4789 between them,
    /// VNI 4096 as for IPv4, Felix's `vxlan-v6.calico`) or none (plain TCP over IPv6, nothing inside).
    /// Calico has no IPIP for IPv6: the IPIP modes match nothing.
    pub fn encapsulated6(mode: Encapsulation, nodes: (Ipv6Addr, Ipv6Addr)) -> Match {
        let (a, b) = nodes;
        let vni = crate::calico::VXLAN_V6_VNI;
        let (what, test): (String, Test) = match mode {
            Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => (
                "IPIP (Calico does not encapsulate IPv6 in IPIP)".into(),
                Arc::new(|_: &Frame| false),
            ),
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => (
                format!(
                    "UDP {VXLAN_PORT} between {a} and {b}, VNI {vni} ({} mode)",
                    mode.as_str()
                ),
                Arc::new(move |f: &Frame| {
                    ipv6_between(f.ipv6(), a, b)
                        && f.ipv6().is_some_and(
                            |ip| matches!(ip.l4, L4::Udp { dst_port, .. } if dst_port == VXLAN_PORT),
                        )
                        && f.encapsulated()
                            .is_some_and(|i| i.kind == EncapKind::Vxlan { vni })
                }),
            ),
            Encapsulation::None => (
                format!(
                    "plain IPv6 packets, nothing encapsulated ({} mode)",
                    mode.as_str()
                ),
                Arc::new(|f: &Frame| f.ipv6().is_some_and(|ip| ip.inner.is_none())),
            ),
        };
        Match {
            what,
            value: None,
            test,
        }
    }

    /// The TCP connection between ports `a` and `b`, either way, in the frame or the packet it
    /// carries.
    pub fn connection(a: u16, b: u16) -> Match {
        Match::new(
            format!("the connection between ports {a} and {b}"),
            move |f| {
                f.innermost().tcp().is_some_and(|(_, t)| {
                    (t.src_port == a && t.dst_port == b) || (t.src_port == b && t.dst_port == a)
                })
            },
        )
    }

    /// TCP from port `from` to port `to` (this frame, not a packet it carries).
    pub fn tcp_ports(from: u16, to: u16) -> Match {
        Match::new(format!("TCP from port {from} to port {to}"), move |f| {
            f.tcp()
                .is_some_and(|(_, t)| t.src_port == from && t.dst_port == to)
        })
    }

    /// TCP from `from` to `to`, exactly these addresses and ports.
    pub fn tcp(from: SocketAddrV4, to: SocketAddrV4) -> Match {
        Match::new(format!("TCP {from} > {to}"), move |f| {
            f.tcp().is_some_and(|(ip, t)| {
                SocketAddrV4::new(ip.src, t.src_port) == from
                    && SocketAddrV4::new(ip.dst, t.dst_port) == to
            })
        })
    }

    /// TCP between `a` and `b`, either way, addresses and ports untranslated.
    pub fn tcp_between(a: SocketAddrV4, b: SocketAddrV4) -> Match {
        Match::new(format!("between {a} and {b}, untranslated"), move |f| {
            f.is_tcp_between(a, b)
        })
    }

    /// The innermost packet is between `a` and `b`, either way.
    pub fn inner_between(a: Ipv4Addr, b: Ipv4Addr) -> Match {
        Match::new(
            format!("inner source and destination {a} and {b}"),
            move |f| ipv4_between(f.innermost().ipv4(), a, b),
        )
    }

    /// A SYN without ACK (over IPv4 or IPv6).
    pub fn syn(self) -> Match {
        self.and("SYN", |f| any_tcp(f).is_some_and(|t| t.syn && !t.ack))
    }

    /// A SYN-ACK (over IPv4 or IPv6).
    pub fn syn_ack(self) -> Match {
        self.and("SYN-ACK", |f| any_tcp(f).is_some_and(|t| t.syn && t.ack))
    }

    /// A segment (over IPv4 or IPv6) whose payload starts with `prefix` (`GET / `).
    pub fn payload(self, prefix: &'static str) -> Match {
        self.and(format!("{:?}", prefix.trim_end()), move |f| {
            any_tcp(f).is_some_and(|t| t.payload.starts_with(prefix.as_bytes()))
        })
    }

    /// Sent from `src` to `dst` (Ethernet).
    pub fn eth(self, src: Mac, dst: Mac) -> Match {
        let what = format!("{} > {}", mac_str(&src), mac_str(&dst));
        self.and(what, move |f| {
            f.eth.is_some_and(|e| e.src == src && e.dst == dst)
        })
    }

    /// Sent from `src` (Ethernet).
    pub fn eth_from(self, src: Mac) -> Match {
        let what = format!("sent from {}", mac_str(&src));
        self.and(what, move |f| f.eth.is_some_and(|e| e.src == src))
    }

    /// The packets of a pod-to-pod connection on the underlay between nodes `nodes`, as the
    /// encapsulation `mode` wraps them: IPIP (IP protocol 4 between the node addresses), VXLAN
    /// (UDP 4789 between them, VNI 4096) or none (plain TCP, the pod addresses `pods` outside).
    pub fn encapsulated(
        mode: Encapsulation,
        nodes: (Ipv4Addr, Ipv4Addr),
        pods: (Ipv4Addr, Ipv4Addr),
    ) -> Match {
        let (a, b) = nodes;
        let fields = EncapsulationFields::of(mode, nodes, pods);
        let test: Test = match mode {
            Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => Arc::new(move |f: &Frame| {
                ipv4_between(f.ipv4(), a, b)
                    && f.ipv4().is_some_and(|ip| ip.protocol == 4)
                    && f.encapsulated().is_some_and(|i| i.kind == EncapKind::Ipip)
            }),
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => Arc::new(move |f: &Frame| {
                let vni = crate::calico::VXLAN_VNI;
                ipv4_between(f.ipv4(), a, b)
                    && f.ipv4().is_some_and(
                        |ip| matches!(ip.l4, L4::Udp { dst_port, .. } if dst_port == VXLAN_PORT),
                    )
                    && f.encapsulated()
                        .is_some_and(|i| i.kind == EncapKind::Vxlan { vni })
            }),
            Encapsulation::None => Arc::new(|f: &Frame| {
                f.ipv4()
                    .is_some_and(|ip| ip.inner.is_none() && ip.protocol == 6)
            }),
        };
        Match {
            what: format!("{fields} ({} mode)", mode.as_str()),
            value: Some(Value::Encapsulation(fields)),
            test,
        }
    }

    fn expected(&self) -> Value {
        self.value
            .clone()
            .unwrap_or_else(|| Value::Frames(vec![self.what.clone()]))
    }
}

impl EncapsulationFields {
    fn of(mode: Encapsulation, nodes: (Ipv4Addr, Ipv4Addr), pods: (Ipv4Addr, Ipv4Addr)) -> Self {
        let fields = |between: (Ipv4Addr, Ipv4Addr), protocol, udp_port, vni| EncapsulationFields {
            mode: mode.as_str().to_string(),
            between: [between.0, between.1],
            protocol,
            udp_port,
            vni,
        };
        match mode {
            Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => fields(nodes, 4, None, None),
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => {
                fields(nodes, 17, Some(VXLAN_PORT), Some(crate::calico::VXLAN_VNI))
            }
            Encapsulation::None => fields(pods, 6, None, None),
        }
    }
}

impl fmt::Display for EncapsulationFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.between;
        match (self.protocol, self.udp_port, self.vni) {
            (4, _, _) => write!(f, "IP protocol 4 between {a} and {b}"),
            (_, Some(port), Some(vni)) => write!(f, "UDP {port} between {a} and {b}, VNI {vni}"),
            _ => write!(f, "plain packets between the pod IPs {a} and {b}"),
        }
    }
}

/// The frames a capture kept: those of one connection, or of one protocol.
#[derive(Debug, Clone)]
pub struct Frames {
    /// `<place> <iface>`.
    pub label: String,
    pub frames: Vec<Frame>,
    /// Why the capture ended before it was stopped: its "nothing seen" proves nothing.
    pub ended_early: Option<String>,
    /// The pcap's file name among the evidence.
    pub evidence: String,
}

impl Frames {
    /// The frames of `capture` that `keep` matches.
    pub fn kept(capture: &CaptureResult, keep: &Match) -> Frames {
        Frames {
            label: capture.label.clone(),
            frames: capture
                .frames
                .iter()
                .filter(|f| keep.matches(f))
                .cloned()
                .collect(),
            ended_early: capture.ended_early.clone(),
            evidence: capture_name(&capture.label),
        }
    }

    /// ` (capture ended early: <why>)`, or nothing.
    fn doubt(&self) -> String {
        self.ended_early
            .as_ref()
            .map(|d| format!(" (capture ended early: {d})"))
            .unwrap_or_default()
    }
}

fn listed<'a>(frames: impl ExactSizeIterator<Item = &'a Frame>) -> Value {
    Value::Frames(summaries(frames))
}

/// Each of `wanted` is among `frames`.
pub fn seen(frames: &Frames, wanted: &[Match]) -> Check {
    let what = format!("on {}", frames.label);
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|m| !frames.frames.iter().any(|f| m.matches(f)))
        .map(|m| m.what.as_str())
        .collect();
    let names: Vec<String> = wanted.iter().map(|m| m.what.clone()).collect();
    let expected = Shown::text(
        format!("{what}: {}", names.join("; ")),
        Value::Frames(names),
    );
    let got = listed(frames.frames.iter());
    let not_seen = match missing.as_slice() {
        [] => String::new(),
        m => format!("; not seen: {}", m.join("; ")),
    };
    let observed = Shown::text(format!("{what}: {got}{}{not_seen}", frames.doubt()), got);
    Check::new(what, missing.is_empty(), expected, observed).judging(&frames.evidence)
}

/// `frames` hold the connection, and every frame matches `each`.
pub fn every(frames: &Frames, each: &Match) -> Check {
    let what = format!("on {}", frames.label);
    let (n, doubt) = (frames.frames.len(), frames.doubt());
    let misfits: Vec<&Frame> = frames.frames.iter().filter(|f| !each.matches(f)).collect();
    let expected = Shown::text(
        format!("{what}: every packet of the connection: {each}"),
        each.expected(),
    );
    let got = listed(misfits.iter().copied());
    let text = if n == 0 {
        format!(
            "{what}: none of the connection{doubt}: the capture is in doubt, so nothing can be judged"
        )
    } else if misfits.is_empty() {
        format!("{what}: all {n} packets of the connection")
    } else {
        format!("{what}: {} of {n} are not: {got}{doubt}", misfits.len())
    };
    let passed = n > 0 && misfits.is_empty();
    Check::new(what, passed, expected, Shown::text(text, got)).judging(&frames.evidence)
}

/// None of the connection on any of `elsewhere`, while the paired capture `paired` saw it.
pub fn none_while_seen<'a>(
    elsewhere: impl IntoIterator<Item = &'a Frames>,
    paired: &Frames,
) -> Check {
    let elsewhere: Vec<&Frames> = elsewhere.into_iter().collect();
    if paired.frames.is_empty() {
        let what = format!("the paired capture on {}", paired.label);
        let expected = Shown::text(format!("{what}: sees the connection"), Value::Count(1));
        let text = format!(
            "{what}: saw none of it{}: the capture itself is in doubt, so zero packets elsewhere proves nothing",
            paired.doubt()
        );
        let observed = Shown::text(text, Value::Count(0));
        return Check::new(what, false, expected, observed).judging(&paired.evidence);
    }
    let labels: Vec<&str> = elsewhere.iter().map(|f| f.label.as_str()).collect();
    let what = format!("the connection on {}", labels.join(", "));
    let expected = Shown::text(
        format!(
            "zero packets of the connection on {} (while {} saw {})",
            labels.join(", "),
            paired.label,
            paired.frames.len()
        ),
        Value::Count(0),
    );
    let hit = elsewhere.iter().find(|f| !f.frames.is_empty());
    let observed = match hit {
        None => Shown::text(format!("{what}: none"), Value::Count(0)),
        Some(hit) => {
            let got = listed(hit.frames.iter());
            let text = format!(
                "{} on {}: {got}{}",
                hit.frames.len(),
                hit.label,
                hit.doubt()
            );
            Shown::text(text, got)
        }
    };
    let mut check = Check::new(what, hit.is_none(), expected, observed).judging(&paired.evidence);
    for f in elsewhere {
        check = check.judging(&f.evidence);
    }
    check
}

/// Frames, one summary each (at most [`SHOWN`], then how many more).
pub fn summaries<'a>(frames: impl ExactSizeIterator<Item = &'a Frame>) -> Vec<String> {
    let n = frames.len();
    let mut lines: Vec<String> = frames.take(SHOWN).map(summary).collect();
    if n > SHOWN {
        lines.push(format!("... {} more", n - SHOWN));
    }
    lines
}

/// One frame, summarised: `<src mac> > <dst mac> TCP a:p > b:q ttl 63 [carrying [...]]`;
/// over IPv6 `TCP [a]:p > [b]:q hlim 63`, `NDP who-has T fe80::1 > ff02::1:ff00:1 hlim 255`.
pub fn summary(f: &Frame) -> String {
    let eth = f
        .eth
        .map(|e| format!("{} > {} ", mac_str(&e.src), mac_str(&e.dst)))
        .unwrap_or_default();
    let carrying = |inner: &Option<Box<crate::observe::packet::Encapsulated>>| {
        inner
            .as_ref()
            .map(|e| format!(" carrying [{}]", summary(&e.frame)))
            .unwrap_or_default()
    };
    let l3 = match &f.l3 {
        L3::Arp(a) => match a.op {
            ArpOp::Request => format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip),
            ArpOp::Reply => format!("ARP {} is-at {}", a.sender_ip, mac_str(&a.sender_mac)),
            ArpOp::Other(o) => format!("ARP op {o}"),
        },
        L3::Ipv4(ip) => {
            let other = format!("IP proto {}", ip.protocol);
            let l4 = l4_summary(&ip.l4, ip.src.into(), ip.dst.into(), &other);
            format!("{l4} ttl {}{}", ip.ttl, carrying(&ip.inner))
        }
        L3::Ipv6(ip) => {
            let other = format!("IPv6 next header {}", ip.next_header);
            let l4 = l4_summary(&ip.l4, ip.src.into(), ip.dst.into(), &other);
            format!("{l4} hlim {}{}", ip.hop_limit, carrying(&ip.inner))
        }
        L3::Other(t) => format!("ethertype {t:#06x}"),
    };
    format!("{eth}{l3}")
}

/// `TCP a:p > b:q` (`[a]:p` for IPv6), `ICMP type 8 a > b`, `NDP who-has T a > b`, or
/// `<other> a > b`.
fn l4_summary(l4: &L4, src: IpAddr, dst: IpAddr, other: &str) -> String {
    let ends = |sp, dp| (SocketAddr::new(src, sp), SocketAddr::new(dst, dp));
    match l4 {
        L4::Tcp(t) => {
            let (a, b) = ends(t.src_port, t.dst_port);
            format!("TCP {a} > {b}")
        }
        L4::Udp {
            src_port, dst_port, ..
        } => {
            let (a, b) = ends(*src_port, *dst_port);
            format!("UDP {a} > {b}")
        }
        L4::Icmp { icmp_type, .. } => format!("ICMP type {icmp_type} {src} > {dst}"),
        L4::Icmpv6(icmp) => match &icmp.ndp {
            Some(Ndp::Solicitation { target, .. }) => {
                format!("NDP who-has {target} {src} > {dst}")
            }
            Some(Ndp::Advertisement {
                target,
                router,
                solicited,
                override_,
                target_mac,
            }) => {
                let flags: String = [(*router, 'R'), (*solicited, 'S'), (*override_, 'O')]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, c)| *c)
                    .collect();
                let at = target_mac
                    .map(|m| format!(" is-at {}", mac_str(&m)))
                    .unwrap_or_default();
                format!("NDP advert {target}{at} [{flags}] {src} > {dst}")
            }
            None => format!("ICMPv6 type {} {src} > {dst}", icmp.icmp_type),
        },
        L4::Other => format!("{other} {src} > {dst}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::packet::{Arp, Encapsulated, EthHeader, Icmpv6, Ipv4, Ipv6, Tcp};
    use std::time::Duration;

    const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 12), 20001);
    const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 10), 8080);

    fn tcp(from: SocketAddrV4, to: SocketAddrV4) -> Frame {
        Frame {
            ts: Duration::ZERO,
            eth: Some(EthHeader {
                src: [2; 6],
                dst: [0xee; 6],
            }),
            l3: L3::Ipv4(Ipv4 {
                src: *from.ip(),
                dst: *to.ip(),
                ttl: 64,
                protocol: 6,
                total_len: 40,
                frag: Default::default(),
                l4: L4::Tcp(Tcp {
                    src_port: from.port(),
                    dst_port: to.port(),
                    syn: true,
                    ack: false,
                    fin: false,
                    rst: false,
                    psh: false,
                    mss: Some(1460),
                    payload: Vec::new(),
                }),
                inner: None,
            }),
        }
    }

    fn frames(label: &str, frames: Vec<Frame>) -> Frames {
        Frames {
            label: label.into(),
            frames,
            ended_early: None,
            evidence: format!("{label}.pcap"),
        }
    }

    #[test]
    fn a_zero_counts_only_when_the_paired_capture_saw_the_connection() {
        let seen = frames("cali", vec![tcp(CLIENT, SERVER)]);
        let (nothing, blind) = (frames("ens192", vec![]), frames("cali", vec![]));
        assert!(none_while_seen([&nothing], &seen).passed);
        let doubt = none_while_seen([&nothing], &blind);
        assert!(!doubt.passed);
        assert!(
            doubt
                .observed
                .text
                .contains("the capture itself is in doubt")
        );
        let leak = none_while_seen([&nothing, &seen], &seen);
        assert!(!leak.passed);
        assert!(leak.observed.text.starts_with("1 on cali: "), "{leak:?}");
        assert_eq!(leak.evidence, ["cali.pcap", "ens192.pcap", "cali.pcap"]);
    }

    #[test]
    fn every_needs_the_connection_and_names_the_misfits() {
        let untranslated = Match::tcp_between(CLIENT, SERVER);
        assert!(every(&frames("cali", vec![tcp(CLIENT, SERVER)]), &untranslated).passed);
        assert!(!every(&frames("cali", vec![]), &untranslated).passed);
        let snat = SocketAddrV4::new(Ipv4Addr::new(10, 12, 22, 2), 20001);
        let c = every(
            &frames("cali", vec![tcp(CLIENT, SERVER), tcp(snat, SERVER)]),
            &untranslated,
        );
        assert!(!c.passed);
        assert!(
            c.observed.text.starts_with("on cali: 1 of 2 are not: "),
            "{c:?}"
        );
        assert!(
            c.observed
                .text
                .contains("10.12.22.2:20001 > 192.168.1.10:8080")
        );
    }

    #[test]
    fn matches_describe_themselves_and_say_what_was_not_seen() {
        let gw = Ipv4Addr::new(169, 254, 1, 1);
        let request = Frame {
            ts: Duration::ZERO,
            eth: None,
            l3: L3::Arp(Arp {
                op: ArpOp::Request,
                sender_mac: [2; 6],
                sender_ip: *CLIENT.ip(),
                target_mac: [0; 6],
                target_ip: gw,
            }),
        };
        let asked = [
            Match::arp_request(gw, Some(*CLIENT.ip())),
            Match::arp_reply(gw, [0xee; 6]),
        ];
        let c = seen(&frames("cali", vec![request]), &asked);
        assert!(!c.passed);
        assert_eq!(
            c.expected.text,
            "on cali: who-has 169.254.1.1 tell 192.168.1.12; \
             169.254.1.1 is-at ee:ee:ee:ee:ee:ee sent from ee:ee:ee:ee:ee:ee"
        );
        assert!(c.observed.text.ends_with(
            "; not seen: 169.254.1.1 is-at ee:ee:ee:ee:ee:ee sent from ee:ee:ee:ee:ee:ee"
        ));
        let syn = Match::tcp(CLIENT, SERVER).syn();
        assert_eq!(
            syn.to_string(),
            "TCP 192.168.1.12:20001 > 192.168.1.10:8080, SYN"
        );
        assert!(syn.matches(&tcp(CLIENT, SERVER)));
        assert!(!syn.matches(&tcp(SERVER, CLIENT)));
    }

    const HOST_END: Mac = [0xee; 6];
    const POD_MAC: Mac = [2; 6];
    const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);
    const POD6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const POD6_A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 0x0a);
    const POD6_B: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 2, 0, 0, 0, 0x0a);
    const NODE6_1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x12, 0x22, 0, 0, 0, 0, 2);
    const NODE6_2: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x12, 0x22, 0, 0, 0, 0, 3);

    fn v6(eth: Option<(Mac, Mac)>, src: Ipv6Addr, dst: Ipv6Addr, next: u8, l4: L4) -> Frame {
        Frame {
            ts: Duration::ZERO,
            eth: eth.map(|(src, dst)| EthHeader { src, dst }),
            l3: L3::Ipv6(Ipv6 {
                src,
                dst,
                hop_limit: 255,
                next_header: next,
                payload_len: 32,
                l4,
                inner: None,
            }),
        }
    }

    fn icmp6(icmp_type: u8, ndp: Option<Ndp>) -> L4 {
        L4::Icmpv6(Icmpv6 {
            icmp_type,
            code: 0,
            id: 0,
            seq: 0,
            ndp,
        })
    }

    fn ns(target: Ipv6Addr) -> Frame {
        let ndp = Ndp::Solicitation {
            target,
            source_mac: Some(POD_MAC),
        };
        let eth = Some((POD_MAC, [0x33, 0x33, 0xff, 0xee, 0xee, 0xee]));
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xffee, 0xeeee);
        v6(eth, POD6_LL, dst, 58, icmp6(135, Some(ndp)))
    }

    fn na(eth_src: Option<Mac>, target: Ipv6Addr, target_mac: Option<Mac>) -> Frame {
        let ndp = Ndp::Advertisement {
            target,
            router: false,
            solicited: true,
            override_: true,
            target_mac,
        };
        let eth = eth_src.map(|src| (src, POD_MAC));
        v6(eth, target, POD6_LL, 58, icmp6(136, Some(ndp)))
    }

    fn tcp6(from: SocketAddrV6, to: SocketAddrV6) -> Frame {
        let l4 = L4::Tcp(Tcp {
            src_port: from.port(),
            dst_port: to.port(),
            syn: true,
            ack: false,
            fin: false,
            rst: false,
            psh: false,
            mss: Some(1440),
            payload: b"GET / HTTP/1.1\r\n".to_vec(),
        });
        v6(Some((POD_MAC, HOST_END)), *from.ip(), *to.ip(), 6, l4)
    }

    /// `inner` in VXLAN (VNI `vni`) over IPv6 between the nodes.
    fn vxlan6(vni: u32, inner: Frame) -> Frame {
        let mut outer = v6(
            Some(([1; 6], [2; 6])),
            NODE6_1,
            NODE6_2,
            17,
            L4::Udp {
                src_port: 51000,
                dst_port: VXLAN_PORT,
                payload_len: 100,
            },
        );
        if let L3::Ipv6(ip) = &mut outer.l3 {
            ip.inner = Some(Box::new(Encapsulated {
                kind: EncapKind::Vxlan { vni },
                frame: inner,
            }));
        }
        outer
    }

    #[test]
    fn ndp_matches_name_the_target_and_the_mac() {
        let (solicit, advert) = (ns(GW6), na(Some(HOST_END), GW6, Some(HOST_END)));
        let any = Match::ndp();
        assert!(any.matches(&solicit) && any.matches(&advert));
        assert!(!any.matches(&tcp(CLIENT, SERVER)));
        assert!(!any.matches(&v6(None, POD6_A, POD6_B, 58, icmp6(128, None))));
        let who_has = Match::ndp_solicit(GW6);
        assert_eq!(
            who_has.to_string(),
            "neighbor solicitation who-has fe80::ecee:eeff:feee:eeee"
        );
        assert!(who_has.matches(&solicit));
        assert!(!who_has.matches(&ns(POD6_LL)));
        assert!(!who_has.matches(&advert));
        let is_at = Match::ndp_advert(GW6, HOST_END);
        assert_eq!(
            is_at.to_string(),
            "neighbor advertisement fe80::ecee:eeff:feee:eeee is-at ee:ee:ee:ee:ee:ee \
             sent from ee:ee:ee:ee:ee:ee"
        );
        assert!(is_at.matches(&advert));
        // No target link-layer option: the Ethernet source alone says it.
        assert!(is_at.matches(&na(Some(HOST_END), GW6, None)));
        // A cooked capture: the option alone says it.
        assert!(is_at.matches(&na(None, GW6, Some(HOST_END))));
        assert!(!is_at.matches(&na(None, GW6, None)));
        assert!(!is_at.matches(&na(Some(POD_MAC), GW6, Some(HOST_END))));
        assert!(!is_at.matches(&na(Some(HOST_END), GW6, Some(POD_MAC))));
        assert!(!is_at.matches(&na(Some(HOST_END), POD6_LL, Some(HOST_END))));
        assert!(!is_at.matches(&solicit));
        let c = seen(&frames("cali", vec![solicit]), &[who_has, is_at]);
        assert!(!c.passed);
        assert!(c.observed.text.contains(
            "NDP who-has fe80::ecee:eeff:feee:eeee fe80::1 > ff02::1:ffee:eeee hlim 255"
        ));
        assert!(c.observed.text.ends_with(
            "; not seen: neighbor advertisement fe80::ecee:eeff:feee:eeee is-at \
             ee:ee:ee:ee:ee:ee sent from ee:ee:ee:ee:ee:ee"
        ));
    }

    #[test]
    fn ipv6_summaries() {
        assert_eq!(
            summary(&na(Some(HOST_END), GW6, Some(HOST_END))),
            "ee:ee:ee:ee:ee:ee > 02:02:02:02:02:02 NDP advert fe80::ecee:eeff:feee:eeee \
             is-at ee:ee:ee:ee:ee:ee [SO] fe80::ecee:eeff:feee:eeee > fe80::1 hlim 255"
        );
        let a = SocketAddrV6::new(POD6_A, 40000, 0, 0);
        let b = SocketAddrV6::new(POD6_B, 8080, 0, 0);
        let wrapped = vxlan6(4096, tcp6(a, b));
        assert_eq!(
            summary(&wrapped),
            "01:01:01:01:01:01 > 02:02:02:02:02:02 UDP [fd00:12:22::2]:51000 > \
             [fd00:12:22::3]:4789 hlim 255 carrying [02:02:02:02:02:02 > ee:ee:ee:ee:ee:ee \
             TCP [fd00:10:244:1::a]:40000 > [fd00:10:244:2::a]:8080 hlim 255]"
        );
        assert!(
            summary(&v6(None, POD6_A, POD6_B, 58, icmp6(129, None)))
                .starts_with("ICMPv6 type 129 fd00:10:244:1::a > fd00:10:244:2::a")
        );
        // IPv4 summaries are unchanged.
        assert_eq!(
            summary(&tcp(CLIENT, SERVER)),
            "02:02:02:02:02:02 > ee:ee:ee:ee:ee:ee TCP 192.168.1.12:20001 > 192.168.1.10:8080 \
             ttl 64"
        );
    }

    #[test]
    fn ipv6_traffic_matches() {
        let echo = |t, src, dst| {
            let l4 = L4::Icmpv6(Icmpv6 {
                icmp_type: t,
                code: 0,
                id: 5,
                seq: 1,
                ndp: None,
            });
            v6(None, src, dst, 58, l4)
        };
        let ping = Match::icmpv6_echo_between(POD6_A, POD6_B);
        assert_eq!(
            ping.to_string(),
            "ICMPv6 echo between fd00:10:244:1::a and fd00:10:244:2::a"
        );
        assert!(ping.matches(&echo(128, POD6_A, POD6_B)));
        assert!(ping.matches(&echo(129, POD6_B, POD6_A)));
        assert!(!ping.matches(&echo(1, POD6_B, POD6_A)));
        assert!(!ping.matches(&echo(128, POD6_A, NODE6_1)));
        assert!(!ping.matches(&vxlan6(4096, echo(128, POD6_A, POD6_B))));
        let a = SocketAddrV6::new(POD6_A, 40000, 0, 0);
        let b = SocketAddrV6::new(POD6_B, 8080, 0, 0);
        let untranslated = Match::tcp6_between(a, b);
        assert_eq!(
            untranslated.to_string(),
            "between [fd00:10:244:1::a]:40000 and [fd00:10:244:2::a]:8080, untranslated"
        );
        assert!(untranslated.matches(&tcp6(a, b)) && untranslated.matches(&tcp6(b, a)));
        let snat = SocketAddrV6::new(NODE6_1, 40000, 0, 0);
        assert!(!untranslated.matches(&tcp6(snat, b)));
        assert!(!untranslated.matches(&vxlan6(4096, tcp6(a, b))));
        assert!(untranslated.clone().syn().matches(&tcp6(a, b)));
        assert!(!untranslated.clone().syn_ack().matches(&tcp6(a, b)));
        assert!(untranslated.clone().payload("GET / ").matches(&tcp6(a, b)));
        let inner = Match::inner6_between(POD6_B, POD6_A);
        assert!(inner.matches(&vxlan6(4096, tcp6(a, b))));
        assert!(inner.matches(&tcp6(a, b)));
        assert!(!inner.matches(&tcp6(snat, b)));
        assert!(!inner.matches(&tcp(CLIENT, SERVER)));
        assert!(every(&frames("cali", vec![tcp6(a, b), tcp6(b, a)]), &untranslated).passed);
    }

    #[test]
    fn ipv6_encapsulation_modes() {
        let a = SocketAddrV6::new(POD6_A, 40000, 0, 0);
        let b = SocketAddrV6::new(POD6_B, 8080, 0, 0);
        let nodes = (NODE6_2, NODE6_1);
        let (wrapped, plain) = (vxlan6(4096, tcp6(a, b)), tcp6(a, b));
        let vxlan = Match::encapsulated6(Encapsulation::Vxlan, nodes);
        assert_eq!(
            vxlan.to_string(),
            "UDP 4789 between fd00:12:22::3 and fd00:12:22::2, VNI 4096 (VXLAN mode)"
        );
        assert!(vxlan.matches(&wrapped));
        assert!(Match::encapsulated6(Encapsulation::VxlanCrossSubnet, nodes).matches(&wrapped));
        assert!(
            !vxlan.matches(&vxlan6(6096, tcp6(a, b))),
            "a VNI Felix does not use"
        );
        assert!(!vxlan.matches(&plain));
        assert!(!Match::encapsulated6(Encapsulation::Vxlan, (NODE6_1, POD6_A)).matches(&wrapped));
        let none = Match::encapsulated6(Encapsulation::None, nodes);
        assert!(none.matches(&plain) && !none.matches(&wrapped));
        assert!(!none.matches(&tcp(CLIENT, SERVER)));
        for mode in [Encapsulation::Ipip, Encapsulation::IpipCrossSubnet] {
            let ipip = Match::encapsulated6(mode, nodes);
            assert_eq!(
                ipip.to_string(),
                "IPIP (Calico does not encapsulate IPv6 in IPIP)"
            );
            assert!(!ipip.matches(&wrapped) && !ipip.matches(&plain));
        }
        let c = every(&frames("ens192", vec![wrapped.clone()]), &vxlan);
        assert!(c.passed, "{c:?}");
        assert!(!every(&frames("ens192", vec![wrapped, plain]), &vxlan).passed);
    }
}
