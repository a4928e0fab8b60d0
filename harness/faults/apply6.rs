//! What each IPv6 fault of the catalogue does to a correct dual-stack lab (IP6-*): one
//! function per fault, named after it.

use super::Switches;
use super::edit::{cali, ip, pod_ipv6, set_ipv6_conf};
use crate::error::{Error, Result};
use crate::lab::plan::HOST_END_LINK_LOCAL;
use crate::target::{CLIENT_POD, Target};

pub(super) async fn host_end_proxy_ndp_off(t: &mut Target, _: &Switches) -> Result<()> {
    set_ipv6_conf(
        &t.host_of(CLIENT_POD)?,
        &cali(t, CLIENT_POD)?,
        "proxy_ndp",
        "0",
    )
}

pub(super) async fn pod_ipv6_slash64(t: &mut Target, _: &Switches) -> Result<()> {
    let (addr, pod) = (pod_ipv6(t, CLIENT_POD)?, t.pod(CLIENT_POD)?);
    // IPv6 holds one prefix length per address: the /128 goes first.
    ip(&pod, &format!("-6 addr del {addr}/128 dev eth0")).await?;
    ip(
        &pod,
        &format!("-6 addr add {addr}/64 dev eth0 nodad noprefixroute"),
    )
    .await
}

pub(super) async fn static_gateway_neighbour6(t: &mut Target, _: &Switches) -> Result<()> {
    let line = format!(
        "-6 neigh replace {HOST_END_LINK_LOCAL} lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent"
    );
    ip(&t.pod(CLIENT_POD)?, &line).await
}

pub(super) async fn pod_ipv6_default_via_other_gateway(t: &mut Target, _: &Switches) -> Result<()> {
    ip(
        &t.pod(CLIENT_POD)?,
        "-6 route replace default via fe80::1 dev eth0",
    )
    .await
}

pub(super) async fn host_route6_missing(t: &mut Target, _: &Switches) -> Result<()> {
    let addr = pod_ipv6(t, CLIENT_POD)?;
    ip(&t.host_of(CLIENT_POD)?, &format!("-6 route del {addr}/128")).await
}

pub(super) async fn orphan_route6(t: &mut Target, _: &Switches) -> Result<()> {
    // fd00:10:244::1:32 is in k8s-worker-1's IPv6 block; no pod of the lab has it.
    let line = format!(
        "-6 route add fd00:10:244::1:32/128 dev {}",
        cali(t, CLIENT_POD)?
    );
    ip(&t.host_of(CLIENT_POD)?, &line).await
}

pub(super) async fn dad_left_on(t: &mut Target, _: &Switches) -> Result<()> {
    set_ipv6_conf(&t.pod(CLIENT_POD)?, "eth0", "accept_dad", "1")?;
    set_ipv6_conf(
        &t.host_of(CLIENT_POD)?,
        &cali(t, CLIENT_POD)?,
        "accept_dad",
        "1",
    )
}

pub(super) async fn ipv6_forwarding_off(t: &mut Target, _: &Switches) -> Result<()> {
    set_ipv6_conf(&t.host_of(CLIENT_POD)?, "all", "forwarding", "0")
}

pub(super) async fn ipv6_blackhole_missing(t: &mut Target, _: &Switches) -> Result<()> {
    let node = t.pod_facts(CLIENT_POD)?.node.clone();
    let block = (t
        .facts
        .node(&node)
        .and_then(|n| n.ipv6_blocks.first().copied()))
    .ok_or_else(|| Error::NotFound(format!("{node} has no IPv6 block")))?;
    ip(&t.host(&node)?, &format!("-6 route del blackhole {block}")).await
}

pub(super) async fn ipv6_routed_plain_while_pool_says_vxlan(
    t: &mut Target,
    _: &Switches,
) -> Result<()> {
    // Each node routes the other's IPv6 blocks straight over ens192, as if BIRD had programmed
    // them, instead of over vxlan-v6.calico.
    let nodes = t.facts.nodes.clone();
    for here in &nodes {
        for other in nodes.iter().filter(|n| n.name != here.name) {
            let via = other
                .ipv6_address
                .ok_or_else(|| Error::NotFound(format!("{} has no IPv6 address", other.name)))?;
            for block in &other.ipv6_blocks {
                let line = format!("-6 route replace {block} via {via} dev ens192");
                ip(&t.host(&here.name)?, &line).await?;
            }
        }
    }
    Ok(())
}

pub(super) async fn vxlan_v6_mtu_too_small(t: &mut Target, _: &Switches) -> Result<()> {
    // A hand-set VXLANMTUV6 below the pods' MTU. (Larger than 1430 the kernel refuses for
    // VXLAN over IPv6 on a 1500-byte underlay.)
    ip(&t.host_of(CLIENT_POD)?, "link set vxlan-v6.calico mtu 1400").await
}
