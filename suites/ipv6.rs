//! claims.md "IPv6 and dual stack" (IP6-1..6): the IPv6 half of the same veth, as Calico's
//! CNI plugin wires it (`dataplane_linux.go`): DAD off on both ends, the pod's routes via the
//! host end's own link-local address instead of 169.254.1.1, proxy NDP instead of proxy ARP,
//! a /128 per pod on the host. Not applicable where the cluster has no IPv6 pool.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HOST_END_MAC, HTTP_PORT, VXLAN_PORT, article_body};
use calico_conformance::expect::frames::{self, Frames, Match};
use calico_conformance::expect::route::{self, RouteSpec};
use calico_conformance::expect::{body, hop_limit, link, neighbour, sysctls6};
use calico_conformance::facts::PodFacts;
use calico_conformance::observe::sysctl::iface_path6;
use calico_conformance::place::Place;
use calico_conformance::ports::source_port;
use calico_conformance::target::{CLIENT_POD, REMOTE_POD, SERVER_POD};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "IP6-1",
            "The pod's eth0 holds one global IPv6 address, /128, equal to the API's IPv6 pod IP",
            Per::EachPod,
            ip6_1_one_global_128,
            needs Ipv6Pool
        ),
        claim!(
            "IP6-2",
            "The pod's IPv6 default route goes via the host end's link-local address",
            Per::EachPod,
            ip6_2_default_via_host_end_link_local,
            needs Ipv6Pool
        ),
        claim!(
            "IP6-3",
            "The host end is set up for IPv6",
            Per::EachPod,
            ip6_3_host_end_set_up,
            needs Ipv6Pool
        ),
        claim!(
            "IP6-4",
            "The pod's neighbour solicitation for its gateway is answered with ee:ee:ee:ee:ee:ee",
            Per::EachPod,
            ip6_4_gateway_solicitation_answered,
            exclusive,
            needs Ipv6Pool
        ),
        claim!(
            "IP6-5",
            "The host routes each local pod's /128 to its cali link and blackholes its own IPv6 blocks",
            Per::EachPod,
            ip6_5_host_routes_and_blackholes,
            needs Ipv6Pool
        ),
        claim!(
            "IP6-6",
            "IPv6 pod-to-pod traffic is routed, unchanged, over the pool's encapsulation",
            Per::Target,
            ip6_6_routed_unchanged,
            needs Ipv6Pool
        ),
    ]
}

/// The pod's IPv6 address; a pod the API gives none (IP6-1 fails for it) is a harness failure
/// for the claims that need one.
fn ipv6_of(pod: &PodFacts) -> Result<Ipv6Addr, Failure> {
    pod.ipv6.ok_or_else(|| {
        Failure::Harness(format!(
            "pod {}/{} has no IPv6 address in status.podIPs on a dual-stack cluster (see IP6-1)",
            pod.namespace, pod.name
        ))
    })
}

/// The pod a pod sends IPv6 traffic to: the server, or (for the server itself) the client.
fn peer_of(pod: &str) -> &'static str {
    if pod == SERVER_POD {
        CLIENT_POD
    } else {
        SERVER_POD
    }
}

/// IP6-1: eth0 holds exactly one scope-global address, `<podIPv6>/128` as `status.podIPs`
/// says, and DAD is off on it (`accept_dad=0`).
pub async fn ip6_1_one_global_128(cx: &Cx<'_>) -> Outcome {
    let (pod, place) = (cx.pod_facts()?, cx.pod_place()?);
    let ifs = cx.interfaces(&place).await?;
    cx.expect(link::global_v6(link::interface(&ifs, "eth0")?, pod.ipv6).judging_output(&ifs))?;
    let dad = cx
        .sysctls(&place, &[iface_path6("eth0", "accept_dad")])
        .await?;
    cx.expect(sysctls6(&dad, "eth0", &[("accept_dad", "0")]))
}

/// IP6-2: the pod's only IPv6 default route is `default via <the host end's fe80:: address>
/// dev eth0` (fe80::ecee:eeff:feee:eeee for MAC ee:ee:ee:ee:ee:ee with EUI-64 addresses).
pub async fn ip6_2_default_via_host_end_link_local(cx: &Cx<'_>) -> Outcome {
    let pair = cx.veth_pair(cx.pod_name()?).await?;
    let gateway = link::link_local_v6(pair.host_end()?)?;
    let routes = cx.routes6(&pair.pod_place).await?;
    cx.expect(route::only(&routes, RouteSpec::pod_default6(gateway)))
}

