//! claims.md "MTU along the path": one MTU on every Calico interface, full-size DF packets
//! that cross nodes unfragmented, encapsulated frames that fit the underlay, an MSS that
//! follows the pod MTU. Expectations come from facts: the Calico MTU by POD-I3's rule (the
//! configured one, or the underlay's MTU read from the node less the pool's encapsulation),
//! the pod MTU as the pod's `eth0` has it, the underlay MTU as the node's interface has it.

use super::host_routes::pod_nodes;
use super::pod_identity::{calico_mtu, underlay_of};
use super::pod_to_pod::{Handshake, PodExchange};
use super::support::*;
use crate::claim;
use calico_conformance::calico::{HTTP_PORT, VXLAN_PORT};
use calico_conformance::df_echo::{DfEcho, DfOutcome, ECHO_HEADERS};
use calico_conformance::expect::frames::{Frames, Match};
use calico_conformance::expect::{Check, link, mtu};
use calico_conformance::observe::packet::Frame;
use calico_conformance::ports::source_port;
use calico_conformance::target::{CLIENT_POD, REMOTE_POD, SERVER_POD};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "MTU-1",
            "Every Calico interface on a node has one MTU",
            Per::Target,
            mtu_1_one_mtu_per_node
        ),
        claim!(
            "MTU-2",
            "A full-size packet crosses nodes, unfragmented",
            Per::Target,
            mtu_2_full_size_echo_crosses,
            needs TwoNodes
        ),
        claim!(
            "MTU-3",
            "Encapsulated frames fit the underlay",
            Per::Target,
            mtu_3_frames_fit_the_underlay,
            needs TwoNodes
        ),
        claim!(
            "MTU-4",
            "TCP MSS follows the pod MTU",
            Per::Target,
            mtu_4_mss_follows_pod_mtu,
            needs TwoNodes
        ),
    ]
}

/// MTU-1: on each node the run uses, every `cali*` link, the article pods' `eth0` and the
/// tunnel device of each encapsulating pool have the Calico MTU of POD-I3 (a tunnel device of
/// a dual-stack VXLAN cluster its own, see [`calico_interfaces`]).
pub async fn mtu_1_one_mtu_per_node(cx: &Cx<'_>) -> Outcome {
    for node in pod_nodes(cx) {
        for group in calico_interfaces(cx, &node).await? {
            cx.expect(mtu::same_mtu(&node, group.want, &group.got).because(group.why))?;
        }
    }
    Ok(())
}

/// MTU-2: from test-tools to test-tools-remote with DF, a small echo and the full-size one
/// (pod MTU − 28) are answered, one byte more is refused at the source or answered with ICMP
/// fragmentation needed — never lost.
pub async fn mtu_2_full_size_echo_crosses(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<FullSizeEcho>().await?;
    for probe in [Probe::Small, Probe::FullSize, Probe::OneByteMore] {
        cx.expect(x.judged(probe))?;
    }
    Ok(())
}

/// MTU-3: during MTU-2's full-size echo, every outer IPv4 packet of it on the source node's
/// underlay is at most the underlay's MTU and none is a fragment; the capture must see it.
pub async fn mtu_3_frames_fit_the_underlay(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<FullSizeEcho>().await?;
    let why = format!("the MTU of {}", x.underlay_name);
    cx.expect(mtu::fit_underlay(
        &x.on_underlay,
        x.underlay_mtu,
        &why,
        &x.full_size,
    ))
}

/// MTU-4: the SYN and SYN-ACK of P2P-2's connection and of a cross-node connection carry MSS =
/// the sender's pod MTU − 40, on both pods' host ends.
pub async fn mtu_4_mss_follows_pod_mtu(cx: &Cx<'_>) -> Outcome {
    let same = cx.recorded::<PodExchange>().await?.handshake();
    let cross = cx.recorded::<CrossHandshake>().await?.handshake();
    for handshake in [same, cross] {
        for check in handshake_mss(cx, &handshake).await? {
            cx.expect(check)?;
        }
    }
    Ok(())
}

/// Interfaces that must share one MTU, and why.
struct MtuGroup {
    want: u32,
    why: String,
    got: BTreeMap<String, Option<u32>>,
}

