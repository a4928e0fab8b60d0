//! `watch` (CONT-1, CONT-2): probes pod-to-pod traffic continuously and measures every gap.
//!
//! For each pair of the article's pods — test-tools → c2c-network-demo (same node) and
//! test-tools-remote → c2c-network-demo (across nodes) — three probes run every interval, each
//! on its own clock: an ICMP echo, a TCP request (a new connection to an echo server the watch
//! runs in the server pod, one byte there and back), and one byte over one long-lived TCP
//! connection to the same echo server.
//! A probe not answered within one interval is lost, never waited for: probes cannot pile up.
//! Every probe's send and answer time is recorded; a **gap** is a run of lost probes of one
//! kind on one pair, from the first lost probe's send time to the next answered one's (or the
//! end of the watch), so its length is measured to within one interval.
//!
//! On local targets (the lab, topology files) the probes run in-process inside the pods'
//! namespaces. On a cluster the suite cannot open sockets in a pod's namespace, so the watch
//! agent ([`crate::watch_agent`], python3 in the node probe entered into the pod's namespace)
//! probes the same way there and prints each probe, and its echo server runs in the server
//! pod; send times are then the client node's clock, anchored where the agent's first line
//! arrived.

use crate::error::{Error, Result};
use crate::kube::PodFinder;
use crate::place::Place;
use crate::target::{CLIENT_POD, REMOTE_POD, SERVER_POD, Target};
pub use crate::watch_pods::LOOK_AGAIN;
use crate::watch_pods::{AGENT_START, Tracked};
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
    /// The watch's folder: `probes.jsonl` is streamed into it as the probes happen (default
    /// `target/calico-conformance/<run>/watch/`).
    pub dir: PathBuf,
    /// The watch stops at the next interval once this file exists (as on Ctrl-C); it must not
    /// exist when the watch starts.
    pub stop_file: Option<PathBuf>,
    /// A flap to inject into a lab the suite built (`--flap`): the watch then proves it
    /// measures it (see [`crate::flap`]).
    pub flap: Option<crate::flap::Flap>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: Duration::from_millis(100),
            budget: Duration::from_secs(1),
            dir: crate::run::evidence_root().join("watch"),
            stop_file: None,
            flap: None,
        }
    }
}

/// The probe log's name in the watch's folder.
pub const PROBES_FILE: &str = "probes.jsonl";

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
    /// Why its first probe was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// A gap still open: its first lost probe's send time, the probes lost so far, the first
/// probe's error.
#[derive(Debug, Clone, Serialize)]
pub struct OpenGap {
    pub start_ms: f64,
    pub lost: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl OpenGap {
    fn closed(&self, kind: Kind, end_ms: f64) -> Gap {
        Gap {
            kind,
            start_ms: self.start_ms,
            end_ms,
            length_ms: end_ms - self.start_ms,
            lost: self.lost,
            first_error: self.first_error.clone(),
        }
    }
}

/// Buckets of the RTT histogram: [`RTT_STEPS`] per doubling from 1 µs, up to 2^32 µs (71 min).
const RTT_STEPS: f64 = 4.0;
const RTT_BUCKETS: usize = 128;

/// The answered probes' round-trip times in a fixed-size histogram: the median and the 99th
/// percentile are estimated from it (its bucket's geometric middle, within 9 %); the mean and
/// the maximum are exact. Its size does not grow with the watch.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "RttSummary")]
pub struct Rtt {
    buckets: [u64; RTT_BUCKETS],
    count: u64,
    sum_ms: f64,
    max_ms: f64,
}

impl Default for Rtt {
    fn default() -> Self {
        Rtt {
            buckets: [0; RTT_BUCKETS],
            count: 0,
            sum_ms: 0.0,
            max_ms: 0.0,
        }
    }
}

/// What `watch.json` shows of an [`Rtt`].
#[derive(Debug, Clone, Serialize)]
pub struct RttSummary {
    pub count: u64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl From<Rtt> for RttSummary {
    fn from(r: Rtt) -> Self {
        RttSummary {
            count: r.count,
            mean_ms: if r.count == 0 {
                0.0
            } else {
                r.sum_ms / r.count as f64
            },
            median_ms: r.quantile(0.5),
            p99_ms: r.quantile(0.99),
            max_ms: r.max_ms,
        }
    }
}

impl Rtt {
    pub fn add(&mut self, ms: f64) {
        let us = (ms * 1000.0).max(1.0);
        let i = (us.log2() * RTT_STEPS) as usize;
        if let Some(b) = self.buckets.get_mut(i.min(RTT_BUCKETS - 1)) {
            *b += 1;
        }
        self.count += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    /// The `q` quantile (0..=1) of the times added, estimated; 0 when none were.
    pub fn quantile(&self, q: f64) -> f64 {
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if *n > 0 && seen >= rank {
                let middle_us = ((i as f64 + 0.5) / RTT_STEPS).exp2();
                return (middle_us / 1000.0).min(self.max_ms);
            }
        }
        0.0
    }
}

/// One kind of probe on one pair, kept as counters: probes sent, answered and lost, their
/// RTTs, the gaps closed so far and the gap open now. Gaps are computed as the probes come:
/// a gap runs from the first lost probe's send time to the next answered probe's send time
/// (or the end of the watch).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindLog {
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
    pub rtt: Rtt,
    /// The gaps closed so far, in order.
    pub gaps: Vec<Gap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_gap: Option<OpenGap>,
}

impl KindLog {
    fn record(&mut self, kind: Kind, probe: &Probe) {
        self.sent += 1;
        match probe.rtt_ms {
            Some(rtt) => {
                self.answered += 1;
                self.rtt.add(rtt);
                if let Some(open) = self.open_gap.take() {
                    self.gaps.push(open.closed(kind, probe.sent_ms));
                }
            }
            None => {
                self.lost += 1;
                match &mut self.open_gap {
                    Some(open) => open.lost += 1,
                    None => {
                        self.open_gap = Some(OpenGap {
                            start_ms: probe.sent_ms,
                            lost: 1,
                            first_error: probe.error.clone(),
                        });
                    }
                }
            }
        }
    }

