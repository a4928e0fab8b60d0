//! claims.md "Across nodes": two routed hops, encapsulated as the pool says, pod IPs intact.
//! Every claim here needs the remote pod on another node than the server.

use super::host_routes::same_subnet;
use super::support::*;
use crate::claim;
use calico_conformance::calico::{HTTP_PORT, VXLAN_PORT};
use calico_conformance::expect::frames::{self, Frames, Match};
use calico_conformance::expect::ttl;
use calico_conformance::ports::source_port;
use calico_conformance::target::{REMOTE_POD, SERVER_POD};

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "XN-1",
            "Pods on different nodes reach each other, two routed hops apart",
            Per::Target,
            xn_1_cross_node_ttl_62,
            needs TwoNodes
        ),
        claim!(
            "XN-2",
            "Cross-node traffic is encapsulated as the pool says",
            Per::Target,
            xn_2_encapsulation_per_pool,
            needs TwoNodes
        ),
        claim!(
            "XN-3",
            "Pod IPs survive the crossing",
            Per::Target,
            xn_3_inner_pod_ips,
            needs TwoNodes
        ),
    ]
}

/// XN-1: ping from test-tools-remote to c2c-network-demo: TTL 62.
pub async fn xn_1_cross_node_ttl_62(cx: &Cx<'_>) -> Outcome {
    let server = cx.facts_of(SERVER_POD)?;
    let replies = cx
        .ping(&cx.target.pod(REMOTE_POD)?, server.ip.into(), 3)
        .await?;
    cx.expect(ttl(server.ip, &replies, 62).because("two routed hops"))
}

/// An HTTP request from test-tools-remote to c2c-network-demo, captured on the remote node's
/// underlay: recorded once, judged by XN-2 and XN-3.
pub struct Crossing {
    on_underlay: Frames,
    /// The encapsulation the pool's mode between the two nodes calls for.
    encapsulated: Match,
    /// The two pod IPs, inside.
    pod_ips: Match,
}

impl Recording for Crossing {
    async fn record(cx: &Cx<'_>) -> Result<Self, Failure> {
        let (remote, server) = (cx.facts_of(REMOTE_POD)?, cx.facts_of(SERVER_POD)?);
        let (src_node, dst_node) = (cx.node_facts(&remote.node)?, cx.node_facts(&server.node)?);
        let pool = cx
            .target
            .facts
            .pool_of(server.ip)
            .ok_or_else(|| Failure::Harness(format!("no pool holds {}", server.ip)))?;
        let mode = pool.encapsulation.between(same_subnet(src_node, dst_node));
        let underlay = src_node.underlay.as_deref().ok_or_else(|| {
            Failure::Harness(format!("no underlay interface known for {}", src_node.name))
        })?;
        let host = cx.target.host(&src_node.name)?;
        let src_port = source_port()?;
        let connection = Match::connection(src_port, HTTP_PORT);
        let bpf = format!("tcp port {src_port} or udp port {VXLAN_PORT} or ip proto 4");
        let capture = cx.capture(&host, underlay, &bpf).await?;
        let got = cx
            .target
            .pod(&remote.name)?
            .http_get(server.ip.into(), HTTP_PORT, src_port, TRAFFIC_DEADLINE)
            .await;
        cx.wait_for(&capture, at_least_frames(4, &connection)).await;
        let on_underlay = cx.frames(capture, &connection).await;
        got?;
        let (nodes, pods) = ((src_node.address, dst_node.address), (remote.ip, server.ip));
        Ok(Crossing {
            on_underlay,
            encapsulated: Match::encapsulated(mode, nodes, pods),
            pod_ips: Match::inner_between(remote.ip, server.ip),
        })
    }
}

/// XN-2: on the source node's underlay the connection is IPIP (proto 4) or VXLAN (UDP 4789,
/// VNI 4096) between the node IPs, or plain pod IPs, as the pool's mode says.
pub async fn xn_2_encapsulation_per_pool(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<Crossing>().await?;
    cx.expect(frames::every(&x.on_underlay, &x.encapsulated))
}

/// XN-3: the packets XN-2 saw carry the two pod IPs inside.
pub async fn xn_3_inner_pod_ips(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<Crossing>().await?;
    cx.expect(frames::every(&x.on_underlay, &x.pod_ips))
}
