//! Checks of the MTU claims (MTU-1..4): interfaces that share one MTU, what became of DF
//! echoes, the size and fragmentation of an echo's frames on an underlay, a handshake's MSS.

use super::frames::{Frames, Match, summaries};
use super::{Check, EchoFields, Shown, UnderlayFields, Value};
use crate::df_echo::{DfEcho, DfOutcome};
use crate::observe::packet::{Frame, L4};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The frames of an echo between pods `a` and `b` on an underlay: the echo itself, plain or
/// encapsulated, and every IPv4 fragment between the pods or between the nodes `nodes` (a
/// fragment after the first carries no header that says whose it is).
pub fn echo_frames(a: Ipv4Addr, b: Ipv4Addr, nodes: (Ipv4Addr, Ipv4Addr)) -> Match {
    let between = move |ip: &crate::observe::packet::Ipv4, x: Ipv4Addr, y: Ipv4Addr| {
        (ip.src == x && ip.dst == y) || (ip.src == y && ip.dst == x)
    };
    Match::new(
        format!("ICMP between {a} and {b}, or an IPv4 fragment between them or the nodes"),
        move |f| {
            let echo = f
                .innermost()
                .ipv4()
                .is_some_and(|ip| matches!(ip.l4, L4::Icmp { .. }) && between(ip, a, b));
            let fragment = f.ipv4().is_some_and(|ip| {
                ip.frag.is_fragment() && (between(ip, a, b) || between(ip, nodes.0, nodes.1))
            });
            echo || fragment
        },
    )
}

/// The echo request from `from` to `to` whose (inner) IPv4 packet is `size` bytes.
pub fn full_size_request(from: Ipv4Addr, to: Ipv4Addr, size: u32) -> Match {
    Match::new(
        format!("the {size}-byte echo request {from} > {to}"),
        move |f| {
            f.innermost().ipv4().is_some_and(|ip| {
                ip.src == from
                    && ip.dst == to
                    && u32::from(ip.total_len) == size
                    && matches!(ip.l4, L4::Icmp { icmp_type: 8, .. })
            })
        },
    )
}

/// Every interface of `got` (name → MTU, `None` when missing) has MTU `want`: expected lists
/// them all at `want`, observed names each that differs (and its MTU) and counts the rest.
pub fn same_mtu(where_: &str, want: u32, got: &BTreeMap<String, Option<u32>>) -> Check {
    let what = format!("MTUs of the Calico interfaces on {where_}");
    let expected: BTreeMap<String, Option<u32>> =
        got.keys().map(|k| (k.clone(), Some(want))).collect();
    let differ: BTreeMap<String, Option<u32>> = got
        .iter()
        .filter(|(_, v)| **v != Some(want))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    let expected_text = format!("{what}: {want} on every one of {}", names.join(", "));
    let observed_text = if got.is_empty() {
        format!("{what}: none found")
    } else if differ.is_empty() {
        format!("{what}: all {} at {want}", got.len())
    } else {
        let rest = match got.len() - differ.len() {
            0 => format!("none at {want}"),
            same => format!("the other {same} at {want}"),
        };
        format!("{what}: {}; {rest}", Value::Mtus(differ.clone()))
    };
    Check::new(
        what,
        !got.is_empty() && differ.is_empty(),
        Shown::text(expected_text, Value::Mtus(expected)),
        Shown::text(observed_text, Value::Mtus(got.clone())),
    )
}

/// A DF echo ended in one of `want` (outcome names, [`DfOutcome::name`]); `said` words them.
pub fn echo(what: &str, echo: &DfEcho, want: &[&str], said: &str) -> Check {
    let what = format!("{what} ({} bytes of payload, DF)", echo.payload);
    let (mtu, from) = match echo.outcome {
        DfOutcome::RefusedAtSource { mtu } => (mtu, None),
        DfOutcome::FragmentationNeeded { from, mtu } => (mtu, Some(from)),
        DfOutcome::IcmpError { from, .. } => (None, Some(from)),
        DfOutcome::Answered { .. } | DfOutcome::Lost => (None, None),
    };
    let fields = |outcomes: Vec<String>, mtu, from| EchoFields {
        payload: echo.payload,
        outcomes,
        mtu,
        from,
    };
    let expected = fields(want.iter().map(|s| s.to_string()).collect(), None, None);
    let observed = fields(vec![echo.outcome.name().to_string()], mtu, from);
    Check::new(
        what.clone(),
        want.contains(&echo.outcome.name()),
        Shown::text(format!("{what}: {said}"), Value::Echo(expected)),
        Shown::text(format!("{what}: {}", echo.outcome), Value::Echo(observed)),
    )
}