    /// Every gap, the open one ending at `end_ms`.
    pub fn gaps(&self, kind: Kind, end_ms: f64) -> Vec<Gap> {
        let mut out = self.gaps.clone();
        out.extend(self.open_gap.iter().map(|g| g.closed(kind, end_ms)));
        out
    }
}

/// Everything one pair saw: per kind, its counters and gaps (the probes themselves are in
/// `probes.jsonl`).
#[derive(Debug, Clone, Serialize)]
pub struct PairLog {
    pub pair: Pair,
    pub icmp: KindLog,
    pub tcp_request: KindLog,
    pub long_connection: KindLog,
    /// Why the long-lived connection was first lost (a reset), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_lost: Option<String>,
    /// When (ms) a new long-lived connection was first made after a loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnected_ms: Option<f64>,
    /// How many times a new long-lived connection was made.
    pub reconnects: u64,
}

impl PairLog {
    pub fn new(pair: Pair) -> PairLog {
        PairLog {
            pair,
            icmp: KindLog::default(),
            tcp_request: KindLog::default(),
            long_connection: KindLog::default(),
            connection_lost: None,
            reconnected_ms: None,
            reconnects: 0,
        }
    }

    /// The counters and gaps of `kind`.
    pub fn kind(&self, kind: Kind) -> &KindLog {
        match kind {
            Kind::Icmp => &self.icmp,
            Kind::TcpRequest => &self.tcp_request,
            Kind::LongConnection => &self.long_connection,
        }
    }

    /// Counts `probe` and moves its kind's gaps on.
    pub fn record(&mut self, probe: &Probe) {
        let log = match probe.kind {
            Kind::Icmp => &mut self.icmp,
            Kind::TcpRequest => &mut self.tcp_request,
            Kind::LongConnection => &mut self.long_connection,
        };
        log.record(probe.kind, probe);
    }

    /// The gaps of `kind`, in order; one still open ends at `end_ms`.
    pub fn gaps(&self, kind: Kind, end_ms: f64) -> Vec<Gap> {
        self.kind(kind).gaps(kind, end_ms)
    }

    /// Every gap of every kind.
    pub fn all_gaps(&self, end_ms: f64) -> Vec<Gap> {
        KINDS
            .into_iter()
            .flat_map(|k| self.gaps(k, end_ms))
            .collect()
    }

    /// Probes sent and lost, of every kind.
    pub fn sent_lost(&self) -> (u64, u64) {
        KINDS
            .into_iter()
            .map(|k| self.kind(k))
            .fold((0, 0), |(s, l), k| (s + k.sent, l + k.lost))
    }
}

/// Every probe kind, in the order of the reports.
pub const KINDS: [Kind; 3] = [Kind::Icmp, Kind::TcpRequest, Kind::LongConnection];

/// One line of `probes.jsonl`.
#[derive(Serialize)]
struct ProbeLine<'a> {
    pair: &'a str,
    kind: Kind,
    seq: u64,
    sent_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Where every probe goes: its pair's counters (in memory, of a fixed size but for the gaps)
/// and one JSON line in `probes.jsonl` (streamed through a buffer, never kept). A write that
/// fails is remembered, naming the file, and the log stops there; the counting goes on.
pub struct Recorder {
    pub pairs: Vec<PairLog>,
    names: Vec<String>,
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    error: Option<String>,
}

impl Recorder {
    /// A recorder for `pairs`, its probe log created (truncated) at `path`, with its folder.
    pub fn create(path: &Path, pairs: Vec<Pair>) -> Result<Recorder> {
        let file_error = |problem: String| Error::File {
            path: path.to_path_buf(),
            problem,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| file_error(format!("creating its folder: {e}")))?;
        }
        let file =
            std::fs::File::create(path).map_err(|e| file_error(format!("creating it: {e}")))?;
        Ok(Recorder {
            names: pairs.iter().map(ToString::to_string).collect(),
            pairs: pairs.into_iter().map(PairLog::new).collect(),
            path: path.to_path_buf(),
            out: Some(std::io::BufWriter::new(file)),
            error: None,
        })
    }

