//! `watch` (CONT-1, CONT-2): probes pod-to-pod traffic continuously and measures every gap.
//!
//! For each pair of the article's pods — test-tools → c2c-network-demo (same node) and
//! test-tools-remote → c2c-network-demo (across nodes) — three probes run every interval, each
//! on its own clock: an ICMP echo, a TCP request (`GET /` of the article's server), and one
//! byte over one long-lived TCP connection to an echo server the watch runs in the server pod.
//! A probe not answered within one interval is lost, never waited for: probes cannot pile up.
//! Every probe's send and answer time is recorded; a **gap** is a run of lost probes of one
//! kind on one pair, from the first lost probe's send time to the next answered one's (or the
//! end of the watch), so its length is measured to within one interval.
//!
//! Local targets only (the lab, topology files): the probes run in-process inside the pods'
//! namespaces.

use crate::error::{Error, Result};
use crate::place::Place;
use crate::target::{CLIENT_POD, REMOTE_POD, SERVER_POD, Target};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The port of the watch's echo server in the server pod (the long-lived connections).
pub const ECHO_PORT: u16 = 7777;

/// How a watch runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// One probe of each kind per pair every `interval` (default 100 ms).
    pub interval: Duration,
    /// The longest gap CONT-1 and CONT-2 allow (default 1 s).
    pub budget: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: Duration::from_millis(100),
            budget: Duration::from_secs(1),
        }
    }
}

/// A probe kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Icmp,
    TcpRequest,
    LongConnection,
}

/// One probed pair: `from` → `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pair {
    pub from: String,
    pub to: String,
    pub across_nodes: bool,
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.across_nodes {
            "across nodes"
        } else {
            "same node"
        };
        write!(f, "{} → {} ({how})", self.from, self.to)
    }
}

/// One probe: when it was sent (ms since the watch started) and when answered, if it was.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub kind: Kind,
    pub seq: u64,
    pub sent_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run of lost probes of one kind on one pair.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub kind: Kind,
    pub start_ms: f64,
    pub end_ms: f64,
    pub length_ms: f64,
    /// Probes lost in it.
    pub lost: usize,
}

/// Everything one pair saw.
#[derive(Debug, Clone, Serialize)]
pub struct PairLog {
    pub pair: Pair,
    pub probes: Vec<Probe>,
    /// Why the long-lived connection ended (a reset), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_lost: Option<String>,
}

impl PairLog {
    /// The gaps of `kind`, in order.
    pub fn gaps(&self, kind: Kind, end_ms: f64) -> Vec<Gap> {
        let mut out = Vec::new();
        let mut open: Option<(f64, usize)> = None;
        for p in self.probes.iter().filter(|p| p.kind == kind) {
            match (p.rtt_ms, open) {
                (None, None) => open = Some((p.sent_ms, 1)),
                (None, Some((s, n))) => open = Some((s, n + 1)),
                (Some(_), Some((s, n))) => {
                    out.push(gap(kind, s, p.sent_ms, n));
                    open = None;
                }
                (Some(_), None) => {}
            }
        }
        if let Some((s, n)) = open {
            out.push(gap(kind, s, end_ms, n));
        }
        out
    }

    /// Every gap of every kind.
    pub fn all_gaps(&self, end_ms: f64) -> Vec<Gap> {
        [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection]
            .into_iter()
            .flat_map(|k| self.gaps(k, end_ms))
            .collect()
    }
}

fn gap(kind: Kind, start_ms: f64, end_ms: f64, lost: usize) -> Gap {
    Gap {
        kind,
        start_ms,
        end_ms,
        length_ms: end_ms - start_ms,
        lost,
    }
}

/// A watch's outcome: every pair's log, and how long it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Watched {
    pub interval_ms: f64,
    pub budget_ms: f64,
    pub duration_ms: f64,
    pub pairs: Vec<PairLog>,
}

/// CONT-1 or CONT-2's verdict for one pair.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub claim: &'static str,
    pub pair: Pair,
    pub passed: bool,
    pub message: String,
}