/// The echo's frames on an underlay fit it: the full-size request `full_size` among them (else
/// the capture is in doubt), every outer IPv4 total length at most `mtu`, and no fragment.
pub fn fit_underlay(frames: &Frames, mtu: u32, why: &str, full_size: &Match) -> Check {
    let what = format!("the echo's frames on {}", frames.label);
    let ip = |f: &Frame| f.ipv4().map(|ip| (u32::from(ip.total_len), ip.frag));
    let largest = frames
        .frames
        .iter()
        .filter_map(|f| ip(f).map(|i| i.0))
        .max();
    let too_big: Vec<&Frame> = (frames.frames.iter())
        .filter(|f| ip(f).is_some_and(|i| i.0 > mtu))
        .collect();
    let fragments: Vec<&Frame> = (frames.frames.iter())
        .filter(|f| ip(f).is_some_and(|i| i.1.is_fragment()))
        .collect();
    let seen = frames.frames.iter().any(|f| full_size.matches(f));
    let expected = Shown::text(
        format!(
            "{what}: {full_size} seen; every outer IPv4 packet at most {mtu} bytes ({why}); no IPv4 fragment"
        ),
        Value::UnderlayFrames(UnderlayFields {
            largest: Some(mtu),
            fragments: 0,
            full_size_seen: true,
        }),
    );
    let sized = |fs: &[&Frame]| {
        let lens: Vec<String> = fs
            .iter()
            .filter_map(|f| ip(f))
            .map(|(len, frag)| {
                let mf = if frag.more_fragments { " MF" } else { "" };
                format!("{len} bytes{mf} offset {}", u32::from(frag.offset) * 8)
            })
            .collect();
        lens.join(", ")
    };
    let mut problems = Vec::new();
    if !too_big.is_empty() {
        problems.push(format!(
            "{} larger than {mtu}: {}",
            too_big.len(),
            summaries(too_big.iter().copied()).join("; ")
        ));
    }
    if !fragments.is_empty() {
        problems.push(format!(
            "{} IPv4 fragments ({})",
            fragments.len(),
            sized(&fragments)
        ));
    }
    if !seen {
        let doubt = frames
            .ended_early
            .as_ref()
            .map(|d| format!(", capture ended early: {d}"))
            .unwrap_or_default();
        problems.push(format!(
            "the full-size request not seen{doubt}: the capture is in doubt, or the request never left the node whole"
        ));
    }
    let largest_text = largest.map_or("no frames".into(), |l| format!("{l} bytes"));
    let text = if problems.is_empty() {
        format!(
            "{what}: the capture saw {} of the echo, largest {largest_text}, none fragmented",
            frames.frames.len()
        )
    } else {
        format!("{what}: {}; largest: {largest_text}", problems.join("; "))
    };
    let observed = Value::UnderlayFrames(UnderlayFields {
        largest,
        fragments: fragments.len(),
        full_size_seen: seen,
    });
    Check::new(
        what,
        problems.is_empty(),
        expected,
        Shown::text(text, observed),
    )
    .judging(&frames.evidence)
}