    /// The probe log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts `probe` for pair `index` and writes its line.
    pub fn record(&mut self, index: usize, probe: &Probe) {
        let (Some(log), Some(name)) = (self.pairs.get_mut(index), self.names.get(index)) else {
            return;
        };
        log.record(probe);
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let line = ProbeLine {
            pair: name,
            kind: probe.kind,
            seq: probe.seq,
            sent_ms: probe.sent_ms,
            rtt_ms: probe.rtt_ms,
            error: probe.error.as_deref(),
        };
        let written = serde_json::to_writer(&mut *out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = written {
            self.failed(format!("writing a probe: {e}"));
        }
    }

    fn failed(&mut self, problem: String) {
        self.out = None;
        let e = Error::File {
            path: self.path.clone(),
            problem,
        };
        self.error.get_or_insert(e.to_string());
    }

    /// Flushes the probe log; the first error writing it (naming the file), if any.
    pub fn finish(&mut self) -> Option<String> {
        if let Some(mut out) = self.out.take()
            && let Err(e) = out.flush()
        {
            self.failed(format!("flushing the probe log: {e}"));
        }
        self.error.clone()
    }
}

/// A watch's outcome: every pair's counters and gaps, how long it ran, where its probes are.
#[derive(Debug, Clone, Serialize)]
pub struct Watched {
    pub interval_ms: f64,
    pub budget_ms: f64,
    pub duration_ms: f64,
    /// `probes.jsonl`: every probe, one JSON line each.
    pub probes_file: PathBuf,
    /// Why `probes.jsonl` is incomplete, when it is (naming the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes_error: Option<String>,
    pub pairs: Vec<PairLog>,
    /// The flap injected (`--flap`), and the pairs whose traffic took its route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap: Option<Flapped>,
}

/// A flap the watch injected, and the pairs crossing it.
#[derive(Debug, Clone, Serialize)]
pub struct Flapped {
    /// `None` when the watch was stopped before the flap's time.
    pub injected: Option<crate::flap::Injected>,
    pub crossing: Vec<Pair>,
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
                    format!(
                        "{}: the connection was lost: {why}; {}",
                        log.pair,
                        reconnected(log)
                    ),
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

/// When the long-lived connection came back after it was lost (a reconnect is still a
/// failure of CONT-2: claims.md).
fn reconnected(log: &PairLog) -> String {
    match (log.reconnected_ms, log.reconnects) {
        (None, _) => "not reconnected".into(),
        (Some(ms), 1) => format!("reconnected at {ms:.0} ms"),
        (Some(ms), n) => format!("reconnected at {ms:.0} ms (the first of {n} reconnects)"),
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
/// The watch's echo server: stopped and joined on drop, so its port is free again for the
/// next watch (on error paths too).
struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The accept loop sees `stop` within 20 ms; the listener closes as it ends.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The watch's echo server: in-process on a local target, the watch agent on a cluster.
enum Echo {
    Local(EchoServer),
    Agent(crate::watch_pods::EchoAgent),
}

impl Echo {
    async fn stop(self) {
        match self {
            // Its drop stops and joins it (within 20 ms).
            Echo::Local(server) => drop(server),
            Echo::Agent(agent) => agent.stop().await,
        }
    }
}

fn start_echo_server(server: &Place) -> Result<EchoServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let netns = netns_of(server)?;
    let listener = crate::netns::in_netns(&netns, || {
        TcpListener::bind(("0.0.0.0", ECHO_PORT))
            .map_err(|e| Error::io(format!("binding the echo server to port {ECHO_PORT}"), e))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("the echo server", e))?;
    let thread = std::thread::Builder::new()
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
    Ok(EchoServer {
        stop: stopped,
        thread: Some(thread),
    })
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One long-lived connection from `from`'s namespace to the echo server.
/// It waits `connect_timeout` for the connection, `timeout` for each read and write.
fn connect(
    from: &Place,
    to: IpAddr,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<TcpStream> {
    let netns = netns_of(from)?;
    let addr = SocketAddr::new(to, ECHO_PORT);
    let stream = crate::netns::in_netns(&netns, move || {
        TcpStream::connect_timeout(&addr, connect_timeout)
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| Error::io("the long-lived connection", e))?;
    Ok(stream)
}

/// A new long-lived connection from `from` after the old one was lost, and byte `seq` over
/// it, all within `interval`: the connection (its own, re-attached, when it came) and whether
/// the byte was echoed in time. Blocking.
fn reattach(
    from: &Place,
    to: IpAddr,
    seq: u8,
    interval: Duration,
) -> Result<(TcpStream, std::result::Result<(), String>)> {
    let t0 = Instant::now();
    let mut stream = connect(from, to, interval, interval)?;
    let left = interval
        .saturating_sub(t0.elapsed())
        .max(Duration::from_millis(1));
    let timeouts = |s: &TcpStream, t: Duration| {
        s.set_read_timeout(Some(t))
            .and_then(|()| s.set_write_timeout(Some(t)))
            .map_err(|e| Error::io("the re-attached long-lived connection", e))
    };
    timeouts(&stream, left)?;
    let answered = match exchange(&mut stream, seq) {
        Ok(true) => Ok(()),
        Ok(false) => Err("re-attached, no echo within the interval".to_string()),
        Err(e) => return Err(Error::io("the re-attached long-lived connection", e)),
    };
    timeouts(&stream, interval)?;
    Ok((stream, answered))
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

/// Watches `target` for `length` (or until `stop` is set), probing every pair; streams every
/// probe to `probes.jsonl` in `opts.dir`; calls `status` about once a second with each pair's
/// counters so far.
pub async fn watch(
    target: &Target,
    opts: &Options,
    length: Duration,
    stop: Arc<AtomicBool>,
    status: impl Fn(&[PairLog], Duration) + Send + Sync,
) -> Result<Watched> {
    if let Some(file) = opts.stop_file.as_ref().filter(|f| f.exists()) {
        return Err(Error::File {
            path: file.clone(),
            problem: "the stop file exists already: the watch would stop at once; remove it".into(),
        });
    }
    let server = target.pod(SERVER_POD)?;
    let server_ip: IpAddr = target.pod_facts(SERVER_POD)?.ip.into();
    let pairs = pairs(target);
    let planned = match opts.flap {
        Some(flap) => Some((plan_flap(target, &pairs).await?, flap)),
        None => None,
    };
    let recorder = Recorder::create(&opts.dir.join(PROBES_FILE), pairs.clone())?;
    let recorder = Arc::new(std::sync::Mutex::new(recorder));
    // On a cluster the suite cannot open sockets in the pods' namespaces: the watch agent
    // probes there instead, run in the node probes; and the pods are followed through
    // container restarts and re-creation (`watch_pods`).
    let finder = target.pod_finder().filter(|_| server.netns().is_none());
    // Stopped, and its port free again, when the watch returns: by any path.
    let (echo, servers) = start_echo(&finder, server, server_ip, length).await?;
    let started = Instant::now();
    let until = started + length;
    let server_ip = servers.as_ref().map_or(server_ip, |s| *s.borrow());
    let mut tasks = Vec::new();
    let probing = async {
        for (index, pair) in pairs.into_iter().enumerate() {
            let from = target.pod(&pair.from)?;
            let from_ip: IpAddr = target.pod_facts(&pair.from)?.ip.into();
            let ctx = |pod: Tracked| ProbeLoop {
                pod,
                server: server_ip,
                servers: servers.clone(),
                interval: opts.interval,
                started,
                until,
                stop: stop.clone(),
                recorder: recorder.clone(),
                index,
            };
            if servers.is_some() {
                let ctx = ctx(track(&finder, &pair.from, from, from_ip).await);
                let agent = ctx.start_agent().await?;
                tasks.push(tokio::spawn(ctx.run_agent(agent)));
                continue;
            }
            let stream = connect(&from, server_ip, Duration::from_secs(5), opts.interval)?;
            for kind in KINDS {
                let ctx = ctx(Tracked::fixed(&pair.from, from.clone(), from_ip));
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
        Ok::<(), Error>(())
    }
    .await;
    // A pair that cannot be probed stops the watch: the probes started end, and the echo server.
    if let Err(e) = probing {
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        echo.stop().await;
        return Err(e);
    }
    let flap = planned.map(|((planned, crossing), flap)| {
        let task = tokio::spawn(planned.run(started, flap, stop.clone()));
        (task, crossing)
    });
    let mut next_status = Duration::from_secs(1);
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if opts.stop_file.as_ref().is_some_and(|f| f.exists()) {
            stop.store(true, Ordering::Relaxed);
        }
        if started.elapsed() >= next_status {
            next_status += Duration::from_secs(1);
            let rec = recorder.lock().unwrap_or_else(|e| e.into_inner());
            status(&rec.pairs, started.elapsed());
        }
    }
    echo.stop().await;
    let flap = match flap {
        Some((task, crossing)) => Some(Flapped {
            injected: task
                .await
                .map_err(|e| Error::Internal(format!("the flap's task: {e}")))?,
            crossing,
        }),
        None => None,
    };
    let duration = started.elapsed();
    let mut rec = recorder.lock().unwrap_or_else(|e| e.into_inner());
    let probes_error = rec.finish();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Watched {
        interval_ms: ms(opts.interval),
        budget_ms: ms(opts.budget),
        duration_ms: ms(duration),
        probes_file: rec.path().to_path_buf(),
        probes_error,
        pairs: std::mem::take(&mut rec.pairs),
        flap,
    })
}

/// The pod `name` (entered at `place`, with `ip`) as the watch follows it: looked for again on
/// a cluster (`finder`), fixed on a local target.
async fn track(finder: &Option<PodFinder>, name: &str, place: Place, ip: IpAddr) -> Tracked {
    match finder {
        Some(f) => Tracked::found(f.clone(), name, place, ip).await,
        None => Tracked::fixed(name, place, ip),
    }
}

/// The watch's echo server in `server`: in-process locally; on a cluster (`finder`) the watch
/// agent, kept serving, and the server's IP as it changes.
async fn start_echo(
    finder: &Option<PodFinder>,
    server: Place,
    ip: IpAddr,
    length: Duration,
) -> Result<(Echo, Option<tokio::sync::watch::Receiver<IpAddr>>)> {
    if finder.is_none() {
        return Ok((Echo::Local(start_echo_server(&server)?), None));
    }
    let server = track(finder, SERVER_POD, server, ip).await;
    // Its restarts are bounded by the watch's end and then some; the watch stops it.
    let until = Instant::now() + length + AGENT_START;
    let agent = crate::watch_pods::EchoAgent::start(server, ECHO_PORT, until).await?;
    let servers = agent.ip.clone();
    Ok((Echo::Agent(agent), Some(servers)))
}

/// The route a flap removes (the first cross-node pair's client node's route to the server's
/// block), and the pairs whose traffic takes it.
async fn plan_flap(target: &Target, pairs: &[Pair]) -> Result<(crate::flap::Planned, Vec<Pair>)> {
    let across = (pairs.iter().find(|p| p.across_nodes))
        .ok_or_else(|| Error::NotFound("--flap: no pair of the watch crosses nodes".into()))?;
    let planned = crate::flap::plan(target, SERVER_POD, &across.from).await?;
    let crossing = (pairs.iter())
        .filter(|p| p.across_nodes)
        .filter(|p| {
            target
                .pod_facts(&p.from)
                .is_ok_and(|f| f.node == planned.node)
        })
        .cloned()
        .collect();
    Ok((planned, crossing))
}

/// Sets `stop` on Ctrl-C (SIGINT) or SIGTERM: the watch then ends at the next interval and
/// reports what it watched. Call it inside a Tokio runtime; both handlers are in place when it
/// returns.
pub fn stop_on_signals(stop: Arc<AtomicBool>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("handling SIGINT", e))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("handling SIGTERM", e))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        stop.store(true, Ordering::Relaxed);
    });
    Ok(())
}

/// How an agent's node clock maps onto the watch's: the node time of its start line and the
/// watch's ms when that line arrived; the next sequence number after what was recorded, and
/// what is added to the current agent's (a restarted agent counts from 0 again).
#[derive(Default)]
struct AgentClock {
    anchor: Option<(f64, f64)>,
    next_seq: u64,
    seq_base: u64,
}

/// One probe loop: one kind on one pair, one probe per interval tick.
struct ProbeLoop {
    /// The pair's client pod.
    pod: Tracked,
    /// The server's IP as probed now.
    server: IpAddr,
    /// On a cluster, the server's IP as the echo server's supervisor has it (it changes when
    /// the server pod was made again with another).
    servers: Option<tokio::sync::watch::Receiver<IpAddr>>,
    interval: Duration,
    started: Instant,
    until: Instant,
    stop: Arc<AtomicBool>,
    recorder: Arc<std::sync::Mutex<Recorder>>,
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
                Kind::LongConnection => self.long_probe(&mut stream, seq, sent).await,
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
            (self.recorder.lock().unwrap_or_else(|e| e.into_inner())).record(self.index, &probe);
            seq += 1;
        }
    }

    /// A pair probed by the watch agent (on a cluster): its lines recorded as they come, each
    /// probe's send time the agent's node clock, anchored where its first line arrived. A
    /// stream that ends early (its exec cut, the node probe's container restarted), or a line
    /// that cannot be read, stops the agent and starts a new one, at most once a second, until
    /// one runs or the watch ends: from then every interval counts as lost probes of each kind
    /// with that reason (a gap of at least one interval), the long connection as lost, and a new
    /// agent that runs as re-attached.
    async fn run_agent(mut self, mut agent: crate::place::Streaming) {
        let mut clock = AgentClock::default();
        loop {
            let broken = self.follow(&mut agent, &mut clock).await;
            agent.stop().await;
            // What it printed until it stopped (within a deadline: the stop may not arrive).
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(line) = agent.next_line().await {
                    if let Ok(line) = crate::watch_agent::parse_line(&line) {
                        self.agent_line(line, &mut clock);
                    }
                }
            })
            .await;
            let Some(why) = broken else { return };
            let why = format!("{}: {why}", self.pod.place.label());
            tracing::warn!("{why}");
            match self.restart_agent(&why, &mut clock).await {
                Some(again) => agent = again,
                None => return,
            }
        }
    }

