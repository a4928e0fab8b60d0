//! claims.md "The veth pair": eth0's peer is a `cali*` link on the host with
//! ee:ee:ee:ee:ee:ee, no IPv4 address, and proxy ARP.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HOST_END_MAC, HOST_END_SYSCTLS, host_end_name};
use calico_conformance::expect::{Value, eq, link, sysctls};
use calico_conformance::observe::sysctl;

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

/// VETH-1: eth0's iflink names a host link (the check records its name and ifindex) of kind
/// veth whose own iflink is eth0's ifindex.
pub async fn veth_1_eth0_peer_on_host(cx: &Cx<'_>) -> Outcome {
    let pair = cx.veth_pair(cx.pod_name()?).await?;
    cx.expect(link::kind(&pair.eth0.link, "veth"))?;
    cx.expect(link::peer_check(&pair.host_interfaces, &pair.eth0.link))?;
    let host_end = &pair.host_end()?.link;
    cx.expect(link::kind(host_end, "veth"))?;
    cx.expect(link::iflink(host_end, pair.eth0.link.ifindex).because("eth0's ifindex"))
}

/// VETH-2: the host end is `cali` + the first 11 hex characters of SHA-1 of
/// `"<namespace>.<pod>"`.
pub async fn veth_2_host_end_name(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let pair = cx.veth_pair(&pod.name).await?;
    let want = Value::Name(host_end_name(&pod.namespace, &pod.name));
    let got = Value::Name(pair.host_end_name()?.to_string());
    let rule = format!("cali + sha1(\"{}.{}\")[:11]", pod.namespace, pod.name);
    cx.expect(eq("the host end's name", want, got).because(rule))
}

/// VETH-3: the host end has MAC ee:ee:ee:ee:ee:ee, is UP, holds no IPv4 address, and has the
/// pod's MTU.
pub async fn veth_3_host_end_mac_no_ipv4(cx: &Cx<'_>) -> Outcome {
    let pair = cx.veth_pair(cx.pod_name()?).await?;
    let host_end = pair.host_end()?;
    cx.expect(link::mac(&host_end.link, HOST_END_MAC))?;
    cx.expect(link::up(&host_end.link))?;
    cx.expect(link::ipv4(host_end, None))?;
    let pod_mtu = pair.eth0.link.mtu;
    cx.expect(link::mtu(&host_end.link, pod_mtu).because("the pod's eth0's MTU"))
}

/// VETH-4: proxy_arp=1, proxy_delay=0, forwarding=1, route_localnet=1 on the host end.
pub async fn veth_4_host_end_proxy_arp(cx: &Cx<'_>) -> Outcome {
    let pair = cx.veth_pair(cx.pod_name()?).await?;
    let name = pair.host_end_name()?;
    let values = cx
        .sysctls(&pair.host_place, &sysctl::host_end_paths(name))
        .await?;
    cx.expect(sysctls(&values, name, &HOST_END_SYSCTLS))
}
