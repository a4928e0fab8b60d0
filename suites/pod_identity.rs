//! claims.md "Pod network identity": lo and eth0, one /32, the MTU.

use super::support::*;
use crate::claim;
use calico_conformance::expect::link;
use calico_conformance::facts::PodFacts;
use calico_conformance::observe::{Observed, ip::Interface};
use std::net::IpAddr;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "POD-I1",
            "The pod has lo and eth0",
            Per::EachPod,
            pod_i1_lo_and_eth0_up
        ),
        claim!(
            "POD-I2",
            "eth0 holds exactly one IPv4 address, with prefix /32, equal to the API's status.podIP",
            Per::EachPod,
            pod_i2_eth0_single_slash32
        ),
        claim!(
            "POD-I3",
            "The pod MTU matches the node's Calico MTU",
            Per::EachPod,
            pod_i3_mtu_matches_calico
        ),
    ]
}

/// POD-I1: lo and eth0 are present and UP (tunl0 is informational only).
pub async fn pod_i1_lo_and_eth0_up(cx: &Cx<'_>) -> Outcome {
    let links = cx.links(&cx.pod_place()?).await?;
    for name in ["lo", "eth0"] {
        cx.expect(link::up(link::find(&links, name)?))?;
    }
    Ok(())
}

/// POD-I2: eth0 holds `<podIP>/32` scope global and no other IPv4 address, and nothing else in
/// the pod holds the pod IP; a dual-stack pod holds one global /128.
pub async fn pod_i2_eth0_single_slash32(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let ifs = cx.interfaces(&cx.target.pod(&pod.name)?).await?;
    let eth0 = link::interface(&ifs, "eth0")?;
    let status = format!("status.podIP {}", pod.ip);
    cx.expect(link::ipv4(eth0, Some(pod.ip.into())).because(status))?;
    if eth0.global_v6().next().is_some() {
        cx.expect(link::one_global_v6(eth0, 128).because("dual stack"))?;
    }
    cx.expect(link::holders(&ifs, pod.ip.into(), &["eth0"]))
}

/// POD-I3: eth0's MTU equals its host end's and the MTU Calico computes for the pool's
/// encapsulation (or the MTU the cluster was configured with).
pub async fn pod_i3_mtu_matches_calico(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let pair = cx.veth_pair(&pod.name).await?;
    let host_end = &pair.host_end()?.link;
    let peer = format!("its host end {}'s MTU", host_end.ifname);
    cx.expect(link::mtu(&pair.eth0.link, host_end.mtu).because(peer))?;
    let (calico, why) = calico_mtu(cx, pod, &pair.host_interfaces)?;
    cx.expect(link::mtu(&pair.eth0.link, calico).because(why))
}

/// The MTU Calico gives the pods of `pod`'s node, and why: the configured one, or the underlay's
/// less the largest overhead of the enabled encapsulations — the pod's pool's, and VXLAN over
/// IPv6 when an IPv6 pool uses VXLAN (Felix's `determinePodMTU` takes the smallest of the
/// encapsulations' MTUs). (MTU-1 holds every Calico interface to it.)
pub(super) fn calico_mtu(
    cx: &Cx<'_>,
    pod: &PodFacts,
    host: &Observed<Vec<Interface>>,
) -> Result<(u32, String), Failure> {
    let facts = &cx.target.facts;
    let pool = facts
        .pool_of(pod.ip)
        .ok_or_else(|| Failure::Harness(format!("no IP pool holds the pod IP {}", pod.ip)))?;
    if let Some(mtu) = facts.configured_mtu {
        return Ok((mtu, format!("the configured Calico MTU {mtu}")));
    }
    let underlay = underlay_of(cx, &pod.node, host)?;
    let encap = pool.encapsulation;
    let v6 = (facts.ipv6_pools.iter().map(|p| p.encapsulation.overhead6())).max();
    let (overhead, what) = match v6 {
        Some(o) if o > encap.overhead() => (o, "VXLAN over IPv6 (the IPv6 pool's)"),
        _ => (encap.overhead(), encap.as_str()),
    };
    let why = format!(
        "the underlay {}'s MTU {} less {overhead} bytes of {what} encapsulation",
        underlay.link.ifname, underlay.link.mtu,
    );
    Ok((underlay.link.mtu.saturating_sub(overhead), why))
}

/// The interface of `node`'s `host` interfaces that holds the node's address.
pub(super) fn underlay_of<'a>(
    cx: &Cx<'_>,
    node: &str,
    host: &'a Observed<Vec<Interface>>,
) -> Result<&'a Interface, Failure> {
    let address = cx.node_facts(node)?.address;
    host.value
        .iter()
        .find(|i| i.holds(IpAddr::V4(address)))
        .ok_or_else(|| {
            Failure::Harness(format!(
                "no interface on {} holds the node address {address}",
                host.place
            ))
        })
}