/// The Calico interfaces of `node` by the MTU they must have: every `cali*` link, `eth0 of
/// <pod>` for each article pod on it and each tunnel device (`vxlan.calico`, `tunl0`,
/// `vxlan-v6.calico` when a pool encapsulates that way; `None` when missing) at the Calico MTU;
/// a tunnel device whose own MTU differs from it — Felix gives each its encapsulation's
/// (`VXLANMTU`, `VXLANMTUV6`) and the pods the smallest, so on a dual-stack VXLAN cluster
/// `vxlan.calico` keeps 20 bytes more than the pods — in a group of its own at that MTU.
async fn calico_interfaces(cx: &Cx<'_>, node: &str) -> Result<Vec<MtuGroup>, Failure> {
    let facts = &cx.target.facts;
    let host = cx.interfaces(&cx.target.host(node)?).await?;
    let mut got: BTreeMap<String, Option<u32>> = (host.value.iter())
        .filter(|i| i.link.ifname.starts_with("cali"))
        .map(|i| (i.link.ifname.clone(), Some(i.link.mtu)))
        .collect();
    let pods: Vec<_> = (facts.pods_on(node))
        .filter(|p| facts.absence(&p.name).is_none())
        .collect();
    for pod in &pods {
        let ifs = cx.interfaces(&cx.target.pod(&pod.name)?).await?;
        let eth0 = link::interface(&ifs, "eth0")?;
        got.insert(format!("eth0 of {}", pod.name), Some(eth0.link.mtu));
    }
    let pod = pods
        .first()
        .ok_or_else(|| Failure::Harness(format!("no pod of the run on {node}")))?;
    let (want, why) = calico_mtu(cx, pod, &host)?;
    let underlay = underlay_of(cx, node, &host)?.link.mtu;
    let mut groups = Vec::new();
    for (tunnel, overhead) in facts.tunnel_devices() {
        let found = link::interface(&host, tunnel).ok().map(|i| i.link.mtu);
        let own = underlay.saturating_sub(overhead);
        if facts.configured_mtu.is_some() || own == want {
            got.insert(tunnel.to_string(), found);
            continue;
        }
        let why = format!("{tunnel}'s own MTU: the underlay's {underlay} less {overhead} bytes");
        let got = BTreeMap::from([(tunnel.to_string(), found)]);
        groups.push(MtuGroup {
            want: own,
            why,
            got,
        });
    }
    groups.insert(0, MtuGroup { want, why, got });
    Ok(groups)
}

/// DF echoes from test-tools to test-tools-remote — a small one, the full-size one (pod MTU −
/// 28) and one byte more — while the source node's underlay is captured: recorded once,
/// judged by MTU-2 and MTU-3.
pub struct FullSizeEcho {
    /// test-tools' eth0 MTU.
    pod_mtu: u32,
    /// The remote pod's IP, for messages.
    to: std::net::Ipv4Addr,
    small: DfEcho,
    full: DfEcho,
    over: DfEcho,
    underlay_name: String,
    underlay_mtu: u32,
    on_underlay: Frames,
    full_size: Match,
}

/// The three echoes of MTU-2.
#[derive(Clone, Copy)]
enum Probe {
    /// 56 bytes: must be answered, or the path is broken whatever the size.
    Small,
    /// Pod MTU − 28: must be answered.
    FullSize,
    /// Pod MTU − 27: must be refused at the source or answered with fragmentation needed.
    OneByteMore,
}

impl FullSizeEcho {
    /// The check of one probe: what became of it against what must.
    fn judged(&self, probe: Probe) -> Check {
        let answered: &[&str] = &["answered"];
        let (name, echo, want, said) = match probe {
            Probe::Small => (
                "a small echo",
                &self.small,
                answered,
                "answered (if not, the path is broken whatever the size)".to_string(),
            ),
            Probe::FullSize => (
                "the full-size echo",
                &self.full,
                answered,
                format!("answered ({CLIENT_POD}' eth0 MTU {} less 28)", self.pod_mtu),
            ),
            Probe::OneByteMore => (
                "one byte more",
                &self.over,
                &["refused_at_source", "fragmentation_needed"][..],
                "refused at the source (EMSGSIZE, \"message too long\") or answered with ICMP \
                 fragmentation needed, never silently lost"
                    .to_string(),
            ),
        };
        let what = format!("{name} from {CLIENT_POD} to {}", self.to);
        mtu::echo(&what, echo, want, &said)
    }
}

