//! claims.md "Host routes": a /32 per local pod, a blackhole per local block, the other nodes'
//! blocks per the pool's encapsulation.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{IPIP_DEVICE, VXLAN_DEVICE};
use calico_conformance::facts::{Encapsulation, NodeFacts};
use calico_conformance::observe::{
    self,
    ip::{Route, RouteType},
};
use ipnet::{IpNet, Ipv4Net};
use std::collections::BTreeSet;
use std::net::IpAddr;

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
            host_r3_remote_blocks_per_encapsulation
        ),
    ]
}

/// The nodes the suite's pods run on (where it has a host place).
fn pod_nodes(cx: &Cx<'_>) -> Vec<String> {
    let set: BTreeSet<String> = cx
        .target
        .facts
        .pods
        .iter()
        .map(|p| p.node.clone())
        .collect();
    set.into_iter().collect()
}

/// HOST-R1: `<podIP>/32 dev <this pod's host end> scope link` on the pod's node.
pub async fn host_r1_pod_route_via_its_cali(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let pair = veth_pair(cx, &facts.name).await?;
    let cali = pair.host_end()?.link.ifname.clone();
    let routes = observe::routes(&pair.host_place, true).await?;
    cx.evidence.observed(&routes);
    let ip = IpAddr::V4(facts.ip);
    let for_pod: Vec<_> = routes.value.iter().filter(|r| r.dst.is_host(ip)).collect();
    let ok = for_pod.iter().any(|r| {
        r.kind == RouteType::Unicast
            && r.via_dev(&cali)
            && r.gateway.is_none()
            && r.scope.as_deref() == Some("link")
    });
    ensure(
        ok && for_pod.len() == 1,
        format!(
            "one route {}/32 dev {cali} scope link on {}",
            facts.ip,
            pair.host_place.label()
        ),
        show_found(&for_pod, facts.ip),
    )?;
    Ok(Verdict::Verified)
}

/// HOST-R2: a `blackhole <block>` route for every block affine to each node the pods use.
pub async fn host_r2_own_block_blackholed(cx: &Cx<'_>) -> Outcome {
    for node in pod_nodes(cx) {
        let facts = node_facts(cx, &node)?;
        if facts.blocks.is_empty() {
            return Err(Failure::Harness(format!(
                "the target names no IPAM block affine to {node}"
            )));
        }
        let host = cx.target.host(&node)?;
        let routes = observe::routes(&host, true).await?;
        cx.evidence.observed(&routes);
        for block in &facts.blocks {
            let found = routes_to(&routes.value, *block);
            ensure(
                found.iter().any(|r| r.kind == RouteType::Blackhole),
                format!("blackhole {block} on {node}"),
                show_found(&found, block),
            )?;
        }
    }
    Ok(Verdict::Verified)
}

fn node_facts<'a>(cx: &Cx<'a>, node: &str) -> Result<&'a NodeFacts, Failure> {
    cx.target
        .facts
        .node(node)
        .ok_or_else(|| Failure::Harness(format!("no facts for node {node}")))
}

/// The routes whose destination is exactly `block`.
fn routes_to(routes: &[Route], block: Ipv4Net) -> Vec<&Route> {
    let net = IpNet::V4(block);
    routes.iter().filter(|r| r.dst.net() == Some(net)).collect()
}

/// Whether two nodes share an underlay subnet (CrossSubnet decides by this).
pub fn same_subnet(a: &NodeFacts, b: &NodeFacts) -> bool {
    let prefix = a.underlay_prefix.or(b.underlay_prefix).unwrap_or(32);
    Ipv4Net::new(a.address, prefix)
        .map(|n| n.contains(&b.address))
        .unwrap_or(false)
}

/// HOST-R3: each other node's blocks are routed: IPIP `via <nodeIP> dev tunl0 onlink`; VXLAN
/// `via <tunnel IP> dev vxlan.calico onlink`; none `via <nodeIP> dev <underlay>`.
pub async fn host_r3_remote_blocks_per_encapsulation(cx: &Cx<'_>) -> Outcome {
    let facts = &cx.target.facts;
    let with_blocks = facts.nodes.iter().filter(|n| !n.blocks.is_empty()).count();
    if with_blocks < 2 {
        return not_applicable(format!(
            "only {with_blocks} node holds an IPAM block: there is no other node's block to route"
        ));
    }
    for node in pod_nodes(cx) {
        let here = node_facts(cx, &node)?;
        let host = cx.target.host(&node)?;
        let routes = observe::routes(&host, true).await?;
        cx.evidence.observed(&routes);
        for other in facts.nodes.iter().filter(|n| n.name != node) {
            for block in &other.blocks {
                let pool = facts.pool_of(block.network()).ok_or_else(|| {
                    Failure::Harness(format!("no pool holds block {block} of {}", other.name))
                })?;
                let mode = pool.encapsulation.between(same_subnet(here, other));
                let (via, dev, onlink) = match mode {
                    Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => {
                        (Some(other.address), Some(IPIP_DEVICE.to_string()), true)
                    }
                    Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => (
                        other.vxlan_tunnel_address,
                        Some(VXLAN_DEVICE.to_string()),
                        true,
                    ),
                    Encapsulation::None => (Some(other.address), here.underlay.clone(), false),
                };
                let via = via.ok_or_else(|| {
                    Failure::Harness(format!(
                        "{} has no VXLAN tunnel address in the facts",
                        other.name
                    ))
                })?;
                let expected = format!(
                    "{block} via {via}{}{} on {node} ({} encapsulation)",
                    dev.as_ref()
                        .map(|d| format!(" dev {d}"))
                        .unwrap_or_default(),
                    if onlink { " onlink" } else { "" },
                    mode.as_str()
                );
                let found = routes_to(&routes.value, *block);
                let ok = found.iter().any(|r| {
                    r.kind == RouteType::Unicast
                        && r.gateway == Some(IpAddr::V4(via))
                        && dev.as_deref().is_none_or(|d| r.via_dev(d))
                        && (!onlink || r.onlink())
                });
                ensure(ok, expected, show_found(&found, block))?;
            }
        }
    }
    Ok(Verdict::Verified)
}