/// IP6-3: `disable_ipv6=0`, `proxy_ndp=1`, `forwarding=1`, `accept_dad=0` on the host end,
/// which holds no global IPv6 address.
pub async fn ip6_3_host_end_set_up(cx: &Cx<'_>) -> Outcome {
    let pair = cx.veth_pair(cx.pod_name()?).await?;
    let cali = pair.host_end_name()?;
    let want = [
        ("disable_ipv6", "0"),
        ("proxy_ndp", "1"),
        ("forwarding", "1"),
        ("accept_dad", "0"),
    ];
    let paths: Vec<String> = want
        .iter()
        .map(|(leaf, _)| iface_path6(cali, leaf))
        .collect();
    let observed = cx.sysctls(&pair.host_place, &paths).await?;
    cx.expect(sysctls6(&observed, cali, &want))?;
    cx.expect(link::no_global_v6(pair.host_end()?).judging_output(&pair.host_interfaces))
}

/// Captures ICMPv6 on the host end, flushes the pod's IPv6 neighbours and pings `peer` until
/// every one of `asked` is seen (or the deadline); the NDP frames of the capture.
async fn ndp_on_host_end(
    cx: &Cx<'_>,
    pair: &VethPair,
    peer: Ipv6Addr,
    asked: &[Match],
) -> Result<Frames, Failure> {
    // Capture first, as ARP-1 does: the pod's own traffic may re-resolve right after the flush.
    let capture = cx
        .capture(&pair.host_place, pair.host_end_name()?, "icmp6")
        .await?;
    (pair.pod_place)
        .run_ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"])
        .await?;
    let replies = cx.ping(&pair.pod_place, peer.into(), 1).await;
    cx.wait_for(&capture, all_seen(asked)).await;
    let ndp = cx.frames(capture, &Match::ndp()).await;
    replies?;
    Ok(ndp)
}

/// The next hop of the pod's IPv6 default route: the gateway it solicits.
async fn default_gateway6(cx: &Cx<'_>, pod: &Place) -> Result<Ipv6Addr, Failure> {
    let (check, gateway) = route::default_gateway6(&cx.routes6(pod).await?);
    cx.expect(check)?;
    gateway.ok_or_else(|| Failure::Harness("a passed gateway check has no gateway".into()))
}

/// IP6-4: with its IPv6 neighbours flushed, the pod solicits the gateway of its default route
/// and the host end advertises it from ee:ee:ee:ee:ee:ee (captured on the host end); the pod
/// then holds a dynamic, never PERMANENT, entry for it.
pub async fn ip6_4_gateway_solicitation_answered(cx: &Cx<'_>) -> Outcome {
    let peer = ipv6_of(cx.facts_of(peer_of(cx.pod_name()?))?)?;
    let pair = cx.veth_pair(cx.pod_name()?).await?;
    let gateway = default_gateway6(cx, &pair.pod_place).await?;
    let asked = [
        Match::ndp_solicit(gateway),
        Match::ndp_advert(gateway, HOST_END_MAC),
    ];
    let ndp = ndp_on_host_end(cx, &pair, peer, &asked).await?;
    cx.expect(frames::seen(&ndp, &asked))?;
    let neighbours = cx.neighbours6(&pair.pod_place).await?;
    cx.expect(neighbour(&neighbours, gateway.into(), "eth0", HOST_END_MAC))
}

/// The IPv6 blocks affine to `node`; a harness failure when the target names none.
fn ipv6_blocks<'a>(cx: &Cx<'a>, node: &str) -> Result<&'a [Ipv6Net], Failure> {
    match cx.node_facts(node)?.ipv6_blocks.as_slice() {
        [] => Err(Failure::Harness(format!(
            "the target names no IPv6 block affine to {node}"
        ))),
        blocks => Ok(blocks),
    }
}

/// IP6-5: on the pod's node the only route to `<podIPv6>/128` is `dev <its host end>`, and
/// every IPv6 block affine to the node is a blackhole.
pub async fn ip6_5_host_routes_and_blackholes(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_facts()?;
    let (ip, pair) = (ipv6_of(pod)?, cx.veth_pair(&pod.name).await?);
    let routes = cx.routes6(&pair.host_place).await?;
    cx.expect(route::only(
        &routes,
        RouteSpec::to_pod6(ip, pair.host_end_name()?),
    ))?;
    for block in ipv6_blocks(cx, &pod.node)? {
        cx.expect(route::some(&routes, RouteSpec::blackhole6(*block)))?;
    }
    Ok(())
}

