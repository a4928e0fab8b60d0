//! claims.md "The veth pair": eth0's peer is a `cali*` link on the host with
//! ee:ee:ee:ee:ee:ee, no IPv4 address, and proxy ARP.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HOST_END_MAC_STR, host_end_name};
use calico_conformance::observe::{self, sysctl};

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "VETH-1",
            "The pod's eth0 is one end of a veth pair whose other end is on the host",
            Per::EachPod,
            veth_1_eth0_peer_on_host
        ),
        claim!(
            "VETH-2",
            "The host end is named cali + 11 hex characters",
            Per::EachPod,
            veth_2_host_end_name
        ),
        claim!(
            "VETH-3",
            "The host end carries MAC ee:ee:ee:ee:ee:ee and no IPv4 address",
            Per::EachPod,
            veth_3_host_end_mac_no_ipv4
        ),
        claim!(
            "VETH-4",
            "The host end answers ARP by proxy",
            Per::EachPod,
            veth_4_host_end_proxy_arp
        ),
    ]
}

/// VETH-1: eth0's iflink names a host link of kind veth whose own iflink is eth0's ifindex.
pub async fn veth_1_eth0_peer_on_host(cx: &Cx<'_>) -> Outcome {
    let pair = veth_pair(cx, cx.pod_name()?).await?;
    ensure(
        pair.eth0.link.kind.as_deref() == Some("veth"),
        "eth0 of kind veth",
        format!(
            "eth0 of kind {}",
            pair.eth0
                .link
                .kind
                .as_deref()
                .unwrap_or("unknown (no linkinfo)")
        ),
    )?;
    let host_end = pair.host_end()?;
    ensure(
        host_end.link.kind.as_deref() == Some("veth"),
        format!("host link #{} of kind veth", host_end.link.ifindex),
        format!(
            "{} of kind {}",
            host_end.link.ifname,
            host_end.link.kind.as_deref().unwrap_or("unknown")
        ),
    )?;
    ensure(
        host_end.link.link_index == Some(pair.eth0.link.ifindex),
        format!(
            "{}'s iflink = eth0's ifindex {}",
            host_end.link.ifname, pair.eth0.link.ifindex
        ),
        format!(
            "{}'s iflink = {}",
            host_end.link.ifname,
            host_end
                .link
                .link_index
                .map(|i| i.to_string())
                .unwrap_or("none".into())
        ),
    )?;
    Ok(Verdict::Verified)
}

/// VETH-2: the host end is `cali` + the first 11 hex characters of SHA-1 of
/// `"<namespace>.<pod>"`.
pub async fn veth_2_host_end_name(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let pair = veth_pair(cx, &facts.name).await?;
    let host_end = pair.host_end()?;
    let expected = host_end_name(&facts.namespace, &facts.name);
    ensure(
        host_end.link.ifname == expected,
        format!(
            "{expected} (cali + sha1(\"{}.{}\")[:11])",
            facts.namespace, facts.name
        ),
        &host_end.link.ifname,
    )?;
    Ok(Verdict::Verified)
}

/// VETH-3: the host end has MAC ee:ee:ee:ee:ee:ee, is UP, holds no IPv4 address, and has the
/// pod's MTU.
pub async fn veth_3_host_end_mac_no_ipv4(cx: &Cx<'_>) -> Outcome {
    let pair = veth_pair(cx, cx.pod_name()?).await?;
    let h = pair.host_end()?;
    let name = &h.link.ifname;
    let mac = h.link.address.as_deref().unwrap_or("none");
    ensure(
        mac.eq_ignore_ascii_case(HOST_END_MAC_STR),
        format!("{name} MAC {HOST_END_MAC_STR}"),
        format!("{name} MAC {mac}"),
    )?;
    ensure(
        h.link.is_up(),
        format!("{name} UP"),
        format!("{name} flags [{}]", h.link.flags.join(",")),
    )?;
    let v4: Vec<String> = h
        .ipv4()
        .map(|a| format!("{}/{}", a.local, a.prefixlen))
        .collect();
    ensure(
        v4.is_empty(),
        format!("no IPv4 address on {name}"),
        v4.join(", "),
    )?;
    ensure(
        h.link.mtu == pair.eth0.link.mtu,
        format!("{name} MTU equal to the pod's {}", pair.eth0.link.mtu),
        format!("{name} MTU {}", h.link.mtu),
    )?;
    Ok(Verdict::Verified)
}

/// VETH-4: proxy_arp=1, proxy_delay=0, forwarding=1, route_localnet=1 on the host end.
pub async fn veth_4_host_end_proxy_arp(cx: &Cx<'_>) -> Outcome {
    let pair = veth_pair(cx, cx.pod_name()?).await?;
    let name = pair.host_end()?.link.ifname.clone();
    let values = observe::sysctls(&pair.host_place, &sysctl::host_end_paths(&name)).await?;
    cx.evidence.observed(&values);
    let wanted = [
        ("conf.proxy_arp", "1"),
        ("neigh.proxy_delay", "0"),
        ("conf.forwarding", "1"),
        ("conf.route_localnet", "1"),
    ];
    let mut wrong = Vec::new();
    for (leaf, want) in wanted {
        let got = values.value.iface_value(&name, leaf);
        if got != Some(want) {
            wrong.push(format!(
                "net.ipv4.{}={}",
                leaf.replacen('.', &format!(".{name}."), 1),
                got.unwrap_or("missing")
            ));
        }
    }
    ensure(
        wrong.is_empty(),
        format!(
            "net.ipv4.conf.{name}.proxy_arp=1, net.ipv4.neigh.{name}.proxy_delay=0, \
             net.ipv4.conf.{name}.forwarding=1, net.ipv4.conf.{name}.route_localnet=1"
        ),
        wrong.join(", "),
    )?;
    Ok(Verdict::Verified)
}
