//! The flap a watch injects into a lab it built (`watch --flap 1s`): the node of a cross-node
//! pair's client loses its route to the server's block for a while and gets it back, as an
//! upgrade's route re-programming would. The watch must then measure exactly that gap on
//! exactly the pairs whose traffic takes that route, and no gap anywhere else: the watch
//! proving itself, in `.ci/run` and on a user's machine.
//!
//! Only a lab the suite built is changed: a topology file's namespaces are someone else's, and a
//! cluster is never broken on purpose.

use crate::error::{Error, Result};
use crate::place::Place;
use crate::target::Target;
use ipnet::Ipv4Net;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When the flap starts (after the watch's first probe) and how long the route stays away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flap {
    pub at: Duration,
    pub hold: Duration,
}

/// The route a flap will remove, found before the watch starts.
pub struct Planned {
    /// The node whose route is removed (the client's).
    pub node: String,
    place: Place,
    /// The server's block.
    pub block: Ipv4Net,
    /// `ip -o route show exact <block>` on the node: what is put back.
    pub route: String,
}

/// What a flap did, on the watch's clock (ms since its first probe).
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    pub node: String,
    pub route: String,
    /// `ip route del` started, and returned: the route is surely gone from `removed_ms`.
    pub del_started_ms: f64,
    pub removed_ms: f64,
    /// `ip route add` started (the route surely gone until then), and returned.
    pub restoring_ms: f64,
    pub restored_ms: f64,
    /// A command of the flap that failed (the route may not be back: said loudly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Injected {
    /// The outage it surely made.
    pub fn at_least_ms(&self) -> f64 {
        self.restoring_ms - self.removed_ms
    }

    /// The outage it made at most.
    pub fn at_most_ms(&self) -> f64 {
        self.restored_ms - self.del_started_ms
    }
}

/// Flags `ip` prints on a route that `ip route add` does not take.
const OUTPUT_ONLY: &[&str] = &["linkdown", "dead", "offload", "trap", "rt_offload"];

/// Refuses a flap on anything but a lab the suite built.
pub fn allowed_on(target: &Target) -> Result<()> {
    if target.lab().is_some() {
        return Ok(());
    }
    let what = if target.topology().is_some() {
        "a topology file's namespaces, which someone else built"
    } else {
        "a cluster"
    };
    Err(Error::Preflight(format!(
        "--flap changes the dataplane: it is for a lab the suite builds (CALICO_TARGET=lab:...), \
         not for {what} (target {})",
        target.name
    )))
}

/// Finds the route `client_pod`'s node takes to `server_pod`'s block. Refused on anything but
/// a lab the suite built, and for two pods on one node.
pub async fn plan(target: &Target, server_pod: &str, client_pod: &str) -> Result<Planned> {
    allowed_on(target)?;
    let server = target.pod_facts(server_pod)?;
    let client = target.pod_facts(client_pod)?;
    if server.node == client.node {
        return Err(Error::NotFound(format!(
            "--flap: {client_pod} and {server_pod} are both on {}: no route between nodes to flap",
            server.node
        )));
    }
    let block = target
        .facts
        .node(&server.node)
        .and_then(|n| n.blocks.iter().find(|b| b.contains(&server.ip)).copied())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "--flap: no block of {} holds {server_pod}'s address {}",
                server.node, server.ip
            ))
        })?;
    let place = target.host(&client.node)?;
    let shown = place
        .run_ok(&["ip", "-o", "route", "show", "exact", &block.to_string()])
        .await?
        .stdout_text();
    let lines: Vec<&str> = shown.lines().filter(|l| !l.trim().is_empty()).collect();
    let [route] = lines.as_slice() else {
        return Err(Error::NotFound(format!(
            "--flap: {} has {} routes to {server_pod}'s block {block}, not one: {shown:?}",
            client.node,
            lines.len()
        )));
    };
    Ok(Planned {
        node: client.node.clone(),
        place,
        block,
        route: route.trim().to_string(),
    })
}

impl Planned {
    /// At `origin + flap.at` removes the route, `flap.hold` later puts it back. Nothing when
    /// `stop` is set before it starts; once started it always puts the route back.
    pub async fn run(self, origin: Instant, flap: Flap, stop: Arc<AtomicBool>) -> Option<Injected> {
        tokio::time::sleep_until((origin + flap.at).into()).await;
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let ms = |i: Instant| i.duration_since(origin).as_secs_f64() * 1000.0;
        let block = self.block.to_string();
        let del_started = Instant::now();
        let del = self.place.run_ok(&["ip", "route", "del", &block]).await;
        let removed = Instant::now();
        let mut error = del.err().map(|e| e.to_string());
        if error.is_none() {
            tokio::time::sleep(flap.hold).await;
        }
        let restoring = Instant::now();
        if error.is_none() {
            let mut argv = vec!["ip", "route", "add"];
            argv.extend(
                self.route
                    .split_whitespace()
                    .filter(|w| !OUTPUT_ONLY.contains(w)),
            );
            error = self.place.run_ok(&argv).await.err().map(|e| e.to_string());
        }
        Some(Injected {
            node: self.node,
            route: self.route,
            del_started_ms: ms(del_started),
            removed_ms: ms(removed),
            restoring_ms: ms(restoring),
            restored_ms: ms(Instant::now()),
            error,
        })
    }
}

/// The gap lengths (ms) one pair's probes showed, by kind.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The pair, as the watch names it.
    pub pair: String,
    /// Its traffic takes the flapped route.
    pub crossing: bool,
    pub icmp: Vec<f64>,
    pub tcp_request: Vec<f64>,
    pub long_connection: Vec<f64>,
}

