//! claims.md "Container <-> container": the containers of a pod share one network namespace
//! and talk over `lo`.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HTTP_PORT, article_body};
use calico_conformance::observe::{self, packet::Frame};
use calico_conformance::ports::source_port;
use calico_conformance::target::SERVER_POD;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "C2C-1",
            "All containers of a pod share one network namespace",
            Per::Target,
            c2c_1_containers_share_one_netns
        ),
        claim!(
            "C2C-2",
            "Container-to-container traffic uses lo",
            Per::Target,
            c2c_2_localhost_traffic_on_lo
        ),
        claim!(
            "C2C-3",
            "None of that traffic appears on eth0",
            Per::Target,
            c2c_3_nothing_on_eth0
        ),
    ]
}

/// C2C-1: the interface sets seen from each container of c2c-network-demo are identical.
pub async fn c2c_1_containers_share_one_netns(cx: &Cx<'_>) -> Outcome {
    let containers = cx.target.containers(SERVER_POD)?;
    if containers.is_empty() {
        return not_applicable(format!(
            "the target does not say which process belongs to which container of {SERVER_POD} \
             (a topology file without `containers`)"
        ));
    }
    ensure(
        containers.len() >= 2,
        "two containers (hello-world-server, curl-client)",
        format!("{} container(s)", containers.len()),
    )?;
    let mut seen = Vec::new();
    for (name, place) in &containers {
        let ifs = observe::interfaces(place).await?;
        cx.evidence.observed(&ifs);
        let mut set: Vec<String> = ifs
            .value
            .iter()
            .map(|i| {
                let mut addrs: Vec<String> = i
                    .addrs
                    .iter()
                    .map(|a| format!("{}/{}", a.local, a.prefixlen))
                    .collect();
                addrs.sort();
                format!(
                    "{}#{} {} [{}]",
                    i.link.ifname,
                    i.link.ifindex,
                    i.link.address.as_deref().unwrap_or("-"),
                    addrs.join(" ")
                )
            })
            .collect();
        set.sort();
        seen.push((name.clone(), set));
    }
    let (first_name, first) = &seen[0];
    for (name, set) in &seen[1..] {
        ensure(
            set == first,
            format!(
                "container {name} sees the same interfaces as {first_name}: {}",
                first.join(", ")
            ),
            format!("{name} sees {}", set.join(", ")),
        )?;
    }
    Ok(Verdict::Verified)
}

/// The article's c2c request: the client container GETs localhost:8080 while lo and eth0 are
/// captured. Returns the client's source port and both captures.
async fn c2c_request(
    cx: &Cx<'_>,
) -> Result<(u16, Vec<Frame>, Vec<Frame>, Option<String>), Failure> {
    let pod = cx.target.pod(SERVER_POD)?;
    // The request comes from the curl-client container where the target knows it.
    let client = cx
        .target
        .containers(SERVER_POD)?
        .into_iter()
        .find(|(name, _)| name == "curl-client")
        .map(|(_, place)| place)
        .unwrap_or_else(|| pod.clone());
    let to = if cx.switches.c2c_client_uses_pod_ip.load(Ordering::SeqCst) {
        cx.facts_of(SERVER_POD)?.ip
    } else {
        Ipv4Addr::LOCALHOST
    };
    let lo = cx
        .capture(&pod, "lo", &format!("tcp port {HTTP_PORT}"))
        .await?;
    let eth0 = cx
        .capture(&pod, "eth0", &format!("tcp port {HTTP_PORT}"))
        .await?;
    let src = source_port()?;
    let body = client.http_get(to, HTTP_PORT, src, TRAFFIC_DEADLINE).await;
    // Wait until lo shows the whole exchange (or the deadline): the zero on eth0 is only
    // judged once lo has seen the connection.
    cx.wait_for(&lo, |f| handshake_and_get(f, src).is_ok())
        .await;
    let lo = cx.finish(lo).await;
    let eth0 = cx.finish(eth0).await;
    let body = body?;
    let expected = article_body(SERVER_POD);
    ensure(
        String::from_utf8_lossy(&body).trim_end() == expected,
        format!("the body {expected}"),
        format!("{:?}", String::from_utf8_lossy(&body)),
    )?;
    let doubt = lo.ended_early.or(eth0.ended_early);
    Ok((src, lo.frames, eth0.frames, doubt))
}

