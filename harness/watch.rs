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
            // Under the lock, not a copy: an hour's log is too long to copy every second.
            let logs = logs.lock().unwrap_or_else(|e| e.into_inner());
            status(&logs, started.elapsed());
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

    /// A new TCP connection to the watch's echo server, one byte there and back, closed. (Not
    /// the article's server: it serves one connection at a time, so a connection stuck on one
    /// pair would stall the other pairs' requests and show up as their gap.)
    async fn request(&self) -> std::result::Result<(), String> {
        let netns = netns_of(&self.from).map_err(|e| e.to_string())?;
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
            let lost = log.probes.iter().filter(|p| p.rtt_ms.is_none()).count();
            let gaps = log.all_gaps(now);
            let longest = gaps.iter().map(|g| g.length_ms).fold(0.0, f64::max);
            let current = (gaps.iter())
                .filter(|g| g.end_ms >= now)
                .map(|g| g.length_ms)
                .fold(0.0, f64::max);
            format!(
                "watch {:.0} s {}: {} probes, {lost} lost, current gap {current:.0} ms, longest {longest:.0} ms{}",
                elapsed.as_secs_f64(),
                log.pair,
                log.probes.len(),
                match &log.connection_lost {
                    Some(why) => format!(", connection lost: {why}"),
                    None => String::new(),
                }
            )
        })
        .collect()
}

impl Watched {
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
            "```\n\nThe raw probe log (every probe's send time and answer) is `watch.json`.\n",
        );
        md
    }
}

/// Writes `watch.json` (the verdicts, every gap, every probe) and `watch.md` into `dir`.
pub fn write_report(dir: &Path, w: &Watched) -> Result<PathBuf> {
    let file_error = |problem: String| Error::File {
        path: dir.to_path_buf(),
        problem,
    };
    std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
    let gaps: Vec<(String, Vec<Gap>)> = (w.pairs.iter())
        .map(|l| (l.pair.to_string(), l.all_gaps(w.duration_ms)))
        .collect();
    let json = serde_json::json!({
        "schema": "calico-conformance/watch/v1",
        "verdicts": w.verdicts(),
        "gaps": gaps,
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
    /// at the end is a gap open until the end of the watch.
    pub(crate) fn watched() -> Watched {
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
        Watched {
            interval_ms: 100.0,
            budget_ms: 1000.0,
            duration_ms: 4000.0,
            pairs: vec![PairLog {
                pair,
                probes,
                connection_lost: None,
            }],
        }
    }

    #[test]
    fn gaps_run_from_the_first_lost_probe_to_the_next_answered_one() {
        let w = watched();
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
        // For a look, and for ci/render-report.sh: target/watch-example/watch.md.
        let dir = crate::run::target_dir().join("watch-example");
        write_report(&dir, &w).unwrap();
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