/// Whether the watch measured `injected`: on each crossing pair exactly one gap of ICMP and
/// one of TCP requests, each within the outage's bounds ± `tolerance_ms`, and a stall of the
/// long connection at least as long as the outage surely was (TCP's retransmission backoff
/// may make it longer); on every other pair no gap at all. The message says what was seen.
pub fn measured(injected: &Injected, observed: &[Observed], tolerance_ms: f64) -> (bool, String) {
    let (low, high) = (injected.at_least_ms(), injected.at_most_ms());
    let mut wrong = Vec::new();
    if let Some(e) = &injected.error {
        wrong.push(format!("the flap's command failed: {e}"));
    }
    let within = |g: f64| g >= low - tolerance_ms && g <= high + tolerance_ms;
    let show = |gaps: &[f64]| {
        let shown: Vec<String> = gaps.iter().map(|g| format!("{g:.0} ms")).collect();
        format!("[{}]", shown.join(", "))
    };
    for o in observed {
        let kinds = [
            ("ICMP", &o.icmp),
            ("TCP requests", &o.tcp_request),
            ("the long connection", &o.long_connection),
        ];
        if !o.crossing {
            for (kind, gaps) in kinds.iter().filter(|(_, g)| !g.is_empty()) {
                wrong.push(format!(
                    "{}: gaps of {kind} {} on a pair the flap does not cross",
                    o.pair,
                    show(gaps)
                ));
            }
            continue;
        }
        for (kind, gaps) in &kinds[..2] {
            if !matches!(gaps.as_slice(), [g] if within(*g)) {
                wrong.push(format!(
                    "{}: gaps of {kind} {}, not one of {low:.0}..{high:.0} ms ± {tolerance_ms:.0} ms",
                    o.pair,
                    show(gaps)
                ));
            }
        }
        if !o.long_connection.iter().any(|g| *g >= low - tolerance_ms) {
            wrong.push(format!(
                "{}: the long connection's gaps {} are all shorter than the outage ({low:.0} ms)",
                o.pair,
                show(&o.long_connection)
            ));
        }
    }
    let what = format!(
        "{}'s route `{}` removed at {:.0} ms for {low:.0}..{high:.0} ms",
        injected.node, injected.route, injected.del_started_ms
    );
    if !observed.iter().any(|o| o.crossing) {
        wrong.push("no pair of the watch crosses the flapped route".into());
    }
    if wrong.is_empty() {
        let crossing: Vec<String> = (observed.iter())
            .filter(|o| o.crossing)
            .map(|o| {
                format!(
                    "{} (ICMP {}, TCP {})",
                    o.pair,
                    show(&o.icmp),
                    show(&o.tcp_request)
                )
            })
            .collect();
        (
            true,
            format!(
                "{what}: measured on {}, no gap elsewhere",
                crossing.join("; ")
            ),
        )
    } else {
        (false, format!("{what}: {}", wrong.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injected() -> Injected {
        Injected {
            node: "k8s-worker-2".into(),
            route: "10.244.1.0/26 via 10.12.22.2 dev ens192 proto bird".into(),
            del_started_ms: 1000.0,
            removed_ms: 1010.0,
            restoring_ms: 2010.0,
            restored_ms: 2030.0,
            error: None,
        }
    }

    fn pair(crossing: bool, icmp: &[f64], tcp: &[f64], long: &[f64]) -> Observed {
        Observed {
            pair: if crossing {
                "remote → server"
            } else {
                "local → server"
            }
            .into(),
            crossing,
            icmp: icmp.to_vec(),
            tcp_request: tcp.to_vec(),
            long_connection: long.to_vec(),
        }
    }

    #[test]
    fn a_flap_is_measured_only_as_one_gap_of_its_length_where_it_crosses() {
        let f = injected();
        assert_eq!((f.at_least_ms(), f.at_most_ms()), (1000.0, 1030.0));
        let quiet = pair(false, &[], &[], &[]);
        let good = pair(true, &[1100.0], &[900.0], &[1400.0]);
        let (ok, message) = measured(&f, &[good.clone(), quiet.clone()], 200.0);
        assert!(ok, "{message}");
        assert!(message.contains("measured on remote → server"), "{message}");
        for (bad, says) in [
            (pair(true, &[], &[1000.0], &[1000.0]), "gaps of ICMP []"),
            (
                pair(true, &[1000.0], &[500.0], &[1000.0]),
                "TCP requests [500 ms]",
            ),
            (
                pair(true, &[400.0, 600.0], &[1000.0], &[1000.0]),
                "ICMP [400 ms, 600 ms]",
            ),
            (pair(true, &[1000.0], &[1000.0], &[300.0]), "all shorter"),
        ] {
            let (ok, message) = measured(&f, &[bad, quiet.clone()], 200.0);
            assert!(!ok && message.contains(says), "{message}");
        }
        let noisy = pair(false, &[], &[300.0], &[]);
        let (ok, message) = measured(&f, &[good.clone(), noisy], 200.0);
        assert!(
            !ok && message.contains(
                "local → server: gaps of TCP requests [300 ms] on a pair the flap does not cross"
            ),
            "{message}"
        );
        let (ok, message) = measured(&f, &[quiet], 200.0);
        assert!(
            !ok && message.contains("no pair of the watch crosses"),
            "{message}"
        );
        let failed = Injected {
            error: Some("`ip route add` exited 2".into()),
            ..f
        };
        let (ok, message) = measured(&failed, &[good], 200.0);
        assert!(
            !ok && message.contains("the flap's command failed"),
            "{message}"
        );
    }
}