    /// Starts the watch agent probing from this pair's client until the watch ends.
    async fn start_agent(&self) -> Result<crate::place::Streaming> {
        let left = self.until.saturating_duration_since(Instant::now());
        let argv = crate::watch_agent::probe_argv(self.server, ECHO_PORT, self.interval, left);
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.pod
            .place
            .stream(&words, None, AGENT_START.min(left))
            .await
    }

    /// Records the agent's lines until the watch ends (`None`) or the agent breaks (why).
    async fn follow(
        &mut self,
        agent: &mut crate::place::Streaming,
        clock: &mut AgentClock,
    ) -> Option<String> {
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        while Instant::now() < self.until && !self.stop.load(Ordering::Relaxed) {
            let line = tokio::select! {
                line = agent.next_line() => line,
                _ = ticker.tick() => {
                    if let Some(moved) = self.moved().await {
                        return Some(moved);
                    }
                    continue;
                }
            };
            let Some(line) = line else {
                return Some("the watch agent ended before the watch".into());
            };
            let broken = match crate::watch_agent::parse_line(&line) {
                Ok(line) => self.agent_line(line, clock),
                Err(e) => Some(format!("the watch agent printed {e}")),
            };
            if broken.is_some() {
                return broken;
            }
        }
        None
    }

    /// Whether the agent must start again elsewhere: the server pod has another IP now, or
    /// this pair's client pod was made again (looked for every [`crate::watch_pods::LOOK_AGAIN`]).
    async fn moved(&mut self) -> Option<String> {
        if let Some(servers) = self
            .servers
            .as_mut()
            .filter(|s| s.has_changed().unwrap_or(false))
        {
            let ip = *servers.borrow_and_update();
            let why = format!(
                "the server pod is at {ip} now, no longer at {}",
                self.server
            );
            self.server = ip;
            return Some(why);
        }
        self.pod.moved().await
    }

