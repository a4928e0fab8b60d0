//! claims.md "Pod <-> pod": one routed hop, across both veth pairs, untranslated, never
//! touching a tunnel or the underlay.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{
    HOST_END_MAC, HOST_END_MAC_STR, HTTP_PORT, IPIP_DEVICE, VXLAN_DEVICE, article_body,
};
use calico_conformance::observe::packet::{Frame, mac_str};
use calico_conformance::ports::source_port;
use calico_conformance::target::{CLIENT_POD, SERVER_POD};
use std::net::Ipv4Addr;

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
    let client = cx.target.pod(CLIENT_POD)?;
    let expected = format!(
        "replies from {} with TTL 63 (64 less one routed hop)",
        server.ip
    );
    expect_ttl(cx, &client, server.ip, 63, expected).await
}

/// P2P-2: `GET http://<c2c podIP>:8080/` from test-tools answers the article's body.
pub async fn p2p_2_http_get_body(cx: &Cx<'_>) -> Outcome {
    let server = cx.facts_of(SERVER_POD)?;
    let client = cx.target.pod(CLIENT_POD)?;
    let body = client
        .http_get(server.ip, HTTP_PORT, source_port()?, TRAFFIC_DEADLINE)
        .await?;
    let expected = article_body(SERVER_POD);
    ensure(
        String::from_utf8_lossy(&body).trim_end() == expected,
        expected,
        format!("{:?}", String::from_utf8_lossy(&body)),
    )?;
    Ok(Verdict::Verified)
}

/// The P2P-2 request with captures on both host ends and on the node's underlay and tunnels.
struct Exchange {
    src_port: u16,
    client_ip: Ipv4Addr,
    server_ip: Ipv4Addr,
    client_mac: [u8; 6],
    client_cali: String,
    server_cali: String,
    on_client_cali: Vec<Frame>,
    on_server_cali: Vec<Frame>,
    /// (interface, frames of the connection seen there)
    elsewhere: Vec<(String, Vec<Frame>)>,
}

async fn exchange(cx: &Cx<'_>) -> Result<Exchange, Failure> {
    let server = cx.facts_of(SERVER_POD)?;
    let client = cx.facts_of(CLIENT_POD)?;
    let client_pair = veth_pair(cx, CLIENT_POD).await?;
    let server_pair = veth_pair(cx, SERVER_POD).await?;
    let client_cali = client_pair.host_end()?.link.ifname.clone();
    let server_cali = server_pair.host_end()?.link.ifname.clone();
    let client_mac = client_pair
        .eth0
        .link
        .mac()
        .ok_or_else(|| Failure::Harness("test-tools' eth0 has no MAC".into()))?;
    let host = &client_pair.host_place;
    let node = cx
        .target
        .facts
        .node(&client.node)
        .ok_or_else(|| Failure::Harness(format!("no facts for node {}", client.node)))?;
    let src_port = source_port()?;
    let bpf = format!("tcp port {src_port} or udp port 4789 or ip proto 4");
    let mut others = Vec::new();
    let underlay = node.underlay.clone().ok_or_else(|| {
        Failure::Harness(format!(
            "the target does not name the underlay interface of {}",
            node.name
        ))
    })?;
    for dev in [underlay.as_str(), VXLAN_DEVICE, IPIP_DEVICE] {
        if client_pair
            .host_interfaces
            .iter()
            .any(|i| i.link.ifname == dev)
        {
            others.push((dev.to_string(), cx.capture(host, dev, &bpf).await?));
        }
    }
    let a = cx
        .capture(host, &client_cali, &format!("tcp port {src_port}"))
        .await?;
    let b = cx
        .capture(
            &server_pair.host_place,
            &server_cali,
            &format!("tcp port {src_port}"),
        )
        .await?;
    let body = client_pair
        .pod_place
        .http_get(server.ip, HTTP_PORT, src_port, TRAFFIC_DEADLINE)
        .await;
    let done = |f: &[Frame]| {
        f.iter()
            .filter(|f| tcp_ports(f, src_port, HTTP_PORT))
            .count()
            >= 4
    };
    cx.wait_for(&a, done).await;
    cx.wait_for(&b, done).await;
    let a = cx.finish(a).await;
    let b = cx.finish(b).await;
    let mut elsewhere = Vec::new();
    for (dev, c) in others {
        let r = cx.finish(c).await;
        let frames = r
            .frames
            .into_iter()
            .filter(|f| tcp_ports(f, src_port, HTTP_PORT))
            .collect();
        elsewhere.push((dev, frames));
    }
    body?;
    let keep = |frames: Vec<Frame>| -> Vec<Frame> {
        frames
            .into_iter()
            .filter(|f| tcp_ports(f, src_port, HTTP_PORT))
            .collect()
    };
    Ok(Exchange {
        src_port,
        client_ip: client.ip,
        server_ip: server.ip,
        client_mac,
        client_cali,
        server_cali,
        on_client_cali: keep(a.frames),
        on_server_cali: keep(b.frames),
        elsewhere,
    })
}

