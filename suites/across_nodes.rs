//! claims.md "Across nodes": two routed hops, encapsulated as the pool says, pod IPs intact.

use super::host_routes::same_subnet;
use super::support::*;
use crate::claim;
use calico_conformance::calico::{HTTP_PORT, VXLAN_PORT, VXLAN_VNI};
use calico_conformance::facts::{Encapsulation, NodeFacts, PodFacts};
use calico_conformance::observe::packet::{EncapKind, Frame, L4};
use calico_conformance::ports::source_port;
use calico_conformance::target::{REMOTE_POD, SERVER_POD};

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "XN-1",
            "Pods on different nodes reach each other, two routed hops apart",
            Per::Target,
            xn_1_cross_node_ttl_62
        ),
        claim!(
            "XN-2",
            "Cross-node traffic is encapsulated as the pool says",
            Per::Target,
            xn_2_encapsulation_per_pool
        ),
        claim!(
            "XN-3",
            "Pod IPs survive the crossing",
            Per::Target,
            xn_3_inner_pod_ips
        ),
    ]
}

/// The two pods on two nodes, or why the claim does not apply.
fn two_nodes<'a>(cx: &Cx<'a>) -> Result<Result<(&'a PodFacts, &'a PodFacts), String>, Failure> {
    let server = cx.facts_of(SERVER_POD)?;
    if let Some(why) = cx.target.facts.absence(REMOTE_POD) {
        return Ok(Err(why.to_string()));
    }
    let Some(remote) = cx.target.facts.pod(REMOTE_POD) else {
        return Ok(Err(format!(
            "{REMOTE_POD} is not running: the cluster has no second schedulable node"
        )));
    };
    if remote.node == server.node {
        return Ok(Err(format!(
            "{REMOTE_POD} landed on {}, the server's node",
            remote.node
        )));
    }
    Ok(Ok((remote, server)))
}

/// XN-1: ping from test-tools-remote to c2c-network-demo: TTL 62.
pub async fn xn_1_cross_node_ttl_62(cx: &Cx<'_>) -> Outcome {
    let (remote, server) = match two_nodes(cx)? {
        Ok(p) => p,
        Err(reason) => return not_applicable(reason),
    };
    let from = cx.target.pod(&remote.name)?;
    let expected = format!(
        "replies from {} on {} with TTL 62 (two routed hops)",
        server.ip, server.node
    );
    expect_ttl(cx, &from, server.ip, 62, expected).await
}

struct Crossing {
    mode: Encapsulation,
    src_node: NodeFacts,
    dst_node: NodeFacts,
    remote: PodFacts,
    server: PodFacts,
    underlay: String,
    frames: Vec<Frame>,
}

async fn crossing(cx: &Cx<'_>) -> Result<Result<Crossing, String>, Failure> {
    let (remote, server) = match two_nodes(cx)? {
        Ok(p) => p,
        Err(reason) => return Ok(Err(reason)),
    };
    let facts = &cx.target.facts;
    let node = |n: &str| {
        facts
            .node(n)
            .cloned()
            .ok_or_else(|| Failure::Harness(format!("no facts for node {n}")))
    };
    let (src_node, dst_node) = (node(&remote.node)?, node(&server.node)?);
    let pool = facts
        .pool_of(server.ip)
        .ok_or_else(|| Failure::Harness(format!("no pool holds {}", server.ip)))?;
    let mode = pool
        .encapsulation
        .between(same_subnet(&src_node, &dst_node));
    let underlay = src_node.underlay.clone().ok_or_else(|| {
        Failure::Harness(format!("no underlay interface known for {}", src_node.name))
    })?;
    let host = cx.target.host(&src_node.name)?;
    let src_port = source_port()?;
    let capture = cx
        .capture(
            &host,
            &underlay,
            &format!("tcp port {src_port} or udp port {VXLAN_PORT} or ip proto 4"),
        )
        .await?;
    let body = cx
        .target
        .pod(&remote.name)?
        .http_get(server.ip, HTTP_PORT, src_port, TRAFFIC_DEADLINE)
        .await;
    cx.wait_for(&capture, |f| {
        f.iter()
            .filter(|f| tcp_ports(f, src_port, HTTP_PORT))
            .count()
            >= 4
    })
    .await;
    let seen = cx.finish(capture).await;
    body?;
    Ok(Ok(Crossing {
        mode,
        src_node,
        dst_node,
        remote: remote.clone(),
        server: server.clone(),
        underlay,
        frames: seen
            .frames
            .into_iter()
            .filter(|f| tcp_ports(f, src_port, HTTP_PORT))
            .collect(),
    }))
}