/// Checks that `frames` hold the handshake and the GET from source port `src` to
/// 127.0.0.1:8080.
fn handshake_and_get(frames: &[Frame], src: u16) -> Result<(), String> {
    let local = Ipv4Addr::LOCALHOST;
    let tcp = |f: &Frame| f.tcp().map(|(ip, t)| (ip.clone(), t.clone()));
    let to_server = |f: &Frame| {
        tcp(f).is_some_and(|(ip, t)| {
            ip.src == local && ip.dst == local && t.src_port == src && t.dst_port == HTTP_PORT
        })
    };
    let to_client = |f: &Frame| {
        tcp(f).is_some_and(|(ip, t)| {
            ip.src == local && ip.dst == local && t.src_port == HTTP_PORT && t.dst_port == src
        })
    };
    let syn = frames
        .iter()
        .any(|f| to_server(f) && tcp(f).is_some_and(|(_, t)| t.syn && !t.ack));
    let syn_ack = frames
        .iter()
        .any(|f| to_client(f) && tcp(f).is_some_and(|(_, t)| t.syn && t.ack));
    let get = frames
        .iter()
        .any(|f| to_server(f) && tcp(f).is_some_and(|(_, t)| t.payload.starts_with(b"GET / ")));
    match (syn, syn_ack, get) {
        (true, true, true) => Ok(()),
        _ => Err(format!(
            "SYN seen: {syn}, SYN-ACK seen: {syn_ack}, GET / seen: {get}"
        )),
    }
}

/// C2C-2: the handshake and `GET /` to 127.0.0.1:8080 are on the pod's lo.
pub async fn c2c_2_localhost_traffic_on_lo(cx: &Cx<'_>) -> Outcome {
    let (src, lo, _eth0, doubt) = c2c_request(cx).await?;
    handshake_and_get(&lo, src).map_err(|what| {
        differs(
            format!(
                "on lo: SYN, SYN-ACK and GET / between 127.0.0.1:{src} and 127.0.0.1:{HTTP_PORT}"
            ),
            format!(
                "{what}; lo saw {}{}",
                show_frames(&lo),
                doubt
                    .map(|d| format!(" (capture ended early: {d})"))
                    .unwrap_or_default()
            ),
        )
    })?;
    Ok(Verdict::Verified)
}

/// C2C-3: none of the connection's packets are on eth0 — judged only when lo saw them.
pub async fn c2c_3_nothing_on_eth0(cx: &Cx<'_>) -> Outcome {
    let (src, lo, eth0, doubt) = c2c_request(cx).await?;
    let on_lo: Vec<&Frame> = lo.iter().filter(|f| tcp_ports(f, src, HTTP_PORT)).collect();
    if on_lo.is_empty() {
        return Err(differs(
            format!(
                "the paired capture on lo sees the connection from port {src} to port {HTTP_PORT}"
            ),
            format!(
                "the lo capture saw none of it ({}): the capture itself is in doubt, so \
                 zero packets on eth0 proves nothing{}",
                show_frames(&lo),
                doubt
                    .map(|d| format!("; capture ended early: {d}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let on_eth0: Vec<Frame> = eth0
        .into_iter()
        .filter(|f| tcp_ports(f, src, HTTP_PORT))
        .collect();
    ensure(
        on_eth0.is_empty(),
        format!(
            "zero packets of the connection (port {src} <-> {HTTP_PORT}) on eth0, while lo saw {}",
            on_lo.len()
        ),
        format!("{} on eth0: {}", on_eth0.len(), show_frames(&on_eth0)),
    )?;
    Ok(Verdict::Verified)
}
