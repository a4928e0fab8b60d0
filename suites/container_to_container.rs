//! claims.md "Container <-> container": the containers of a pod share one network namespace
//! and talk over `lo`.

use super::support::*;
use crate::claim;
use calico_conformance::calico::{HTTP_PORT, article_body};
use calico_conformance::expect::frames::{self, Frames, Match};
use calico_conformance::expect::{Value, at_least, body, eq, link};
use calico_conformance::place::Place;
use calico_conformance::ports::source_port;
use calico_conformance::target::SERVER_POD;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::Ordering;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "C2C-1",
            "All containers of a pod share one network namespace",
            Per::Target,
            c2c_1_containers_share_one_netns,
            needs ContainersKnown
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
    let what = format!("containers of {SERVER_POD}");
    cx.expect(at_least(what, 2, containers.len()))?;
    let seen = settled_interface_sets(cx, &containers).await?;
    for pair in seen.windows(2) {
        let ((before, want), (name, got)) = (&pair[0], &pair[1]);
        let what = format!("interfaces seen from container {name}");
        cx.expect(eq(what, want.clone(), got.clone()).because(format!("as seen from {before}")))?;
    }
    Ok(())
}

/// How often C2C-1 observes again when the namespace changed while it looked.
const SETTLE_ATTEMPTS: usize = 5;

/// The interface set seen from each container, observed while the namespace did not change:
/// the first container is observed again after the others, and all are observed again (at most
/// [`SETTLE_ATTEMPTS`] times) when its set changed meanwhile. The kernel adds a link's IPv6
/// link-local address on its own a moment after the link comes up; seen between two
/// containers' observations it would read as two namespaces. The last attempt is returned
/// whatever it saw, so a namespace that keeps changing still gets a verdict.
async fn settled_interface_sets<'c>(
    cx: &Cx<'_>,
    containers: &'c [(String, Place)],
) -> Result<Vec<(&'c String, Value)>, Failure> {
    let mut seen = Vec::new();
    for _ in 0..SETTLE_ATTEMPTS {
        seen.clear();
        for (name, place) in containers {
            seen.push((name, link::interface_set(&cx.interfaces(place).await?)));
        }
        let Some((_, first)) = containers.first() else {
            break;
        };
        let again = link::interface_set(&cx.interfaces(first).await?);
        if seen.first().is_some_and(|(_, v)| *v == again) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(seen)
}

/// The article's c2c request: the curl-client container (where the target knows it) GETs
/// localhost:8080 while the pod's lo and eth0 are captured. Recorded once, judged by C2C-2 and
/// C2C-3.
pub struct LocalRequest {
    /// `127.0.0.1:<source port>` and `127.0.0.1:8080`.
    client: SocketAddrV4,
    server: SocketAddrV4,
    /// The connection's frames on lo and on eth0.
    lo: Frames,
    eth0: Frames,
}

impl Recording for LocalRequest {
    async fn record(cx: &Cx<'_>) -> Result<Self, Failure> {
        let pod = cx.target.pod(SERVER_POD)?;
        let containers = cx.target.containers(SERVER_POD)?;
        let from = containers
            .iter()
            .find(|(name, _)| name == "curl-client")
            .map_or(&pod, |(_, place)| place);
        let to = if cx.switches().c2c_client_uses_pod_ip.load(Ordering::SeqCst) {
            cx.facts_of(SERVER_POD)?.ip
        } else {
            Ipv4Addr::LOCALHOST
        };
        let src_port = source_port()?;
        let client = SocketAddrV4::new(Ipv4Addr::LOCALHOST, src_port);
        let server = SocketAddrV4::new(Ipv4Addr::LOCALHOST, HTTP_PORT);
        let bpf = format!("tcp port {HTTP_PORT}");
        let lo = cx.capture(&pod, "lo", &bpf).await?;
        let eth0 = cx.capture(&pod, "eth0", &bpf).await?;
        let got = from
            .http_get(to.into(), HTTP_PORT, src_port, TRAFFIC_DEADLINE)
            .await;
        // The zero on eth0 is only judged once lo has seen the whole exchange (or the deadline).
        cx.wait_for(&lo, all_seen(&handshake_and_get(client, server)))
            .await;
        let connection = Match::connection(src_port, HTTP_PORT);
        let (lo, eth0) = (
            cx.frames(lo, &connection).await,
            cx.frames(eth0, &connection).await,
        );
        cx.expect(body(&got?, &article_body(SERVER_POD)))?;
        Ok(LocalRequest {
            client,
            server,
            lo,
            eth0,
        })
    }
}

/// The handshake between `client` and `server`, and the client's `GET /`.
fn handshake_and_get(client: SocketAddrV4, server: SocketAddrV4) -> [Match; 3] {
    [
        Match::tcp(client, server).syn(),
        Match::tcp(server, client).syn_ack(),
        Match::tcp(client, server).payload("GET / "),
    ]
}

/// C2C-2: the handshake and `GET /` to 127.0.0.1:8080 are on the pod's lo.
pub async fn c2c_2_localhost_traffic_on_lo(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<LocalRequest>().await?;
    cx.expect(frames::seen(&x.lo, &handshake_and_get(x.client, x.server)))
}

/// C2C-3: none of the connection's packets are on eth0 — judged only when lo saw them.
pub async fn c2c_3_nothing_on_eth0(cx: &Cx<'_>) -> Outcome {
    let x = cx.recorded::<LocalRequest>().await?;
    cx.expect(frames::none_while_seen([&x.eth0], &x.lo))
}