    /// After the agent broke (`why`): lost probes of each kind every interval, and a new agent
    /// tried at most once a second, until one runs (returned) or the watch ends. A start that
    /// fails looks for the pod again (a container restarted has another process to enter) and
    /// tries there at once.
    async fn restart_agent(
        &mut self,
        why: &str,
        clock: &mut AgentClock,
    ) -> Option<crate::place::Streaming> {
        self.lost_connection(format!("{why} at {:.0} ms", self.ms(Instant::now())));
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_try = Instant::now();
        while Instant::now() < self.until && !self.stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            self.lost_of_each_kind(why, clock);
            if Instant::now() < next_try {
                continue;
            }
            next_try = Instant::now() + Duration::from_secs(1);
            let mut started = self.start_agent().await;
            if let Err(e) = &started {
                tracing::debug!("restarting the watch agent: {e}");
                match self.pod.find_again().await {
                    Ok(()) => started = self.start_agent().await,
                    Err(e) => tracing::debug!("watch: {e}"),
                }
            }
            match started {
                Ok(agent) => {
                    self.reconnected(self.ms(Instant::now()));
                    clock.anchor = None;
                    clock.seq_base = clock.next_seq;
                    return Some(agent);
                }
                Err(e) => tracing::debug!("restarting the watch agent: {e}"),
            }
        }
        None
    }

    /// A lost probe of each kind now, with `why`.
    fn lost_of_each_kind(&self, why: &str, clock: &mut AgentClock) {
        let sent_ms = self.ms(Instant::now());
        let mut rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        for kind in KINDS {
            let probe = Probe {
                kind,
                seq: clock.next_seq,
                sent_ms,
                rtt_ms: None,
                error: Some(why.to_string()),
            };
            rec.record(self.index, &probe);
        }
        clock.next_seq += 1;
    }

    /// Records one agent line; why the agent cannot go on, when it cannot.
    fn agent_line(
        &self,
        line: crate::watch_agent::AgentLine,
        clock: &mut AgentClock,
    ) -> Option<String> {
        use crate::watch_agent::{AgentKind, AgentLine};
        let now = self.ms(Instant::now());
        let at = |t: f64, clock: &AgentClock| match clock.anchor {
            Some((node_t, local_ms)) => local_ms + (t - node_t) * 1000.0,
            None => now,
        };
        match line {
            AgentLine::Start { t } => clock.anchor = Some((t, now)),
            AgentLine::Probe {
                kind,
                seq,
                t,
                rtt_ms,
                error,
            } => {
                let kind = match kind {
                    AgentKind::Icmp => Kind::Icmp,
                    AgentKind::Tcp => Kind::TcpRequest,
                    AgentKind::Long => Kind::LongConnection,
                };
                let seq = clock.seq_base + seq;
                clock.next_seq = clock.next_seq.max(seq + 1);
                let probe = Probe {
                    kind,
                    seq,
                    sent_ms: at(t, clock),
                    rtt_ms,
                    error,
                };
                (self.recorder.lock().unwrap_or_else(|e| e.into_inner()))
                    .record(self.index, &probe);
            }
            AgentLine::Lost { t, why } => {
                self.lost_connection(format!("{why} at {:.0} ms", at(t, clock)));
            }
            AgentLine::Reconnected { t } => self.reconnected(at(t, clock)),
            AgentLine::Fatal { why } => {
                return Some(format!("the watch agent cannot probe: {why}"));
            }
        }
        None
    }

    fn ms(&self, at: Instant) -> f64 {
        at.duration_since(self.started).as_secs_f64() * 1000.0
    }

    fn lost_connection(&self, why: String) {
        if let Some(log) = (self.recorder.lock().unwrap_or_else(|e| e.into_inner()))
            .pairs
            .get_mut(self.index)
        {
            log.connection_lost.get_or_insert(why);
        }
    }

    fn reconnected(&self, at_ms: f64) {
        if let Some(log) = (self.recorder.lock().unwrap_or_else(|e| e.into_inner()))
            .pairs
            .get_mut(self.index)
        {
            log.reconnected_ms.get_or_insert(at_ms);
            log.reconnects += 1;
        }
    }

    /// Byte `seq` over the long-lived connection. When it is gone (reset, closed), it is
    /// reopened, once per interval, until it is back: every probe until then is lost (a gap),
    /// and the probe that reopens it is answered if the connection and the echo both come
    /// within the interval.
    async fn long_probe(
        &self,
        stream: &mut Option<TcpStream>,
        seq: u64,
        sent: Instant,
    ) -> std::result::Result<(), String> {
        let byte = (seq % 256) as u8;
        let Some(mut s) = stream.take() else {
            let (from, server, interval) = (self.pod.place.clone(), self.server, self.interval);
            let done = tokio::task::spawn_blocking(move || reattach(&from, server, byte, interval));
            return match done.await {
                Ok(Ok((s, answered))) => {
                    *stream = Some(s);
                    self.reconnected(self.ms(sent));
                    answered
                }
                Ok(Err(e)) => Err(format!("reconnecting: {e}")),
                Err(e) => Err(format!("reconnecting: {e}")),
            };
        };
        let done = tokio::task::spawn_blocking(move || {
            let r = exchange(&mut s, byte);
            (s, r)
        });
        match done.await {
            Ok((s, Ok(true))) => {
                *stream = Some(s);
                Ok(())
            }
            Ok((s, Ok(false))) => {
                *stream = Some(s);
                Err("no echo within the interval".into())
            }
            Ok((_, Err(e))) => {
                self.lost_connection(format!("{e} at {:.0} ms", self.ms(sent)));
                Err(e.to_string())
            }
            Err(e) => {
                self.lost_connection(format!("{e} at {:.0} ms", self.ms(sent)));
                Err(e.to_string())
            }
        }
    }

    async fn icmp(&self) -> std::result::Result<(), String> {
        let probe = self.pod.place.ping(self.server, 1, self.interval);
        match tokio::time::timeout(self.interval, probe).await {
            Ok(Ok(replies)) if !replies.is_empty() => Ok(()),
            Ok(Ok(_)) => Err("no echo reply within the interval".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no echo reply within the interval".into()),
        }
    }

    /// A new TCP connection to the watch's echo server, one byte there and back, closed. (Not
    /// the article's server: it serves one connection at a time, so a connection stuck on one
    /// pair would stall the other pairs' requests and show up as their gap.)
    async fn request(&self) -> std::result::Result<(), String> {
        let netns = netns_of(&self.pod.place).map_err(|e| e.to_string())?;
        let addr = SocketAddr::new(self.server, ECHO_PORT);
        let interval = self.interval;
        let probe = tokio::task::spawn_blocking(move || {
            let mut stream = crate::netns::in_netns(&netns, move || {
                TcpStream::connect_timeout(&addr, interval)
                    .map_err(|e| Error::io(format!("connecting to {addr}"), e))
            })
            .map_err(|e| e.to_string())?;
            let set = stream
                .set_read_timeout(Some(interval))
                .and_then(|()| stream.set_write_timeout(Some(interval)));
            set.map_err(|e| e.to_string())?;
            match exchange(&mut stream, 1) {
                Ok(true) => Ok(()),
                Ok(false) => Err("no answer within the interval".to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        match tokio::time::timeout(self.interval, probe).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within the interval".into()),
        }
    }
}

/// `100ms`, `1s`, `1.5s`, `10m`, `1h`: a duration as the `watch` options take it.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 100ms, 1s, 10m)"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{text}`: the unit is ms, s, m or h")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("`{text}` is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// One status line per pair: probes sent, lost, the current and the longest gap.
pub fn status_lines(logs: &[PairLog], elapsed: Duration) -> Vec<String> {
    let now = elapsed.as_secs_f64() * 1000.0;
    logs.iter()
        .map(|log| {
            let (sent, lost) = log.sent_lost();
            let kinds = KINDS.map(|k| log.kind(k));
            let current = (kinds.iter())
                .filter_map(|k| k.open_gap.as_ref())
                .map(|g| now - g.start_ms)
                .fold(0.0, f64::max);
            let longest = (kinds.iter())
                .flat_map(|k| k.gaps.iter().map(|g| g.length_ms))
                .fold(current, f64::max);
            format!(
                "watch {:.0} s {}: {sent} probes, {lost} lost, current gap {current:.0} ms, longest {longest:.0} ms{}",
                elapsed.as_secs_f64(),
                log.pair,
                match &log.connection_lost {
                    Some(why) => format!(", connection lost: {why}"),
                    None => String::new(),
                }
            )
        })
        .collect()
}

impl Watched {
    /// With `--flap`: whether the watch measured the flap it injected, to within ± 2
    /// intervals (see [`crate::flap::measured`]), and what it saw; `None` without a flap.
    pub fn flap_verdict(&self) -> Option<(bool, String)> {
        let flapped = self.flap.as_ref()?;
        let Some(injected) = &flapped.injected else {
            let why = "the watch stopped before its flap's time: nothing was injected";
            return Some((false, why.into()));
        };
        let lengths = |log: &PairLog, kind| -> Vec<f64> {
            let gaps = log.gaps(kind, self.duration_ms);
            gaps.iter().map(|g| g.length_ms).collect()
        };
        let observed: Vec<crate::flap::Observed> = (self.pairs.iter())
            .map(|log| crate::flap::Observed {
                pair: log.pair.to_string(),
                crossing: flapped.crossing.contains(&log.pair),
                icmp: lengths(log, Kind::Icmp),
                tcp_request: lengths(log, Kind::TcpRequest),
                long_connection: lengths(log, Kind::LongConnection),
            })
            .collect();
        let tolerance = 2.0 * self.interval_ms;
        Some(crate::flap::measured(injected, &observed, tolerance))
    }

    /// `watch.md`: CONT-1 and CONT-2 per pair, every gap, and the gaps as a Mermaid gantt
    /// chart per pair (time in ms from the start of the watch).
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut md = format!(
            "# Watch: {:.1} s, a probe of each kind every {:.0} ms, budget {:.0} ms\n\n",
            self.duration_ms / 1000.0,
            self.interval_ms,
            self.budget_ms
        );
        md.push_str("| claim | pair | verdict |\n|---|---|---|\n");
        for v in self.verdicts() {
            let word = if v.passed { "passed" } else { "FAILED" };
            let _ = writeln!(
                md,
                "| {} | {} | {word}: {} |",
                v.claim,
                crate::report_md::cell(&v.pair.to_string()),
                crate::report_md::cell(&v.message)
            );
        }
        if let Some((measured, message)) = self.flap_verdict() {
            let word = if measured { "measured" } else { "NOT measured" };
            let _ = writeln!(md, "\nInjected flap {word}: {message}");
        }
        md.push_str("\n```mermaid\ngantt\n    dateFormat x\n    axisFormat %S.%L s\n");
        for log in &self.pairs {
            let _ = writeln!(
                md,
                "    section {}",
                crate::report_md::mermaid_text(&log.pair.to_string())
            );
            let gaps = log.all_gaps(self.duration_ms);
            let _ = writeln!(md, "    watched : 0, {:.0}", self.duration_ms);
            for (i, g) in gaps.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "    {:?} gap {:.0} ms : crit, g{i}, {:.0}, {:.0}",
                    g.kind,
                    g.length_ms,
                    g.start_ms,
                    g.end_ms.max(g.start_ms + 1.0)
                );
            }
        }
        md.push_str(
            "```\n\nThe raw probe log (every probe's send time and answer, one JSON line each) is \
             `probes.jsonl`; the counters, RTTs and gaps are in `watch.json`.\n",
        );
        md
    }
}