impl Recording for FullSizeEcho {
    async fn record(cx: &Cx<'_>) -> Result<Self, Failure> {
        let (client, remote) = (cx.facts_of(CLIENT_POD)?, cx.facts_of(REMOTE_POD)?);
        let (src_node, dst_node) = (cx.node_facts(&client.node)?, cx.node_facts(&remote.node)?);
        let pod = cx.target.pod(CLIENT_POD)?;
        let pod_mtu = link::interface(&cx.interfaces(&pod).await?, "eth0")?
            .link
            .mtu;
        let host = cx.target.host(&client.node)?;
        let host_ifs = cx.interfaces(&host).await?;
        let underlay = match &src_node.underlay {
            Some(name) => link::interface(&host_ifs, name)?,
            None => (host_ifs.value.iter())
                .find(|i| i.holds(src_node.address.into()))
                .ok_or_else(|| {
                    Failure::Harness(format!(
                        "no interface on {} holds the node address {}",
                        host.label(),
                        src_node.address
                    ))
                })?,
        };
        let (underlay_name, underlay_mtu) = (underlay.link.ifname.clone(), underlay.link.mtu);
        let bpf = format!("icmp or udp port {VXLAN_PORT} or ip proto 4 or ip[6:2] & 0x3fff != 0");
        let capture = cx.capture(&host, &underlay_name, &bpf).await?;
        let full_payload = pod_mtu.saturating_sub(ECHO_HEADERS);
        // At once: each may wait its 3 attempts before it counts as lost.
        let echo = |payload| pod.ping_df(remote.ip, payload, TRAFFIC_DEADLINE);
        let (small, full, over) =
            tokio::join!(echo(56), echo(full_payload), echo(full_payload + 1));
        let full_size = mtu::full_size_request(client.ip, remote.ip, pod_mtu);
        let nodes = (src_node.address, dst_node.address);
        let keep = mtu::echo_frames(client.ip, remote.ip, nodes);
        let refused = matches!(
            full,
            Ok(DfEcho {
                outcome: DfOutcome::RefusedAtSource { .. },
                ..
            })
        );
        if !refused {
            // Until the full-size request, or any fragment of the echo, is seen.
            let fragment = |f: &Frame| f.ipv4().is_some_and(|ip| ip.frag.is_fragment());
            let seen = |fs: &[Frame]| {
                (fs.iter()).any(|f| full_size.matches(f) || (keep.matches(f) && fragment(f)))
            };
            cx.wait_for(&capture, seen).await;
        }
        let on_underlay = cx.frames(capture, &keep).await;
        let shown = format!("{small:?}\n{full:?}\n{over:?}\n");
        cx.evidence
            .add(format!("ping -M do from {CLIENT_POD}.txt"), shown);
        let (small, full, over) = (small?, full?, over?);
        Ok(FullSizeEcho {
            pod_mtu,
            to: remote.ip,
            small,
            full,
            over,
            underlay_name,
            underlay_mtu,
            on_underlay,
            full_size,
        })
    }
}

/// The MSS checks of a handshake: on each host end, the SYN carries the client pod's eth0 MTU
/// less 40 and the SYN-ACK the server pod's.
async fn handshake_mss(cx: &Cx<'_>, h: &Handshake) -> Result<Vec<Check>, Failure> {
    let mut checks = Vec::new();
    // By ports: a translated address is P2P-4's and XN-3's to judge, not the MSS's.
    let (client, server) = (h.client.port(), h.server.port());
    let segments = [
        (Match::tcp_ports(client, server).syn(), h.client_pod),
        (Match::tcp_ports(server, client).syn_ack(), h.server_pod),
    ];
    for (segment, sender) in segments {
        let ifs = cx.interfaces(&cx.target.pod(sender)?).await?;
        let sender_mtu = link::interface(&ifs, "eth0")?.link.mtu;
        let want = u16::try_from(sender_mtu.saturating_sub(40)).unwrap_or(u16::MAX);
        let why = format!("the eth0 MTU of {sender}, {sender_mtu}, less 40");
        for frames in &h.captured {
            checks.push(mtu::mss(frames, &segment, want, &why));
        }
    }
    Ok(checks)
}

/// An HTTP request from test-tools-remote to c2c-network-demo, captured on both pods' host
/// ends (on two nodes): the cross-node handshake MTU-4 judges.
pub struct CrossHandshake {
    client: SocketAddrV4,
    server: SocketAddrV4,
    on_client_cali: Frames,
    on_server_cali: Frames,
}

impl CrossHandshake {
    fn handshake(&self) -> Handshake {
        Handshake {
            client: self.client,
            client_pod: REMOTE_POD,
            server: self.server,
            server_pod: SERVER_POD,
            captured: [self.on_client_cali.clone(), self.on_server_cali.clone()],
        }
    }
}

impl Recording for CrossHandshake {
    async fn record(cx: &Cx<'_>) -> Result<Self, Failure> {
        let (remote, server) = (cx.facts_of(REMOTE_POD)?, cx.facts_of(SERVER_POD)?);
        let client_pair = cx.veth_pair(REMOTE_POD).await?;
        let server_pair = cx.veth_pair(SERVER_POD).await?;
        let src_port = source_port()?;
        let connection = Match::connection(src_port, HTTP_PORT);
        let tcp = format!("tcp port {src_port}");
        let (a_place, a_dev) = (&client_pair.host_place, client_pair.host_end_name()?);
        let (b_place, b_dev) = (&server_pair.host_place, server_pair.host_end_name()?);
        let a = cx.capture(a_place, a_dev, &tcp).await?;
        let b = cx.capture(b_place, b_dev, &tcp).await?;
        let got = client_pair
            .pod_place
            .http_get(server.ip.into(), HTTP_PORT, src_port, TRAFFIC_DEADLINE)
            .await;
        if got.is_ok() {
            cx.wait_for(&a, at_least_frames(2, &connection)).await;
            cx.wait_for(&b, at_least_frames(2, &connection)).await;
        }
        let on_client_cali = cx.frames(a, &connection).await;
        let on_server_cali = cx.frames(b, &connection).await;
        got?;
        Ok(CrossHandshake {
            client: SocketAddrV4::new(remote.ip, src_port),
            server: SocketAddrV4::new(server.ip, HTTP_PORT),
            on_client_cali,
            on_server_cali,
        })
    }
}
