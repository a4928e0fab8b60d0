//! claims.md "Pod network identity": lo and eth0, one /32, the MTU.

use super::support::*;
use crate::claim;
use calico_conformance::observe::{self, ip::Family};
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
    let pod = cx.target.pod(cx.pod_name()?)?;
    let links = observe::links(&pod).await?;
    cx.evidence.observed(&links);
    for name in ["lo", "eth0"] {
        let link = links.value.iter().find(|l| l.ifname == name);
        ensure(
            link.is_some_and(|l| l.is_up()),
            format!("{name} present and UP"),
            match link {
                None => format!("no {name}; links: {}", link_names(&links.value)),
                Some(l) => format!("{name} flags [{}]", l.flags.join(",")),
            },
        )?;
    }
    Ok(Verdict::Verified)
}

fn link_names(links: &[calico_conformance::observe::ip::Link]) -> String {
    links
        .iter()
        .map(|l| l.ifname.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// POD-I2: eth0 holds `<podIP>/32` scope global and no other IPv4 address; a dual-stack pod
/// holds one global /128.
pub async fn pod_i2_eth0_single_slash32(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let pod = cx.target.pod(&facts.name)?;
    let ifs = observe::interfaces(&pod).await?;
    cx.evidence.observed(&ifs);
    let eth0 = ifs
        .value
        .iter()
        .find(|i| i.link.ifname == "eth0")
        .ok_or_else(|| differs("an eth0", names(&ifs.value)))?;
    let v4: Vec<String> = eth0
        .ipv4()
        .map(|a| format!("{}/{} scope {}", a.local, a.prefixlen, a.scope))
        .collect();
    let expected = format!("{}/32 scope global", facts.ip);
    ensure(
        v4 == [expected.clone()],
        format!(
            "exactly one IPv4 address on eth0: {expected} (status.podIP {})",
            facts.ip
        ),
        if v4.is_empty() {
            "no IPv4 address".to_string()
        } else {
            v4.join(", ")
        },
    )?;
    let v6: Vec<_> = eth0.global_v6().collect();
    if !v6.is_empty() {
        ensure(
            v6.len() == 1 && v6[0].prefixlen == 128 && v6[0].family == Family::Inet6,
            "one global IPv6 /128 (dual stack)",
            v6.iter()
                .map(|a| format!("{}/{}", a.local, a.prefixlen))
                .collect::<Vec<_>>()
                .join(", "),
        )?;
    }
    // Nothing else in the pod holds the pod IP.
    let others: Vec<&str> = ifs
        .value
        .iter()
        .filter(|i| i.link.ifname != "eth0" && i.holds(IpAddr::V4(facts.ip)))
        .map(|i| i.link.ifname.as_str())
        .collect();
    ensure(
        others.is_empty(),
        format!("{} only on eth0", facts.ip),
        format!("also on {}", others.join(", ")),
    )?;
    Ok(Verdict::Verified)
}

/// POD-I3: eth0's MTU equals its host end's and the MTU Calico computes for the pool's
/// encapsulation (or the MTU the cluster was configured with).
pub async fn pod_i3_mtu_matches_calico(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let pair = veth_pair(cx, &facts.name).await?;
    let host_end = pair.host_end()?;
    let pod_mtu = pair.eth0.link.mtu;
    ensure(
        pod_mtu == host_end.link.mtu,
        format!(
            "eth0 MTU equal to its host end {}'s MTU {}",
            host_end.link.ifname, host_end.link.mtu
        ),
        format!("eth0 MTU {pod_mtu}"),
    )?;
    let pool = cx
        .target
        .facts
        .pool_of(facts.ip)
        .ok_or_else(|| Failure::Harness(format!("no IP pool holds the pod IP {}", facts.ip)))?;
    let expected = match cx.target.facts.configured_mtu {
        Some(mtu) => (mtu, format!("the configured Calico MTU {mtu}")),
        None => {
            let node = cx
                .target
                .facts
                .node(&facts.node)
                .ok_or_else(|| Failure::Harness(format!("no facts for node {}", facts.node)))?;
            let underlay = pair
                .host_interfaces
                .iter()
                .find(|i| i.holds(IpAddr::V4(node.address)))
                .ok_or_else(|| {
                    Failure::Harness(format!(
                        "no interface on {} holds the node address {}",
                        pair.host_place.label(),
                        node.address
                    ))
                })?;
            let mtu = pool.encapsulation.pod_mtu(underlay.link.mtu);
            (
                mtu,
                format!(
                    "{mtu}: the underlay {}'s MTU {} less {} bytes of {} encapsulation",
                    underlay.link.ifname,
                    underlay.link.mtu,
                    pool.encapsulation.overhead(),
                    pool.encapsulation.as_str()
                ),
            )
        }
    };
    ensure(
        pod_mtu == expected.0,
        expected.1,
        format!("eth0 MTU {pod_mtu}"),
    )?;
    Ok(Verdict::Verified)
}
