//! claims.md "Host routes": a /32 per local pod, a blackhole per local block, the other nodes'
//! blocks per the pool's encapsulation.

use super::support::*;
use crate::claim;
use calico_conformance::expect::Check;
use calico_conformance::expect::route::{self, RouteSpec};
use calico_conformance::facts::{Encapsulation, NodeFacts};
use calico_conformance::observe::{Observed, ip::Route};
use ipnet::{IpNet, Ipv4Net};
use std::collections::BTreeSet;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "HOST-R1",
            "Every local pod has a /32 host route to its own cali link",
            Per::EachPod,
            host_r1_pod_route_via_its_cali
        ),
        claim!(
            "HOST-R2",
            "The node's own IPAM block is a blackhole",
            Per::Target,
            host_r2_own_block_blackholed
        ),
        claim!(
            "HOST-R3",
            "Other nodes' blocks are routed per the pool's encapsulation",
            Per::Target,
            host_r3_remote_blocks_per_encapsulation,
            needs BlocksOnTwoNodes
        ),
    ]
}

/// The nodes the suite's pods run on (where it has a host place), each once, by name; a pod
/// the target reports absent places none.
pub fn pod_nodes(cx: &Cx<'_>) -> Vec<String> {
    let facts = &cx.target.facts;
    let set: BTreeSet<String> = (facts.pods.iter())
        .filter(|p| facts.absence(&p.name).is_none())
        .map(|p| p.node.clone())
        .collect();
    set.into_iter().collect()
}

/// HOST-R1: `<podIP>/32 dev <this pod's host end> scope link` on the pod's node.
pub async fn host_r1_pod_route_via_its_cali(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let pair = cx.veth_pair(&pod.name).await?;
    let cali = pair.host_end_name()?;
    let routes = cx.routes(&pair.host_place).await?;
    cx.expect(route::only(&routes, RouteSpec::to_pod(pod.ip, cali)))
}

/// The blocks affine to `node`; a harness failure when the target names none.
fn blocks_of<'a>(cx: &Cx<'a>, node: &str) -> Result<&'a [Ipv4Net], Failure> {
    match cx.node_facts(node)?.blocks.as_slice() {
        [] => Err(Failure::Harness(format!(
            "the target names no IPAM block affine to {node}"
        ))),
        blocks => Ok(blocks),
    }
}

/// HOST-R2: a `blackhole <block>` route for every block affine to each node the pods use.
pub async fn host_r2_own_block_blackholed(cx: &Cx<'_>) -> Outcome {
    for node in pod_nodes(cx) {
        let blocks = blocks_of(cx, &node)?;
        let routes = cx.routes(&cx.target.host(&node)?).await?;
        for block in blocks {
            cx.expect(route::some(&routes, RouteSpec::blackhole(*block)))?;
        }
    }
    Ok(())
}

/// Whether two nodes share an underlay subnet (CrossSubnet decides by this).
pub fn same_subnet(a: &NodeFacts, b: &NodeFacts) -> bool {
    a.same_subnet(b)
}

/// For `node`'s `routes`: one check per block of every other node, that it is routed as the
/// pool's encapsulation between the two nodes says.
fn remote_blocks_routed(
    cx: &Cx<'_>,
    node: &str,
    routes: &Observed<Vec<Route>>,
) -> Result<Vec<Check>, Failure> {
    let facts = &cx.target.facts;
    let here = cx.node_facts(node)?;
    let mut checks = Vec::new();
    for other in facts.nodes.iter().filter(|n| n.name != node) {
        for block in &other.blocks {
            let (want, mode) = remote_block_spec(cx, here, other, IpNet::V4(*block))?;
            checks.push(
                route::some(routes, want).because(format!("{} encapsulation", mode.as_str())),
            );
        }
    }
    Ok(checks)
}

/// The route `here` must have for `block` of node `other` (HOST-R3's shape), and the pool's
/// encapsulation between the two nodes it follows ([`RouteSpec::remote_block_of`], which REC-3
/// and the sweep use too).
pub fn remote_block_spec(
    cx: &Cx<'_>,
    here: &NodeFacts,
    other: &NodeFacts,
    block: IpNet,
) -> Result<(RouteSpec, Encapsulation), Failure> {
    RouteSpec::remote_block_of(&cx.target.facts, here, other, block).map_err(Failure::Harness)
}

/// HOST-R3: each other node's blocks are routed: IPIP `via <nodeIP> dev tunl0 onlink`; VXLAN
/// `via <tunnel IP> dev vxlan.calico onlink`; none `via <nodeIP> dev <underlay>`.
pub async fn host_r3_remote_blocks_per_encapsulation(cx: &Cx<'_>) -> Outcome {
    for node in pod_nodes(cx) {
        let routes = cx.routes(&cx.target.host(&node)?).await?;
        for check in remote_blocks_routed(cx, &node, &routes)? {
            cx.expect(check)?;
        }
    }
    Ok(())
}