/// Writes `watch.json` (the verdicts, every gap, the counters, and where the probes are) and
/// `watch.md` into `dir`.
pub fn write_report(dir: &Path, w: &Watched) -> Result<PathBuf> {
    let file_error = |problem: String| Error::File {
        path: dir.to_path_buf(),
        problem,
    };
    std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
    let gaps: Vec<(String, Vec<Gap>)> = (w.pairs.iter())
        .map(|l| (l.pair.to_string(), l.all_gaps(w.duration_ms)))
        .collect();
    // The probe log by its name when it is beside watch.json.
    let probes = w.probes_file.strip_prefix(dir).unwrap_or(&w.probes_file);
    let json = serde_json::json!({
        "schema": "calico-conformance/watch/v2",
        "verdicts": w.verdicts(),
        "gaps": gaps,
        "probes": probes,
        "flap": w.flap_verdict().map(|(measured, message)| {
            serde_json::json!({ "measured": measured, "message": message })
        }),
        "watch": w,
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| file_error(e.to_string()))?;
    crate::run::write_whole(&dir.join("watch.json"), &(text + "\n"))?;
    let md = dir.join("watch.md");
    crate::run::write_whole(&md, &w.markdown())?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(kind: Kind, seq: u64, answered: bool) -> Probe {
        Probe {
            kind,
            seq,
            sent_ms: seq as f64 * 100.0,
            rtt_ms: answered.then_some(0.3),
            error: (!answered).then(|| "no echo reply within the interval".into()),
        }
    }

    /// Probes 0..40, lost from 10 to 29: one gap from 1000 ms to 3000 ms (20 lost); one lost
    /// at the end is a gap open until the end of the watch. Fed through the watch's recorder,
    /// its probe log in `dir`.
    pub(crate) fn watched(dir: &Path) -> Watched {
        let mut probes: Vec<Probe> = (0..40)
            .map(|k| probe(Kind::Icmp, k, !(10..30).contains(&k)))
            .collect();
        probes.push(probe(Kind::LongConnection, 0, true));
        probes.push(probe(Kind::LongConnection, 39, false));
        let pair = Pair {
            from: "test-tools-remote".into(),
            to: "c2c-network-demo".into(),
            across_nodes: true,
        };
        let mut rec = Recorder::create(&dir.join(PROBES_FILE), vec![pair]).unwrap();
        for p in &probes {
            rec.record(0, p);
        }
        assert_eq!(rec.finish(), None);
        Watched {
            interval_ms: 100.0,
            budget_ms: 1000.0,
            duration_ms: 4000.0,
            probes_file: rec.path().to_path_buf(),
            probes_error: None,
            pairs: std::mem::take(&mut rec.pairs),
            flap: None,
        }
    }

    /// An agent's lines through [`ProbeLoop::run_agent`] over a watch of 600 ms at 100 ms:
    /// the pair's log, and whether the agent was stopped.
    fn through_an_agent(lines: &str) -> (PairLog, bool) {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let pair = Pair {
            from: "test-tools-remote".into(),
            to: "c2c-network-demo".into(),
            across_nodes: true,
        };
        let rec = Recorder::create(&dir.path().join(PROBES_FILE), vec![pair]).unwrap();
        let recorder = Arc::new(std::sync::Mutex::new(rec));
        let stopped = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (mut w, r) = tokio::io::duplex(4096);
            w.write_all(lines.as_bytes()).await.unwrap();
            drop(w);
            let flag = stopped.clone();
            let stop: crate::capture::StreamStop = Box::new(move || {
                flag.store(true, Ordering::Relaxed);
                Box::pin(async {})
            });
            let started = Instant::now();
            let ctx = ProbeLoop {
                pod: Tracked::fixed(
                    "test-tools-remote",
                    crate::local::LocalPlace::place("pod ns/test-tools-remote", "/nonexistent"),
                    IpAddr::from([10, 0, 0, 2]),
                ),
                server: IpAddr::from([10, 0, 0, 1]),
                servers: None,
                interval: Duration::from_millis(100),
                started,
                until: started + Duration::from_millis(600),
                stop: Arc::new(AtomicBool::new(false)),
                recorder: recorder.clone(),
                index: 0,
            };
            ctx.run_agent(crate::place::Streaming::from_reader(r, stop))
                .await;
        });
        let log = recorder.lock().unwrap().pairs[0].clone();
        (log, stopped.load(Ordering::Relaxed))
    }

    /// An agent that ends before the watch (its exec cut, its pod gone) or prints what is not
    /// its output: each interval until the end counts as lost, with that reason, so CONT-1
    /// fails naming it instead of the watch passing on what it did not see.
    #[test]
    fn an_agent_that_ends_early_or_babbles_is_a_gap_until_the_end_naming_why() {
        let start = r#"{"ev": "start", "t": 1000.0}"#;
        let ok = |k: &str, seq: u64| {
            format!(r#"{{"k": "{k}", "seq": {seq}, "t": 1000.{seq}, "rtt": 0.2}}"#)
        };
        let early = [
            start.to_string(),
            ok("icmp", 0),
            ok("tcp", 0),
            ok("long", 0),
        ];
        let (log, stopped) = through_an_agent(&(early.join("\n") + "\n"));
        assert!(stopped);
        assert_eq!(log.icmp.answered, 1);
        let gap = log.icmp.open_gap.clone().unwrap();
        assert!(gap.lost >= 3, "{gap:?}");
        assert_eq!(
            gap.first_error.as_deref(),
            Some("pod ns/test-tools-remote: the watch agent ended before the watch")
        );
        assert!(log.long_connection.open_gap.is_some());
        let babble = format!(
            "{start}\n{}\nTraceback (most recent call last):\n",
            ok("icmp", 0)
        );
        let (log, stopped) = through_an_agent(&babble);
        assert!(stopped);
        let why = log.tcp_request.open_gap.unwrap().first_error.unwrap();
        assert!(
            why.starts_with("pod ns/test-tools-remote: the watch agent printed not JSON"),
            "{why}"
        );
    }

    /// The agent's send times are its node's clock, anchored where its start line arrived: a
    /// probe sent 300 ms after the start is 300 ms after the anchor, whatever the node's epoch.
    #[test]
    fn agent_send_times_are_the_node_clock_anchored_at_its_start_line() {
        let lines = [
            r#"{"ev": "start", "t": 5000.0}"#,
            r#"{"k": "icmp", "seq": 3, "t": 5000.3, "err": "no echo reply within the interval"}"#,
            r#"{"k": "icmp", "seq": 4, "t": 5000.4, "rtt": 0.2}"#,
        ];
        let (log, _) = through_an_agent(&(lines.join("\n") + "\n"));
        let gap = &log.icmp.gaps[0];
        assert!((gap.length_ms - 100.0).abs() < 0.01, "{gap:?}");
        assert!(gap.start_ms >= 300.0 && gap.start_ms < 400.0, "{gap:?}");
    }

    #[test]
    fn gaps_run_from_the_first_lost_probe_to_the_next_answered_one() {
        // For a look, and for ci/render-report.sh: target/watch-example/watch.md.
        let dir = crate::run::target_dir().join("watch-example");
        let w = watched(&dir);
        let gaps = w.pairs[0].gaps(Kind::Icmp, w.duration_ms);
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].start_ms, gaps[0].end_ms, gaps[0].lost),
            (1000.0, 3000.0, 20)
        );
        let open = w.pairs[0].gaps(Kind::LongConnection, w.duration_ms);
        assert_eq!((open[0].start_ms, open[0].end_ms), (3900.0, 4000.0));
        let v = w.verdicts();
        assert!(!v[0].passed, "{:?}", v[0]);
        assert_eq!(
            v[0].message,
            "test-tools-remote → c2c-network-demo (across nodes): longest gap 2000 ms (budget 1000 ms): Icmp 1000-3000 ms (2000 ms, 20 lost)"
        );
        assert!(
            v[1].passed,
            "a 100 ms stall is within the budget: {:?}",
            v[1]
        );
        let md = w.markdown();
        assert!(
            md.contains("    Icmp gap 2000 ms : crit, g0, 1000, 3000"),
            "{md}"
        );
        assert_eq!(
            gaps[0].first_error.as_deref(),
            Some("no echo reply within the interval")
        );
        let icmp = w.pairs[0].kind(Kind::Icmp);
        assert_eq!((icmp.sent, icmp.answered, icmp.lost), (40, 20, 20));
        assert!(
            (icmp.rtt.quantile(0.5) - 0.3).abs() < 0.03,
            "{:?}",
            icmp.rtt
        );
        write_report(&dir, &w).unwrap();
        // Every probe is in probes.jsonl, one line each; watch.json names it.
        let lines = std::fs::read_to_string(dir.join(PROBES_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 42);
        assert_eq!(
            lines[10],
            serde_json::json!({
                "pair": "test-tools-remote → c2c-network-demo (across nodes)",
                "kind": "icmp", "seq": 10, "sent_ms": 1000.0,
                "error": "no echo reply within the interval"
            })
        );
        assert_eq!(lines[0]["rtt_ms"], 0.3);
        let json = std::fs::read_to_string(dir.join("watch.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["probes"], "probes.jsonl");
        assert_eq!(json["watch"]["pairs"][0]["icmp"]["lost"], 20);
    }

    /// A probe log that cannot be written is reported naming the file; the counting goes on.
    #[test]
    fn a_probe_log_that_cannot_be_written_is_reported_naming_it() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let pair = Pair {
            from: "a".into(),
            to: "b".into(),
            across_nodes: false,
        };
        let mut rec = Recorder::create(Path::new("/dev/full"), vec![pair]).unwrap();
        for seq in 0..1000 {
            rec.record(0, &probe(Kind::Icmp, seq, true));
        }
        let error = rec.finish().unwrap();
        assert!(error.starts_with("/dev/full: "), "{error}");
        assert_eq!(rec.pairs[0].icmp.sent, 1000);
        let missing = Recorder::create(Path::new("/proc/no/such/probes.jsonl"), Vec::new());
        assert!(
            missing
                .err()
                .unwrap()
                .to_string()
                .contains("/proc/no/such/probes.jsonl")
        );
    }

    /// A long-lived connection lost and re-attached still fails CONT-2, saying when it came
    /// back; one lost for good says so too.
    #[test]
    fn a_lost_connection_fails_cont_2_saying_whether_it_came_back() {
        let dir = crate::run::target_dir().join("watch-example-lost");
        let mut w = watched(&dir);
        w.pairs[0].connection_lost =
            Some("Connection reset by peer (os error 104) at 812 ms".into());
        let cont_2 = |w: &Watched| w.verdicts().remove(1);
        let v = cont_2(&w);
        assert!(!v.passed);
        assert_eq!(
            v.message,
            "test-tools-remote → c2c-network-demo (across nodes): the connection was lost: Connection reset by peer (os error 104) at 812 ms; not reconnected"
        );
        w.pairs[0].reconnected_ms = Some(1204.4);
        w.pairs[0].reconnects = 1;
        assert!(
            cont_2(&w).message.ends_with("; reconnected at 1204 ms"),
            "{:?}",
            cont_2(&w)
        );
        w.pairs[0].reconnects = 3;
        assert!(
            cont_2(&w)
                .message
                .ends_with("; reconnected at 1204 ms (the first of 3 reconnects)"),
            "{:?}",
            cont_2(&w)
        );
    }

    /// SIGTERM stops a watch as Ctrl-C does.
    #[test]
    fn sigterm_sets_the_stop_flag() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        rt.block_on(async {
            stop_on_signals(stop.clone()).unwrap();
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(stop.load(Ordering::Relaxed));
    }

    #[test]
    fn durations_are_read_with_their_unit() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(
            parse_duration("10")
                .unwrap_err()
                .contains("the unit is ms, s, m or h")
        );
        assert!(parse_duration("0s").is_err() && parse_duration("fast").is_err());
    }
}
