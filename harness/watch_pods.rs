//! The pods a watch probes from and to, followed through what a long watch outlives on a
//! cluster: a container restarted (a new init process to enter: the old PID is gone), a pod
//! made again under its name (a new network namespace, maybe a new IP), an exec cut or a node
//! probe restarted (the agent it ran is gone).
//!
//! A [`Tracked`] pod is where the watch enters it; every [`LOOK_AGAIN`] it is read again from
//! the API server and found again on its node ([`crate::kube::PodFinder`]), and when its
//! network namespace is another one the watch moves there. A local target's pods never move
//! (they are where the target was opened): there nothing is looked for again.
//!
//! The echo server on a cluster ([`EchoAgent`]) is the watch agent in the server pod, started
//! again whenever it ends before the watch, at most once a second, and moved with its pod; the
//! server's IP as the clients should probe it is published on a channel.

use crate::error::{Error, Result};
use crate::kube::PodFinder;
use crate::place::{Place, Streaming};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a tracked pod is looked for again.
pub const LOOK_AGAIN: Duration = Duration::from_secs(5);
/// How long looking for a pod again may take (a GET and two execs).
const LOOK_DEADLINE: Duration = Duration::from_secs(10);
/// How long the watch agent may take to start (an exec, python3's start, a bind).
pub const AGENT_START: Duration = Duration::from_secs(30);

/// A pod the watch enters: where (its place and IP), which network namespace that is when
/// known, and what finds it again (on a cluster).
#[derive(Clone)]
pub struct Tracked {
    /// The pod's name in the run's namespace.
    pub name: String,
    /// Where the watch enters it now.
    pub place: Place,
    /// Its IP now.
    pub ip: IpAddr,
    /// Its network namespace as last found (`node N, net:[inode]`); `None` until found.
    netns: Option<String>,
    finder: Option<PodFinder>,
    next_look: Instant,
}

impl Tracked {
    /// A pod that is where it is and stays there (a local target's).
    pub fn fixed(name: &str, place: Place, ip: IpAddr) -> Tracked {
        Tracked {
            name: name.to_string(),
            place,
            ip,
            netns: None,
            finder: None,
            next_look: Instant::now(),
        }
    }

    /// Pod `name` as `finder` finds it now, looked for again from then on. When it cannot be
    /// found that way (said as a warning), where the target found it (`place`, `ip`), looked
    /// for again all the same.
    pub async fn found(finder: PodFinder, name: &str, place: Place, ip: IpAddr) -> Tracked {
        let mut pod = Tracked::fixed(name, place, ip);
        pod.finder = Some(finder);
        if let Err(e) = pod.find_again().await {
            tracing::warn!("watch: {e}; entering pod {name} where the target found it");
        }
        pod.next_look = Instant::now() + LOOK_AGAIN;
        pod
    }

    /// Reads the pod again and moves to where it is now (after a start failed there).
    pub async fn find_again(&mut self) -> Result<()> {
        let Some(finder) = &self.finder else {
            return Ok(());
        };
        let found = tokio::time::timeout(LOOK_DEADLINE, finder.find(&self.name))
            .await
            .map_err(|_| {
                Error::Kube(format!(
                    "looking for pod {} again took over {LOOK_DEADLINE:?}",
                    self.name
                ))
            })??;
        self.place = found.place;
        self.ip = found.ip;
        self.netns = Some(found.netns);
        Ok(())
    }

    /// Once every [`LOOK_AGAIN`]: whether the pod is in another network namespace than where
    /// it was last found; if so it is moved there, and this says where it is now. A pod that
    /// cannot be read or found now stays where it was (it may be coming back).
    pub async fn moved(&mut self) -> Option<String> {
        if self.finder.is_none() || Instant::now() < self.next_look {
            return None;
        }
        self.next_look = Instant::now() + LOOK_AGAIN;
        let before = self.netns.clone();
        if let Err(e) = self.find_again().await {
            tracing::debug!("watch: {e}");
            return None;
        }
        match (&before, &self.netns) {
            (Some(a), Some(b)) if a != b => Some(format!(
                "pod {} was made again ({a} before, {b} now, IP {})",
                self.name, self.ip
            )),
            _ => None,
        }
    }
}

/// The watch agent's echo server in `server`, serving for `length` and a minute more (it is
/// stopped when the watch ends; the minute is for a stop that fails).
pub async fn start_agent_echo(
    server: &Place,
    ip: IpAddr,
    port: u16,
    length: Duration,
) -> Result<Streaming> {
    let argv = crate::watch_agent::serve_argv(ip, port, length + Duration::from_secs(60));
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    server
        .stream(&words, Some("serving"), AGENT_START)
        .await
        .map_err(|e| Error::Kube(format!("the watch's echo server: {e}")))
}

/// The echo server on a cluster, kept serving until the watch ends (see the module docs).
pub struct EchoAgent {
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    /// The server's IP as the clients should probe it now.
    pub ip: tokio::sync::watch::Receiver<IpAddr>,
}

impl EchoAgent {
    /// Starts the echo server in `server` (an error when it does not serve: the watch cannot
    /// start), kept serving on `port` until `until`.
    pub async fn start(mut server: Tracked, port: u16, until: Instant) -> Result<EchoAgent> {
        let left = until.saturating_duration_since(Instant::now());
        let agent = start_agent_echo(&server.place, server.ip, port, left).await?;
        let (tx, ip) = tokio::sync::watch::channel(server.ip);
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let task = tokio::spawn(async move {
            let mut agent = agent;
            let ended = || stop.load(Ordering::Relaxed) || Instant::now() >= until;
            loop {
                let why = serve_until_broken(&mut agent, &mut server, &ended).await;
                agent.stop().await;
                let Some(why) = why else { return };
                tracing::warn!("the watch's echo server: {why}; starting it again");
                match restart(&mut server, port, until, &ended).await {
                    Some(again) => agent = again,
                    None => return,
                }
                tx.send_if_modified(|ip| std::mem::replace(ip, server.ip) != server.ip);
            }
        });
        Ok(EchoAgent { done, task, ip })
    }

    /// Stops the echo server and waits until it has.
    pub async fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// Follows the echo agent until the watch ends (`None`), it ends, or its pod moved (why).
async fn serve_until_broken(
    agent: &mut Streaming,
    server: &mut Tracked,
    ended: &impl Fn() -> bool,
) -> Option<String> {
    while !ended() {
        tokio::select! {
            line = agent.next_line() => if line.is_none() {
                return Some(format!("{} ended before the watch", server.place.label()));
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if let Some(moved) = server.moved().await {
            return Some(moved);
        }
    }
    None
}

/// Starts the echo agent again, at most once a second (looking for its pod again after a
/// start that failed), until it serves or the watch ends (`None`).
async fn restart(
    server: &mut Tracked,
    port: u16,
    until: Instant,
    ended: &impl Fn() -> bool,
) -> Option<Streaming> {
    while !ended() {
        let tried = Instant::now();
        let left = until.saturating_duration_since(tried);
        match start_agent_echo(&server.place, server.ip, port, left).await {
            Ok(agent) => return Some(agent),
            Err(e) => tracing::debug!("{e}"),
        }
        if let Err(e) = server.find_again().await {
            tracing::debug!("watch: {e}");
        }
        let wait = Duration::from_secs(1).saturating_sub(tried.elapsed());
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !ended() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    None
}