/// IP6-6: ping6 to the server from test-tools (same node, hop limit 63) and from
/// test-tools-remote (across nodes, 62); the echoes keep both pod addresses on the server's
/// host end and, across nodes, cross the underlay as the IPv6 pool says (VXLAN over the nodes'
/// IPv6 addresses, or plain). Local targets also GET the article's body over IPv6.
pub async fn ip6_6_routed_unchanged(cx: &Cx<'_>) -> Outcome {
    exchange6(cx, CLIENT_POD, 63, false).await?;
    match Requirement::TwoNodes.unmet(cx.target)? {
        None => exchange6(cx, REMOTE_POD, 62, true).await,
        Some(why) => {
            cx.evidence.add("across nodes not checked.txt", why);
            Ok(())
        }
    }
}

/// One IPv6 exchange from pod `from` to the server: echoes with hop limit `hops` captured on
/// the server's host end (and on `from`'s node's underlay when `across`), then HTTP over IPv6
/// where the server listens on IPv6 (the lab's and a topology file's; the article's python 2
/// server on a cluster listens on IPv4 only).
async fn exchange6(cx: &Cx<'_>, from: &str, hops: u8, across: bool) -> Outcome {
    let (a, b) = (
        ipv6_of(cx.facts_of(from)?)?,
        ipv6_of(cx.facts_of(SERVER_POD)?)?,
    );
    let (place, server) = (cx.target.pod(from)?, cx.veth_pair(SERVER_POD).await?);
    let echoes = Match::icmpv6_echo_between(a, b);
    let bpf = format!("icmp6 or udp port {VXLAN_PORT}");
    let on_cali = cx
        .capture(&server.host_place, server.host_end_name()?, &bpf)
        .await?;
    let underlay = match across {
        true => Some(underlay_capture(cx, from, &bpf).await?),
        false => None,
    };
    let replies = cx.ping(&place, b.into(), 3).await?;
    cx.wait_for(&on_cali, at_least_frames(2, &echoes)).await;
    let on_cali = cx.frames(on_cali, &echoes).await;
    cx.expect(
        hop_limit(b, &replies, hops).because(format!("64 less {} routed hop(s)", 64 - hops)),
    )?;
    cx.expect(frames::seen(&on_cali, &[echoes]).because("the pod addresses are unchanged"))?;
    if let Some((capture, encapsulated)) = underlay {
        let inner = Match::inner6_between(a, b);
        cx.wait_for(&capture, at_least_frames(2, &inner)).await;
        cx.expect(frames::every(
            &cx.frames(capture, &inner).await,
            &encapsulated,
        ))?;
    }
    http6(cx, &place, b).await
}

/// A capture on `from`'s node's underlay, and the encapsulation the IPv6 pool calls for
/// between that node and the server's.
async fn underlay_capture(
    cx: &Cx<'_>,
    from: &str,
    bpf: &str,
) -> Result<(calico_conformance::capture::Capture, Match), Failure> {
    let (from, server) = (cx.facts_of(from)?, cx.facts_of(SERVER_POD)?);
    let (src, dst) = (cx.node_facts(&from.node)?, cx.node_facts(&server.node)?);
    let server6 = ipv6_of(server)?;
    let pool = (cx.target.facts.ipv6_pool_of(server6))
        .ok_or_else(|| Failure::Harness(format!("no IPv6 pool holds {server6}")))?;
    let mode = pool
        .encapsulation
        .between(super::host_routes::same_subnet(src, dst));
    let node6 = |n: &calico_conformance::facts::NodeFacts| {
        n.ipv6_address.ok_or_else(|| {
            Failure::Harness(format!("the target names no IPv6 address of {}", n.name))
        })
    };
    let nodes = (node6(src)?, node6(dst)?);
    let underlay = src
        .underlay
        .as_deref()
        .ok_or_else(|| Failure::Harness(format!("no underlay interface known for {}", src.name)))?;
    let capture = cx
        .capture(&cx.target.host(&src.name)?, underlay, bpf)
        .await?;
    Ok((capture, Match::encapsulated6(mode, nodes)))
}

/// `GET http://[server]:8080/` from `place` answers the article's body, on local targets
/// (whose server listens on IPv6); a cluster's python 2 server does not, which the evidence
/// says.
async fn http6(cx: &Cx<'_>, place: &calico_conformance::place::Place, server: Ipv6Addr) -> Outcome {
    if cx.target.pod(SERVER_POD)?.netns().is_none() {
        let why = "HTTP over IPv6 not sent: the article's server (python 2 SimpleHTTPServer) \
                   listens on IPv4 only; the echoes above are the IPv6 traffic";
        cx.evidence.add("http over ipv6 not sent.txt", why);
        return Ok(());
    }
    let port = source_port()?;
    let got = place
        .http_get(server.into(), HTTP_PORT, port, TRAFFIC_DEADLINE)
        .await?;
    cx.expect(body(&got, &article_body(SERVER_POD)).because("over IPv6"))
}