/// XN-2: on the source node's underlay the connection is IPIP (proto 4) or VXLAN (UDP 4789,
/// VNI 4096) between the node IPs, or plain pod IPs, as the pool's mode says.
pub async fn xn_2_encapsulation_per_pool(cx: &Cx<'_>) -> Outcome {
    let x = match crossing(cx).await? {
        Ok(x) => x,
        Err(reason) => return not_applicable(reason),
    };
    let (a, b) = (x.src_node.address, x.dst_node.address);
    let between_nodes = |f: &Frame| {
        f.ipv4()
            .is_some_and(|ip| (ip.src == a && ip.dst == b) || (ip.src == b && ip.dst == a))
    };
    type Fits<'a> = Box<dyn Fn(&Frame) -> bool + 'a>;
    let (expected, fits): (String, Fits) = match x.mode {
        Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => (
            format!("IP protocol 4 between {a} and {b}"),
            Box::new(move |f: &Frame| {
                between_nodes(f)
                    && f.ipv4().is_some_and(|ip| {
                        ip.protocol == 4
                            && ip.inner.as_ref().is_some_and(|i| i.kind == EncapKind::Ipip)
                    })
            }),
        ),
        Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => (
            format!("UDP {VXLAN_PORT} between {a} and {b}, VNI {VXLAN_VNI}"),
            Box::new(move |f: &Frame| {
                between_nodes(f)
                    && f.ipv4().is_some_and(|ip| {
                        matches!(ip.l4, L4::Udp { dst_port, .. } if dst_port == VXLAN_PORT)
                            && ip
                                .inner
                                .as_ref()
                                .is_some_and(|i| i.kind == EncapKind::Vxlan { vni: VXLAN_VNI })
                    })
            }),
        ),
        Encapsulation::None => (
            format!(
                "plain packets between the pod IPs {} and {}",
                x.remote.ip, x.server.ip
            ),
            Box::new(|f: &Frame| {
                f.ipv4()
                    .is_some_and(|ip| ip.inner.is_none() && ip.protocol == 6)
            }),
        ),
    };
    let expected = format!(
        "on {} of {} ({} mode): {expected}",
        x.underlay,
        x.src_node.name,
        x.mode.as_str()
    );
    ensure(
        !x.frames.is_empty(),
        &expected,
        "none of the connection on the underlay",
    )?;
    let misfits: Vec<Frame> = x.frames.iter().filter(|f| !fits(f)).cloned().collect();
    ensure(
        misfits.is_empty(),
        &expected,
        format!("also: {}", show_frames(&misfits)),
    )?;
    Ok(Verdict::Verified)
}

/// XN-3: the packets XN-2 saw carry the two pod IPs inside.
pub async fn xn_3_inner_pod_ips(cx: &Cx<'_>) -> Outcome {
    let x = match crossing(cx).await? {
        Ok(x) => x,
        Err(reason) => return not_applicable(reason),
    };
    ensure(
        !x.frames.is_empty(),
        format!(
            "the connection seen on {} of {}",
            x.underlay, x.src_node.name
        ),
        "none of it: the capture is in doubt",
    )?;
    let (r, s) = (x.remote.ip, x.server.ip);
    let wrong: Vec<Frame> = x
        .frames
        .iter()
        .filter(|f| {
            f.innermost()
                .ipv4()
                .is_none_or(|ip| !((ip.src == r && ip.dst == s) || (ip.src == s && ip.dst == r)))
        })
        .cloned()
        .collect();
    ensure(
        wrong.is_empty(),
        format!("inner source and destination {r} and {s}"),
        show_frames(&wrong),
    )?;
    Ok(Verdict::Verified)
}
