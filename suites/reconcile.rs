//! claims.md "Datastore and dataplane agree": every pod the datastore says Calico networks on
//! a node has its link and route, nothing is left behind by a pod that is gone, and every
//! node's block routes match IPAM. They read the whole node (one `ip -d -j link` and one
//! `ip -j -4 route` per node the run uses), not just the article's pods.

use super::host_routes::{pod_nodes, remote_block_spec};
use super::support::*;
use crate::claim;
use calico_conformance::expect::reconcile::{self, BlockRoutes, NodeState};
use calico_conformance::facts::Workload;
use ipnet::Ipv4Net;
use std::collections::BTreeMap;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "REC-1",
            "Every pod Calico networks has its dataplane",
            Per::Target,
            rec_1_every_pod_has_its_dataplane,
            needs WorkloadsKnown
        ),
        claim!(
            "REC-2",
            "No orphan dataplane state",
            Per::Target,
            rec_2_no_orphan_dataplane_state,
            needs WorkloadsKnown
        ),
        claim!(
            "REC-3",
            "Every node's routes match IPAM",
            Per::Target,
            rec_3_routes_match_ipam,
            needs WorkloadsKnown
        ),
    ]
}

/// Each node the run uses, observed once: its links and its IPv4 routes (kept as evidence).
async fn node_states(cx: &Cx<'_>) -> Result<Vec<NodeState>, Failure> {
    let observe = |node: String| async move {
        let host = cx.target.host(&node)?;
        let (links, routes) = futures::try_join!(cx.links(&host), cx.routes(&host))?;
        Ok::<_, Failure>(NodeState {
            node,
            links,
            routes,
        })
    };
    futures::future::try_join_all(pod_nodes(cx).into_iter().map(observe)).await
}

/// The workloads the datastore lists (kept as evidence, one line each).
fn workloads<'a>(cx: &Cx<'a>) -> Result<&'a [Workload], Failure> {
    let all = cx.target.facts.workloads.as_deref().ok_or_else(|| {
        Failure::Harness("the target does not list every workload on its nodes".into())
    })?;
    let lines: Vec<String> = all
        .iter()
        .map(|w| format!("{} {} {}", w.node, w.id(), w.ip))
        .collect();
    cx.evidence
        .add("datastore workloads.txt", lines.join("\n") + "\n");
    Ok(all)
}

/// The IP pools' CIDRs.
fn pools(cx: &Cx<'_>) -> Vec<Ipv4Net> {
    cx.target.facts.pools.iter().map(|p| p.cidr).collect()
}

/// What IPAM says each observed node's block routes must be: its own blocks blackholed, every
/// other node's routed as HOST-R3 says.
fn ipam_routes(
    cx: &Cx<'_>,
    states: &[NodeState],
) -> Result<BTreeMap<String, BlockRoutes>, Failure> {
    let facts = &cx.target.facts;
    let mut out = BTreeMap::new();
    for s in states {
        let here = cx.node_facts(&s.node)?;
        let mut routes = BlockRoutes {
            own: here.blocks.clone(),
            remote: Vec::new(),
        };
        for other in facts.nodes.iter().filter(|n| n.name != s.node) {
            for block in &other.blocks {
                let (spec, _) = remote_block_spec(cx, here, other, *block)?;
                routes.remote.push((*block, other.name.clone(), spec));
            }
        }
        out.insert(s.node.clone(), routes);
    }
    Ok(out)
}

/// REC-1: each pod the datastore puts on a node the run uses has its `cali*` link (VETH-2's
/// name, UP, ee:ee:ee:ee:ee:ee) and `<podIP>/32 dev <that cali>`.
pub async fn rec_1_every_pod_has_its_dataplane(cx: &Cx<'_>) -> Outcome {
    let states = node_states(cx).await?;
    cx.expect(reconcile::every_pod_wired(&states, workloads(cx)?))
}

/// REC-2: every `cali*` link is a pod's on that node; every /32 route in a pool leads to a live
/// pod's IP on its own `cali*`.
pub async fn rec_2_no_orphan_dataplane_state(cx: &Cx<'_>) -> Outcome {
    let states = node_states(cx).await?;
    cx.expect(reconcile::no_orphans(&states, workloads(cx)?, &pools(cx)))
}

/// REC-3: a blackhole for each own block, exactly one HOST-R3 route for each other node's, no
/// route for a block affine to no node.
pub async fn rec_3_routes_match_ipam(cx: &Cx<'_>) -> Outcome {
    let states = node_states(cx).await?;
    let ipam = ipam_routes(cx, &states)?;
    cx.expect(reconcile::routes_match_ipam(&states, &ipam, &pools(cx)))
}