impl Exchange {
    fn towards_server(&self, f: &Frame) -> bool {
        f.tcp()
            .is_some_and(|(_, t)| t.src_port == self.src_port && t.dst_port == HTTP_PORT)
    }
}

/// P2P-3: the connection is on the client's host end (from the client's MAC to
/// ee:ee:ee:ee:ee:ee) and on the server's host end (from ee:ee:ee:ee:ee:ee).
pub async fn p2p_3_crosses_both_veths(cx: &Cx<'_>) -> Outcome {
    let x = exchange(cx).await?;
    let from_client = x.on_client_cali.iter().any(|f| {
        x.towards_server(f)
            && f.eth
                .is_some_and(|e| e.src == x.client_mac && e.dst == HOST_END_MAC)
    });
    ensure(
        from_client,
        format!(
            "on {}: the connection from port {} leaving test-tools, {} > {HOST_END_MAC_STR}",
            x.client_cali,
            x.src_port,
            mac_str(&x.client_mac)
        ),
        show_frames(&x.on_client_cali),
    )?;
    let to_server = x
        .on_server_cali
        .iter()
        .any(|f| x.towards_server(f) && f.eth.is_some_and(|e| e.src == HOST_END_MAC));
    ensure(
        to_server,
        format!(
            "on {}: the connection towards c2c-network-demo, sent from {HOST_END_MAC_STR}",
            x.server_cali
        ),
        show_frames(&x.on_server_cali),
    )?;
    Ok(Verdict::Verified)
}

/// P2P-4: on both host ends the connection's packets carry the two pod IPs, unchanged.
pub async fn p2p_4_no_translation(cx: &Cx<'_>) -> Outcome {
    let x = exchange(cx).await?;
    for (link, frames) in [
        (&x.client_cali, &x.on_client_cali),
        (&x.server_cali, &x.on_server_cali),
    ] {
        ensure(
            !frames.is_empty(),
            format!("the connection seen on {link}"),
            "none of it: the capture is in doubt, so no translation can be judged",
        )?;
        let translated: Vec<Frame> = frames
            .iter()
            .filter(|f| {
                f.ipv4().is_none_or(|ip| {
                    let (src, dst) = if x.towards_server(f) {
                        (x.client_ip, x.server_ip)
                    } else {
                        (x.server_ip, x.client_ip)
                    };
                    ip.src != src || ip.dst != dst
                })
            })
            .cloned()
            .collect();
        ensure(
            translated.is_empty(),
            format!(
                "every packet on {link} between {} and {}",
                x.client_ip, x.server_ip
            ),
            format!("translated: {}", show_frames(&translated)),
        )?;
    }
    Ok(Verdict::Verified)
}

/// P2P-5: nothing of the connection on the underlay, vxlan.calico or tunl0 — judged only when
/// the host ends saw it.
pub async fn p2p_5_no_tunnel_or_underlay(cx: &Cx<'_>) -> Outcome {
    let x = exchange(cx).await?;
    ensure(
        !x.on_client_cali.is_empty(),
        format!(
            "the paired capture on {} sees the connection",
            x.client_cali
        ),
        "it saw none of it: the capture itself is in doubt, so zero packets elsewhere proves nothing",
    )?;
    for (dev, frames) in &x.elsewhere {
        ensure(
            frames.is_empty(),
            format!(
                "zero packets of the connection on {dev} (while {} saw {})",
                x.client_cali,
                x.on_client_cali.len()
            ),
            format!("{} on {dev}: {}", frames.len(), show_frames(frames)),
        )?;
    }
    Ok(Verdict::Verified)
}