impl Watched {
    /// CONT-1 per pair: the longest gap of ICMP and TCP requests ≤ the budget; CONT-2 per
    /// pair: the long-lived connection was never reset and never stalled longer than the
    /// budget. Each message names the pair and every gap (start, end, length).
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        for log in &self.pairs {
            let show = |gaps: &[Gap]| -> String {
                let shown: Vec<String> = gaps
                    .iter()
                    .map(|g| {
                        format!(
                            "{:?} {:.0}-{:.0} ms ({:.0} ms, {} lost)",
                            g.kind, g.start_ms, g.end_ms, g.length_ms, g.lost
                        )
                    })
                    .collect();
                if shown.is_empty() {
                    "no gap".into()
                } else {
                    shown.join("; ")
                }
            };
            let mut traffic = log.gaps(Kind::Icmp, self.duration_ms);
            traffic.extend(log.gaps(Kind::TcpRequest, self.duration_ms));
            let longest = traffic.iter().map(|g| g.length_ms).fold(0.0, f64::max);
            out.push(Verdict {
                claim: "CONT-1",
                pair: log.pair.clone(),
                passed: longest <= self.budget_ms,
                message: format!(
                    "{}: longest gap {longest:.0} ms (budget {:.0} ms): {}",
                    log.pair,
                    self.budget_ms,
                    show(&traffic)
                ),
            });
            let stalls = log.gaps(Kind::LongConnection, self.duration_ms);
            let stall = stalls.iter().map(|g| g.length_ms).fold(0.0, f64::max);
            let (passed, message) = match &log.connection_lost {
                Some(why) => (
                    false,
                    format!("{}: the connection was lost: {why}", log.pair),
                ),
                None => (
                    stall <= self.budget_ms,
                    format!(
                        "{}: longest stall {stall:.0} ms (budget {:.0} ms): {}",
                        log.pair,
                        self.budget_ms,
                        show(&stalls)
                    ),
                ),
            };
            out.push(Verdict {
                claim: "CONT-2",
                pair: log.pair.clone(),
                passed,
                message,
            });
        }
        out
    }
}

fn netns_of(place: &Place) -> Result<PathBuf> {
    place.netns().map(Path::to_path_buf).ok_or_else(|| {
        Error::NotFound(format!(
            "{}: not a local place: watch probes locally",
            place.label()
        ))
    })
}

/// The echo server in the server pod's namespace: echoes every byte of every connection, on a
/// thread per connection, until `stop`.
fn start_echo_server(server: &Place, stop: Arc<AtomicBool>) -> Result<()> {
    let netns = netns_of(server)?;
    let listener = crate::netns::in_netns(&netns, || {
        TcpListener::bind(("0.0.0.0", ECHO_PORT))
            .map_err(|e| Error::io(format!("binding the echo server to port {ECHO_PORT}"), e))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("the echo server", e))?;
    std::thread::Builder::new()
        .name("watch-echo".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let stop = stop.clone();
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 64];
                            while !stop.load(Ordering::Relaxed) {
                                match conn.read(&mut buf) {
                                    Ok(0) => return,
                                    Ok(n) => {
                                        if conn.write_all(&buf[..n]).is_err() {
                                            return;
                                        }
                                    }
                                    Err(e) if is_timeout(&e) => {}
                                    Err(_) => return,
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
        .map_err(|e| Error::io("starting the echo server", e))?;
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One long-lived connection from `from`'s namespace to the echo server.
fn connect(from: &Place, to: IpAddr, timeout: Duration) -> Result<TcpStream> {
    let netns = netns_of(from)?;
    let addr = SocketAddr::new(to, ECHO_PORT);
    let stream = crate::netns::in_netns(&netns, move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| Error::io("the long-lived connection", e))?;
    Ok(stream)
}

/// Sends byte `seq` and waits (up to the read timeout) for its echo; older echoes that come
/// late are skipped. `Ok(false)`: no echo in time (a stall); `Err`: the connection is gone.
fn exchange(stream: &mut TcpStream, seq: u8) -> std::io::Result<bool> {
    stream.write_all(&[seq])?;
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed by the server",
                ));
            }
            Ok(n) if buf[..n].contains(&seq) => return Ok(true),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// The pairs of `target`'s article pods that are present: same node, and across nodes.
pub fn pairs(target: &Target) -> Vec<Pair> {
    let facts = &target.facts;
    let Some(server) = facts.pod(SERVER_POD) else {
        return Vec::new();
    };
    [CLIENT_POD, REMOTE_POD]
        .into_iter()
        .filter_map(|from| facts.pod(from))
        .filter(|p| facts.absence(&p.name).is_none())
        .map(|p| Pair {
            from: p.name.clone(),
            to: server.name.clone(),
            across_nodes: p.node != server.node,
        })
        .collect()
}

/// Watches `target` for `length` (or until `stop` is set), probing every pair; calls `status`
/// about once a second with each pair's log so far.
pub async fn watch(
    target: &Target,
    opts: &Options,
    length: Duration,
    stop: Arc<AtomicBool>,
    status: impl Fn(&[PairLog], Duration) + Send + Sync,
) -> Result<Watched> {
    let server = target.pod(SERVER_POD)?;
    let server_ip: IpAddr = target.pod_facts(SERVER_POD)?.ip.into();
    let echo_stop = Arc::new(AtomicBool::new(false));
    start_echo_server(&server, echo_stop.clone())?;
    let started = Instant::now();
    let logs = Arc::new(std::sync::Mutex::new(Vec::<PairLog>::new()));
    let mut tasks = Vec::new();
    for (i, pair) in pairs(target).into_iter().enumerate() {
        let from = target.pod(&pair.from)?;
        let stream = connect(&from, server_ip, opts.interval)?;
        logs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(PairLog {
                pair,
                probes: Vec::new(),
                connection_lost: None,
            });
        for kind in [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection] {
            let ctx = ProbeLoop {
                from: from.clone(),
                server: server_ip,
                interval: opts.interval,
                started,
                until: started + length,
                stop: stop.clone(),
                logs: logs.clone(),
                index: i,
            };
            let stream = match kind {
                Kind::LongConnection => Some(
                    stream
                        .try_clone()
                        .map_err(|e| Error::io("the long-lived connection", e))?,
                ),
                _ => None,
            };
            tasks.push(tokio::spawn(ctx.run(kind, stream)));
        }
    }
    let mut next_status = Duration::from_secs(1);
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() >= next_status {
            next_status += Duration::from_secs(1);
            let snapshot = logs.lock().unwrap_or_else(|e| e.into_inner()).clone();
            status(&snapshot, started.elapsed());
        }
    }
    echo_stop.store(true, Ordering::Relaxed);
    let pairs = logs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Watched {
        interval_ms: ms(opts.interval),
        budget_ms: ms(opts.budget),
        duration_ms: ms(started.elapsed()),
        pairs,
    })
}

