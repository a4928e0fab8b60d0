//! The faults of REC-1..3 (datastore and dataplane agree): state a pod left behind, a pod the
//! datastore lists without its route, block routes IPAM does not account for. One function per
//! fault, named after it (the catalogue in `faults.rs` says what each models).

use super::Switches;
use super::edit::ip;
use crate::calico::host_end_name;
use crate::error::{Error, Result};
use crate::facts::Workload;
use crate::target::{SERVER_POD, Target};

/// A `cali*` veth on `node`'s host end as the CNI plugin makes it (UP, ee:ee:ee:ee:ee:ee),
/// its peer left in the node's namespace as `peer`.
async fn cali_link(t: &Target, node: &str, cali: &str, peer: &str) -> Result<()> {
    let host = t.host(node)?;
    ip(
        &host,
        &format!("link add {cali} type veth peer name {peer}"),
    )
    .await?;
    ip(
        &host,
        &format!("link set dev {cali} address ee:ee:ee:ee:ee:ee up"),
    )
    .await?;
    ip(&host, &format!("link set dev {peer} up")).await
}

/// The node the server pod runs on.
fn server_node(t: &Target) -> Result<String> {
    Ok(t.pod_facts(SERVER_POD)?.node.clone())
}

/// A pod deleted from the API whose network namespace the runtime leaked: its `cali*` link and
/// /32 route stay on the node.
pub(super) async fn orphan_cali_link(t: &mut Target, _: &Switches) -> Result<()> {
    let node = server_node(t)?;
    let cali = host_end_name("default", "deleted-pod-5d8c9");
    cali_link(t, &node, &cali, "orphan0").await?;
    ip(
        &t.host(&node)?,
        &format!("route add 192.168.1.50/32 dev {cali} scope link"),
    )
    .await
}

/// A pod the suite did not deploy (`kube-system/coredns-7db6d8ff4d-lb2kx`, listed by the
/// datastore) keeps its `cali*` link but has no /32 route.
pub(super) async fn other_pod_route_missing(t: &mut Target, _: &Switches) -> Result<()> {
    let node = server_node(t)?;
    let (namespace, name) = ("kube-system", "coredns-7db6d8ff4d-lb2kx");
    cali_link(t, &node, &host_end_name(namespace, name), "coredns0").await?;
    let workloads = t
        .facts
        .workloads
        .as_mut()
        .ok_or_else(|| Error::Preflight("the lab lists its workloads".into()))?;
    workloads.push(Workload {
        namespace: namespace.into(),
        name: name.into(),
        node,
        ip: std::net::Ipv4Addr::new(192, 168, 1, 20),
        ipv6: None,
    });
    Ok(())
}

/// A route for a block affine to no node: a removed node's block, released by IPAM, still
/// routed towards where that node was.
pub(super) async fn unowned_block_route(t: &mut Target, _: &Switches) -> Result<()> {
    let node = server_node(t)?;
    ip(
        &t.host(&node)?,
        "route add 192.168.3.0/26 via 10.12.22.3 dev ens192 proto bird",
    )
    .await
}

/// A node still blackholes a block that is now affine to another node (its old affinity was
/// not cleaned up), beside the route to its new owner.
pub(super) async fn stale_blackhole_for_remote_block(t: &mut Target, _: &Switches) -> Result<()> {
    let node = server_node(t)?;
    let other = t
        .facts
        .nodes
        .iter()
        .find(|n| n.name != node)
        .and_then(|n| n.blocks.first().copied())
        .ok_or_else(|| Error::NotFound("another node with a block".into()))?;
    ip(
        &t.host(&node)?,
        &format!("route add blackhole {other} proto bird metric 100"),
    )
    .await
}