/// The first frame of `frames` that `segment` matches (a SYN or SYN-ACK) carries MSS `want`.
pub fn mss(frames: &Frames, segment: &Match, want: u16, why: &str) -> Check {
    let what = format!("MSS of the {segment} on {}", frames.label);
    let expected = Shown::text(format!("{what}: {want} ({why})"), Value::Mss(Some(want)));
    let found = frames.frames.iter().find(|f| segment.matches(f));
    let check = match found.map(|f| f.tcp().and_then(|(_, t)| t.mss)) {
        Some(got) => Check::new(
            what.clone(),
            got == Some(want),
            expected,
            Shown::of(&what, Value::Mss(got)),
        ),
        None => {
            let seen = Value::Frames(summaries(frames.frames.iter()));
            let text = format!(
                "{what}: the segment was not seen (the capture saw {seen}): the capture is in doubt"
            );
            Check::new(what, false, expected, Shown::text(text, seen))
        }
    };
    check.judging(&frames.evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mtu_names_each_interface_that_differs() {
        let mut got: BTreeMap<String, Option<u32>> = [
            ("calied9d42cb137".to_string(), Some(1450)),
            ("eth0 of test-tools".to_string(), Some(1450)),
        ]
        .into();
        assert!(same_mtu("k8s-worker-1", 1450, &got).passed);
        got.insert("vxlan.calico".into(), Some(1500));
        got.insert("tunl0".into(), None);
        let c = same_mtu("k8s-worker-1", 1450, &got);
        assert!(!c.passed);
        assert_eq!(
            c.observed.text,
            "MTUs of the Calico interfaces on k8s-worker-1: tunl0 missing, vxlan.calico 1500; \
             the other 2 at 1450"
        );
        assert!(c.expected.text.ends_with(
            "1450 on every one of calied9d42cb137, eth0 of test-tools, tunl0, vxlan.calico"
        ));
        assert!(!same_mtu("k8s-worker-1", 1450, &BTreeMap::new()).passed);
    }

    use crate::observe::packet::{EthHeader, Fragmentation, Ipv4, L3, Tcp};
    use std::time::Duration;

    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 12);
    const B: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 12);

    fn ip_frame(total_len: u16, frag: Fragmentation, l4: L4) -> Frame {
        Frame {
            ts: Duration::ZERO,
            eth: Some(EthHeader {
                src: [2; 6],
                dst: [0xee; 6],
            }),
            l3: L3::Ipv4(Ipv4 {
                src: A,
                dst: B,
                ttl: 64,
                protocol: 1,
                total_len,
                frag,
                l4,
                inner: None,
            }),
        }
    }

    fn echo_request(total_len: u16) -> Frame {
        let l4 = L4::Icmp {
            icmp_type: 8,
            code: 0,
            id: 1,
            seq: 1,
        };
        ip_frame(total_len, Fragmentation::default(), l4)
    }

    fn on(frames: Vec<Frame>) -> Frames {
        Frames {
            label: "host k8s-worker-1 ens192".into(),
            frames,
            ended_early: None,
            evidence: "ens192.pcap".into(),
        }
    }

    #[test]
    fn frames_fit_only_when_the_full_size_echo_is_seen_whole_and_small_enough() {
        let full = full_size_request(A, B, 1500);
        let fits = fit_underlay(&on(vec![echo_request(1500)]), 1500, "ens192", &full);
        assert!(fits.passed, "{fits:?}");
        let too_big = fit_underlay(&on(vec![echo_request(1500)]), 1450, "ens192", &full);
        assert!(!too_big.passed);
        assert!(
            too_big.observed.text.contains("1 larger than 1450"),
            "{too_big:?}"
        );
        let fragment = Fragmentation {
            dont_fragment: false,
            more_fragments: false,
            offset: 178,
        };
        let tail = ip_frame(76, fragment, L4::Other);
        let split = fit_underlay(&on(vec![echo_request(1500), tail]), 1500, "ens192", &full);
        assert!(!split.passed);
        assert!(
            split
                .observed
                .text
                .contains("1 IPv4 fragments (76 bytes offset 1424)")
        );
        let dead = fit_underlay(&on(vec![]), 1500, "ens192", &full);
        assert!(!dead.passed);
        assert!(
            dead.observed.text.contains("the capture is in doubt"),
            "{dead:?}"
        );
        assert_eq!(
            serde_json::to_value(&dead.observed.value).unwrap(),
            serde_json::json!({"underlay_frames": {"largest": null, "fragments": 0,
                                                   "full_size_seen": false}})
        );
    }

    #[test]
    fn the_mss_is_read_from_the_first_matching_segment() {
        let syn = |mss| {
            let tcp = Tcp {
                src_port: 20001,
                dst_port: 8080,
                syn: true,
                ack: false,
                fin: false,
                rst: false,
                psh: false,
                mss,
                payload: Vec::new(),
            };
            ip_frame(60, Fragmentation::default(), L4::Tcp(tcp))
        };
        let segment = Match::tcp_ports(20001, 8080).syn();
        assert!(mss(&on(vec![syn(Some(1460))]), &segment, 1460, "eth0 1500").passed);
        let clamped = mss(&on(vec![syn(Some(1200))]), &segment, 1460, "eth0 1500");
        assert!(!clamped.passed);
        assert!(clamped.observed.text.ends_with(": 1200"), "{clamped:?}");
        assert!(!mss(&on(vec![syn(None)]), &segment, 1460, "eth0 1500").passed);
        let unseen = mss(&on(vec![]), &segment, 1460, "eth0 1500");
        assert!(!unseen.passed);
        assert!(unseen.observed.text.contains("not seen"));
    }

    #[test]
    fn an_echo_check_says_what_became_of_it() {
        let lost = DfEcho {
            payload: 1422,
            outcome: DfOutcome::Lost,
        };
        let c = echo("full-size echo", &lost, &["answered"], "answered");
        assert!(!c.passed);
        assert!(c.observed.text.contains("1422 bytes of payload, DF): lost"));
        let frag = DfEcho {
            payload: 1423,
            outcome: DfOutcome::FragmentationNeeded {
                from: Ipv4Addr::new(10, 12, 22, 2),
                mtu: Some(1400),
            },
        };
        let ok = &["refused_at_source", "fragmentation_needed"];
        let c = echo("one byte more", &frag, ok, "refused");
        assert!(c.passed);
        assert_eq!(
            serde_json::to_value(&c.observed.value).unwrap(),
            serde_json::json!({"echo": {"payload": 1423, "outcomes": ["fragmentation_needed"],
                                         "mtu": 1400, "from": "10.12.22.2"}})
        );
    }
}
