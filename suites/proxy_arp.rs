//! claims.md "Proxy ARP": the host end answers for 169.254.1.1 with ee:ee:ee:ee:ee:ee.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HOST_END_MAC, HOST_END_MAC_STR, LINK_LOCAL_GATEWAY};
use calico_conformance::observe::{
    self,
    packet::{ArpOp, Frame, mac_str},
};
use calico_conformance::target::{CLIENT_POD, SERVER_POD};
use std::net::{IpAddr, Ipv4Addr};

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "ARP-1",
            "The pod's ARP request for 169.254.1.1 is answered with ee:ee:ee:ee:ee:ee",
            Per::EachPod,
            arp_1_gateway_answered_by_proxy,
            exclusive
        ),
        claim!(
            "ARP-2",
            "The pod then holds a dynamic neighbour entry 169.254.1.1 -> ee:ee:ee:ee:ee:ee",
            Per::EachPod,
            arp_2_dynamic_gateway_neighbour
        ),
        claim!(
            "ARP-3",
            "The host resolves the pod's IP on the cali link, and the pod answers with its own MAC",
            Per::EachPod,
            arp_3_host_resolves_pod,
            exclusive
        ),
    ]
}

/// The pod a pod sends traffic to: the server, or (for the server itself) the client.
fn peer_of(pod: &str) -> &'static str {
    if pod == SERVER_POD {
        CLIENT_POD
    } else {
        SERVER_POD
    }
}

fn is_request(f: &Frame, target: Ipv4Addr, sender: Ipv4Addr) -> bool {
    f.arp()
        .is_some_and(|a| a.op == ArpOp::Request && a.target_ip == target && a.sender_ip == sender)
}

fn is_reply(f: &Frame, sender_ip: Ipv4Addr, sender_mac: [u8; 6]) -> bool {
    f.arp().is_some_and(|a| {
        a.op == ArpOp::Reply
            && a.sender_ip == sender_ip
            && a.sender_mac == sender_mac
            && f.eth.is_none_or(|e| e.src == sender_mac)
    })
}

/// Waits until the capture shows `answered` (or its deadline), stops it, fails if the traffic
/// that triggered the ARP could not be sent, and returns the capture's ARP frames.
async fn arp_exchange<T>(
    cx: &Cx<'_>,
    capture: calico_conformance::capture::Capture,
    traffic: Result<T, calico_conformance::Error>,
    answered: impl Fn(&[Frame]) -> bool,
) -> Result<Vec<Frame>, Failure> {
    cx.wait_for(&capture, answered).await;
    let seen = cx.finish(capture).await;
    traffic?;
    Ok(seen
        .frames
        .into_iter()
        .filter(|f| f.arp().is_some())
        .collect())
}

/// ARP-1: with its neighbour table flushed, the pod asks `who-has 169.254.1.1 tell <podIP>`
/// and the host end answers `169.254.1.1 is-at ee:ee:ee:ee:ee:ee`.
pub async fn arp_1_gateway_answered_by_proxy(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let peer = cx.facts_of(peer_of(&facts.name))?;
    let pair = veth_pair(cx, &facts.name).await?;
    let cali = pair.host_end()?.link.ifname.clone();
    pair.pod_place
        .run_ok(&["ip", "-4", "neigh", "flush", "dev", "eth0"])
        .await?;
    let capture = cx.capture(&pair.host_place, &cali, "arp").await?;
    let replies = pair.pod_place.ping(peer.ip, 1, TRAFFIC_DEADLINE).await;
    let answered = |frames: &[Frame]| {
        frames
            .iter()
            .any(|f| is_request(f, LINK_LOCAL_GATEWAY, facts.ip))
            && frames
                .iter()
                .any(|f| is_reply(f, LINK_LOCAL_GATEWAY, HOST_END_MAC))
    };
    let arp = arp_exchange(cx, capture, replies, answered).await?;
    ensure(
        answered(&arp),
        format!(
            "on {cali}: who-has 169.254.1.1 tell {}, then 169.254.1.1 is-at {HOST_END_MAC_STR} sent from {HOST_END_MAC_STR}",
            facts.ip
        ),
        format!("ARP on {cali}: {}", show_frames(&arp)),
    )?;
    Ok(Verdict::Verified)
}

/// ARP-2: after traffic, the pod's neighbour entry for 169.254.1.1 is ee:ee:ee:ee:ee:ee,
/// REACHABLE/STALE/DELAY, never PERMANENT.
pub async fn arp_2_dynamic_gateway_neighbour(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let peer = cx.facts_of(peer_of(&facts.name))?;
    let pod = cx.target.pod(&facts.name)?;
    pod.ping(peer.ip, 1, TRAFFIC_DEADLINE).await?;
    let neigh = observe::neighbours(&pod).await?;
    cx.evidence.observed(&neigh);
    let gw = IpAddr::V4(LINK_LOCAL_GATEWAY);
    let entry = neigh
        .value
        .iter()
        .find(|n| n.dst == gw && n.dev.as_deref() == Some("eth0"));
    let Some(entry) = entry else {
        return Err(differs(
            "a neighbour entry 169.254.1.1 dev eth0",
            format!(
                "no entry; neighbours: {}",
                neigh
                    .value
                    .iter()
                    .map(|n| n.dst.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let shown = format!(
        "169.254.1.1 lladdr {} state {}",
        entry.lladdr.as_deref().unwrap_or("none"),
        entry.state.join(",")
    );
    ensure(
        entry.mac() == Some(HOST_END_MAC)
            && !entry.has_state("PERMANENT")
            && ["REACHABLE", "STALE", "DELAY"]
                .iter()
                .any(|s| entry.has_state(s)),
        format!(
            "169.254.1.1 lladdr {HOST_END_MAC_STR}, state REACHABLE, STALE or DELAY (dynamic, never PERMANENT)"
        ),
        shown,
    )?;
    Ok(Verdict::Verified)
}

/// ARP-3: the host asks `who-has <podIP>` on the cali link and the pod answers with its eth0
/// MAC.
pub async fn arp_3_host_resolves_pod(cx: &Cx<'_>) -> Outcome {
    let facts = cx.pod_facts()?;
    let pair = veth_pair(cx, &facts.name).await?;
    let cali = pair.host_end()?.link.ifname.clone();
    let pod_mac = pair
        .eth0
        .link
        .mac()
        .ok_or_else(|| Failure::Harness("the pod's eth0 has no MAC".into()))?;
    let ip = facts.ip.to_string();
    pair.host_place
        .run_ok(&["ip", "-4", "neigh", "flush", "to", &ip, "dev", &cali])
        .await?;
    let capture = cx.capture(&pair.host_place, &cali, "arp").await?;
    let replies = pair.host_place.ping(facts.ip, 1, TRAFFIC_DEADLINE).await;
    let request = |f: &Frame| {
        f.arp()
            .is_some_and(|a| a.op == ArpOp::Request && a.target_ip == facts.ip)
    };
    let answered = |frames: &[Frame]| {
        frames.iter().any(request) && frames.iter().any(|f| is_reply(f, facts.ip, pod_mac))
    };
    let arp = arp_exchange(cx, capture, replies, answered).await?;
    ensure(
        answered(&arp),
        format!(
            "on {cali}: who-has {ip}, answered {ip} is-at {} (the pod's eth0)",
            mac_str(&pod_mac)
        ),
        format!("ARP on {cali}: {}", show_frames(&arp)),
    )?;
    Ok(Verdict::Verified)
}
