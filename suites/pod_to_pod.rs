//! claims.md "Pod <-> pod": one routed hop, across both veth pairs, untranslated, never
//! touching a tunnel or the underlay.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{
    HOST_END_MAC, HTTP_PORT, IPIP_DEVICE, VXLAN_DEVICE, article_body,
};
use calico_conformance::expect::frames::{self, Frames, Match};
use calico_conformance::expect::{body, link, ttl};
use calico_conformance::observe::packet::Mac;
use calico_conformance::ports::source_port;
use calico_conformance::target::{CLIENT_POD, SERVER_POD};
use std::net::SocketAddrV4;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "P2P-1",
            "Pods on one node reach each other, one routed hop apart",
            Per::Target,
            p2p_1_same_node_ttl_63
        ),
        claim!(
            "P2P-2",
            "The article's request works end to end",
            Per::Target,
            p2p_2_http_get_body
        ),
        claim!(
            "P2P-3",
            "Pod-to-pod traffic crosses both pods' veth pairs",
            Per::Target,
            p2p_3_crosses_both_veths
        ),
        claim!(
            "P2P-4",
            "No address translation between pods",
            Per::Target,
            p2p_4_no_translation
        ),
        claim!(
            "P2P-5",
            "Same-node pod traffic never touches a tunnel or the underlay",
            Per::Target,
            p2p_5_no_tunnel_or_underlay
        ),
    ]
}

/// P2P-1: `ping` from test-tools to c2c-network-demo: replies with TTL 63.
pub async fn p2p_1_same_node_ttl_63(cx: &Cx<'_>) -> Outcome {
    let server = cx.facts_of(SERVER_POD)?;
    let replies = cx
        .ping(&cx.target.pod(CLIENT_POD)?, server.ip.into(), 3)
        .await?;
    cx.expect(ttl(server.ip, &replies, 63).because("64 less one routed hop"))
}

/// P2P-2: `GET http://<c2c podIP>:8080/` from test-tools answers the article's body.
pub async fn p2p_2_http_get_body(cx: &Cx<'_>) -> Outcome {
    let server = cx.facts_of(SERVER_POD)?;
    let client = cx.target.pod(CLIENT_POD)?;
    let got = client
        .http_get(
            server.ip.into(),
            HTTP_PORT,
            source_port()?,
            TRAFFIC_DEADLINE,
        )
        .await?;
    cx.expect(body(&got, &article_body(SERVER_POD)))
}

/// The P2P-2 request from test-tools to c2c-network-demo, captured on both host ends and on
/// the node's underlay and tunnels: recorded once, judged by P2P-3, P2P-4 and P2P-5.
pub struct PodExchange {
    client: SocketAddrV4,
    server: SocketAddrV4,
    client_mac: Mac,
    on_client_cali: Frames,
    on_server_cali: Frames,
    /// On the underlay, `vxlan.calico` and `tunl0`, those the node has.
    elsewhere: Vec<Frames>,
}

impl Recording for PodExchange {
    async fn record(cx: &Cx<'_>) -> Result<Self, Failure> {
        let (server, client) = (cx.facts_of(SERVER_POD)?, cx.facts_of(CLIENT_POD)?);
        let client_pair = cx.veth_pair(CLIENT_POD).await?;
        let server_pair = cx.veth_pair(SERVER_POD).await?;
        let (client_cali, server_cali) =
            (client_pair.host_end_name()?, server_pair.host_end_name()?);
        let client_mac = client_pair.eth0_mac()?;
        let host = &client_pair.host_place;
        let node = cx.node_facts(&client.node)?;
        let underlay = node.underlay.as_deref().ok_or_else(|| {
            Failure::Harness(format!(
                "the target does not name the underlay interface of {}",
                node.name
            ))
        })?;
        let src_port = source_port()?;
        let connection = Match::connection(src_port, HTTP_PORT);
        let bpf = format!("tcp port {src_port} or udp port 4789 or ip proto 4");
        let mut others = Vec::new();
        for dev in [underlay, VXLAN_DEVICE, IPIP_DEVICE] {
            if link::interface(&client_pair.host_interfaces, dev).is_ok() {
                others.push(cx.capture(host, dev, &bpf).await?);
            }
        }
        let tcp = format!("tcp port {src_port}");
        let a = cx.capture(host, client_cali, &tcp).await?;
        let b = cx
            .capture(&server_pair.host_place, server_cali, &tcp)
            .await?;
        let got = client_pair
            .pod_place
            .http_get(server.ip.into(), HTTP_PORT, src_port, TRAFFIC_DEADLINE)
            .await;
        cx.wait_for(&a, at_least_frames(4, &connection)).await;
        cx.wait_for(&b, at_least_frames(4, &connection)).await;
        let on_client_cali = cx.frames(a, &connection).await;
        let on_server_cali = cx.frames(b, &connection).await;
        let mut elsewhere = Vec::new();
        for capture in others {
            elsewhere.push(cx.frames(capture, &connection).await);
        }
        got?;
        Ok(PodExchange {
            client: SocketAddrV4::new(client.ip, src_port),
            server: SocketAddrV4::new(server.ip, HTTP_PORT),
            client_mac,
            on_client_cali,
            on_server_cali,
            elsewhere,
        })
    }
}

impl PodExchange {
    /// The connection's packets towards the server.
    fn towards_server(&self) -> Match {
        Match::tcp_ports(self.client.port(), self.server.port())
    }

    /// The connection's handshake as both host ends saw it (MTU-4 reads its MSS).
    pub(super) fn handshake(&self) -> Handshake {
        Handshake {
            client: self.client,
            client_pod: CLIENT_POD,
            server: self.server,
            server_pod: SERVER_POD,
            captured: [self.on_client_cali.clone(), self.on_server_cali.clone()],
        }
    }
}

/// P2P-3: the connection is on the client's host end (from the client's MAC to
/// ee:ee:ee:ee:ee:ee) and on the server's host end (from ee:ee:ee:ee:ee:ee).
pub async fn p2p_3_crosses_both_veths(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<PodExchange>().await?;
    let leaving_client = x.towards_server().eth(x.client_mac, HOST_END_MAC);
    cx.expect(frames::seen(&x.on_client_cali, &[leaving_client]))?;
    let reaching_server = x.towards_server().eth_from(HOST_END_MAC);
    cx.expect(frames::seen(&x.on_server_cali, &[reaching_server]))
}

/// P2P-4: on both host ends the connection's packets carry the two pod IPs, unchanged.
pub async fn p2p_4_no_translation(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<PodExchange>().await?;
    for on_cali in [&x.on_client_cali, &x.on_server_cali] {
        cx.expect(frames::every(
            on_cali,
            &Match::tcp_between(x.client, x.server),
        ))?;
    }
    Ok(())
}

/// P2P-5: nothing of the connection on the underlay, vxlan.calico or tunl0 — judged only when
/// the client's host end saw it.
pub async fn p2p_5_no_tunnel_or_underlay(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<PodExchange>().await?;
    cx.expect(frames::none_while_seen(&x.elsewhere, &x.on_client_cali))
}

/// A TCP handshake captured on both pods' host ends: the client and server, their pods, and
/// what each host end saw of the connection.
pub struct Handshake {
    pub client: SocketAddrV4,
    pub client_pod: &'static str,
    pub server: SocketAddrV4,
    pub server_pod: &'static str,
    pub captured: [Frames; 2],
}
