//! claims.md "Proxy ARP": the host end answers for 169.254.1.1 with ee:ee:ee:ee:ee:ee.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HOST_END_MAC, LINK_LOCAL_GATEWAY};
use calico_conformance::expect::frames::{self, Frames, Match};
use calico_conformance::expect::neighbour;
use calico_conformance::target::{CLIENT_POD, SERVER_POD};
use std::net::Ipv4Addr;

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

/// Who sends the ping that makes ARP happen on a pod's host end.
#[derive(Clone, Copy)]
enum Asker {
    /// The pod, to this address, its neighbour table flushed first.
    Pod(Ipv4Addr),
    /// The host, to the pod's address, its entry for it flushed first.
    Host(Ipv4Addr),
}

/// Captures on the pod's host end, flushes the asker's neighbour entry and pings until every
/// one of `asked` is seen (or the deadline); the ARP frames of the capture.
async fn arp_on_host_end(
    cx: &Cx<'_>,
    pair: &VethPair,
    asker: Asker,
    asked: &[Match],
) -> Result<Frames, Failure> {
    let cali = pair.host_end_name()?;
    let (from, to) = match asker {
        Asker::Pod(to) => (&pair.pod_place, to),
        Asker::Host(ip) => (&pair.host_place, ip),
    };
    let ip = to.to_string();
    let entries = match asker {
        Asker::Pod(_) => vec!["dev", "eth0"],
        Asker::Host(_) => vec!["to", &ip, "dev", cali],
    };
    // Capture first: traffic of the pod's own (a retransmitted SYN-ACK) may re-resolve the
    // entry right after the flush, and that resolution is the one to see.
    let capture = cx.capture(&pair.host_place, cali, "arp").await?;
    from.run_ok(&[&["ip", "-4", "neigh", "flush"], entries.as_slice()].concat())
        .await?;
    let replies = from.ping(to.into(), 1, TRAFFIC_DEADLINE).await;
    cx.wait_for(&capture, all_seen(asked)).await;
    let arp = cx.frames(capture, &Match::arp()).await;
    replies?;
    Ok(arp)
}

/// ARP-1: with its neighbour table flushed, the pod asks `who-has 169.254.1.1 tell <podIP>`
/// and the host end answers `169.254.1.1 is-at ee:ee:ee:ee:ee:ee`.
pub async fn arp_1_gateway_answered_by_proxy(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let peer = cx.facts_of(peer_of(&pod.name))?;
    let pair = cx.veth_pair(&pod.name).await?;
    let asked = [
        Match::arp_request(LINK_LOCAL_GATEWAY, Some(pod.ip)),
        Match::arp_reply(LINK_LOCAL_GATEWAY, HOST_END_MAC),
    ];
    let arp = arp_on_host_end(cx, &pair, Asker::Pod(peer.ip), &asked).await?;
    cx.expect(frames::seen(&arp, &asked))
}

/// ARP-2: after traffic, the pod's neighbour entry for 169.254.1.1 is ee:ee:ee:ee:ee:ee,
/// REACHABLE/STALE/DELAY, never PERMANENT.
pub async fn arp_2_dynamic_gateway_neighbour(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_place()?;
    let peer = cx.facts_of(peer_of(cx.pod_name()?))?;
    cx.ping(&pod, peer.ip.into(), 1).await?;
    let neigh = cx.neighbours(&pod).await?;
    let gateway = LINK_LOCAL_GATEWAY.into();
    cx.expect(neighbour(&neigh, gateway, "eth0", HOST_END_MAC))
}

/// ARP-3: the host asks `who-has <podIP>` on the cali link and the pod answers with its eth0
/// MAC.
pub async fn arp_3_host_resolves_pod(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let pair = cx.veth_pair(&pod.name).await?;
    let asked = [
        Match::arp_request(pod.ip, None),
        Match::arp_reply(pod.ip, pair.eth0_mac()?),
    ];
    let arp = arp_on_host_end(cx, &pair, Asker::Host(pod.ip), &asked).await?;
    cx.expect(frames::seen(&arp, &asked).because("the pod's eth0 answers"))
}