/// One probe loop: one kind on one pair, one probe per interval tick.
struct ProbeLoop {
    from: Place,
    server: IpAddr,
    interval: Duration,
    started: Instant,
    until: Instant,
    stop: Arc<AtomicBool>,
    logs: Arc<std::sync::Mutex<Vec<PairLog>>>,
    index: usize,
}

impl ProbeLoop {
    async fn run(self, kind: Kind, mut stream: Option<TcpStream>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut seq: u64 = 0;
        while Instant::now() < self.until && !self.stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let sent = Instant::now();
            let answered: std::result::Result<(), String> = match kind {
                Kind::Icmp => self.icmp().await,
                Kind::TcpRequest => self.request().await,
                Kind::LongConnection => match stream.take() {
                    None => break,
                    Some(mut s) => {
                        let byte = (seq % 256) as u8;
                        let done = tokio::task::spawn_blocking(move || {
                            let r = exchange(&mut s, byte);
                            (s, r)
                        })
                        .await;
                        match done {
                            Ok((s, Ok(true))) => {
                                stream = Some(s);
                                Ok(())
                            }
                            Ok((s, Ok(false))) => {
                                stream = Some(s);
                                Err("no echo within the interval".into())
                            }
                            Ok((_, Err(e))) => {
                                self.lost_connection(format!("{e} at {:.0} ms", self.ms(sent)));
                                Err(e.to_string())
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                },
            };
            let probe = Probe {
                kind,
                seq,
                sent_ms: self.ms(sent),
                rtt_ms: answered
                    .is_ok()
                    .then(|| sent.elapsed().as_secs_f64() * 1000.0),
                error: answered.err(),
            };
            if let Some(log) = self
                .logs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(self.index)
            {
                log.probes.push(probe);
            }
            seq += 1;
        }
    }

    fn ms(&self, at: Instant) -> f64 {
        at.duration_since(self.started).as_secs_f64() * 1000.0
    }

    fn lost_connection(&self, why: String) {
        if let Some(log) = self
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(self.index)
        {
            log.connection_lost.get_or_insert(why);
        }
    }

    async fn icmp(&self) -> std::result::Result<(), String> {
        let probe = self.from.ping(self.server, 1, self.interval);
        match tokio::time::timeout(self.interval, probe).await {
            Ok(Ok(replies)) if !replies.is_empty() => Ok(()),
            Ok(Ok(_)) => Err("no echo reply within the interval".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no echo reply within the interval".into()),
        }
    }

    async fn request(&self) -> std::result::Result<(), String> {
        let port = crate::calico::HTTP_PORT;
        // Source port 0: the kernel picks a fresh one for every request.
        let probe = self.from.http_get(self.server, port, 0, self.interval);
        match tokio::time::timeout(self.interval, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within the interval".into()),
        }
    }
}
