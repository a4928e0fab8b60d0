//! A place: a network namespace and a way to act in it — run a command, capture on an
//! interface, make an HTTP GET, ping.
//!
//! Every backend implements one trait, [`PlaceBackend`]: local namespaces (lab and topology
//! targets, `crate::local::LocalPlace`: `setns` in a child or a thread) and cluster places
//! ([`crate::kube::place::KubePlace`]: exec in the node probe pod). Claims only see [`Place`],
//! a cheap handle to one of them; a new operation is one trait method, not a switch per file.

use crate::capture::Capture;
use crate::df_echo::DfEcho;
use crate::error::{Error, Result};
use crate::traffic::EchoReply;
use futures::future::BoxFuture;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The default deadline for one command.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(10);

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Where it ran (a place label).
    pub place: String,
    /// The command line, for messages.
    pub command: String,
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CmdOutput {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fails unless the command exited 0; the error carries stderr.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            return Ok(self);
        }
        let how = match self.code {
            Some(c) => format!("exited with code {c}"),
            None => "was killed by a signal".to_string(),
        };
        Err(Error::Command {
            place: self.place.clone(),
            command: self.command.clone(),
            problem: format!("{how}: {}", String::from_utf8_lossy(&self.stderr).trim()),
        })
    }
}

/// Joins an argv into one line for messages.
pub fn command_line(argv: &[&str]) -> String {
    argv.join(" ")
}

/// [`command_line`] with every word of over 120 bytes (a script passed with `-c`) shown as
/// `<a script of N bytes>`.
pub fn brief_command_line(argv: &[&str]) -> String {
    let words: Vec<String> = (argv.iter())
        .map(|w| match w.len() > 120 {
            true => format!("<a script of {} bytes>", w.len()),
            false => w.to_string(),
        })
        .collect();
    words.join(" ")
}

/// What a place can do. Implemented by `crate::local::LocalPlace` and
/// [`crate::kube::place::KubePlace`].
pub trait PlaceBackend: Send + Sync {
    /// Human name, used in every message: `host k8s-worker-1`, `pod default/test-tools`.
    fn label(&self) -> &str;

    /// The namespace's path, when the place is on this machine.
    fn netns(&self) -> Option<&Path> {
        None
    }

    /// Runs `argv` in the place and waits for it, at most `deadline`. A non-zero exit is not
    /// an error here (see [`CmdOutput::ok`]); failing to start or missing the deadline is.
    fn run<'a>(
        &'a self,
        argv: &'a [&'a str],
        deadline: Duration,
    ) -> BoxFuture<'a, Result<CmdOutput>>;

    /// Starts capturing on `iface` and returns once the capture is live. `bpf` is a tcpdump
    /// filter, used where the capture runs tcpdump; claims filter frames themselves.
    fn capture<'a>(&'a self, iface: &'a str, bpf: &'a str) -> BoxFuture<'a, Result<Capture>>;

    /// `GET /` from this place to `ip:port` (IPv4, or IPv6: `http://[ip]:port/`), from source
    /// port `src_port`; returns the body.
    fn http_get(
        &self,
        ip: IpAddr,
        port: u16,
        src_port: u16,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>>>;

    /// Pings `ip` (IPv4, or IPv6 with ICMPv6) `count` times; returns the replies that came back
    /// before `deadline` ([`EchoReply::ttl`] is the hop limit for IPv6).
    fn ping(
        &self,
        ip: IpAddr,
        count: u16,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<Vec<EchoReply>>>;

    /// Sends an ICMP echo request of `payload` bytes with Don't Fragment to `ip` (retrying
    /// within `deadline`) and says what became of it: answered, refused at the source, an ICMP
    /// error such as fragmentation needed, or lost (MTU-2).
    fn ping_df(
        &self,
        ip: Ipv4Addr,
        payload: u32,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<DfEcho>>;

    /// Starts `argv`, a command that prints its PID on stderr first, and returns once that is
    /// read (and `ready` seen on its stderr, when given), within `deadline`: its stdout lines
    /// then come as printed. Only where the suite cannot act in the namespace itself (a
    /// cluster); a local place says so.
    fn stream<'a>(
        &'a self,
        argv: &'a [&'a str],
        ready: Option<&'a str>,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Streaming>> {
        let _ = (ready, deadline);
        Box::pin(async move {
            Err(Error::Command {
                place: self.label().to_string(),
                command: brief_command_line(argv),
                problem: "cannot stream here: the suite acts in this namespace itself".into(),
            })
        })
    }
}

/// A long-running command in a place: its stdout, one line at a time as it is printed, and how
/// to stop it early (it ends by itself too). What `watch` runs on a cluster.
pub struct Streaming {
    lines: tokio::sync::mpsc::Receiver<String>,
    stop: Option<crate::capture::StreamStop>,
}

impl Streaming {
    /// Lines read from `reader` until it ends; `stop` stops the command.
    pub fn from_reader(
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        stop: crate::capture::StreamStop,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let (tx, lines) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(reader).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        Streaming {
            lines,
            stop: Some(stop),
        }
    }

    /// The next line; `None` once the command's stdout has ended.
    pub async fn next_line(&mut self) -> Option<String> {
        self.lines.recv().await
    }

    /// Stops the command (once; later calls do nothing).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop().await;
        }
    }
}

/// Where a claim observes: a handle to a [`PlaceBackend`], cheap to clone.
#[derive(Clone)]
pub struct Place(Arc<dyn PlaceBackend>);

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Place {
    /// A place of any backend.
    pub fn new(backend: impl PlaceBackend + 'static) -> Self {
        Place(Arc::new(backend))
    }

    /// Runs `argv` with the default deadline and fails on a non-zero exit.
    pub async fn run_ok(&self, argv: &[&str]) -> Result<CmdOutput> {
        self.run(argv, COMMAND_DEADLINE).await?.ok()
    }
}

/// A place is used through its backend's methods (`place.run(..)`, `place.capture(..)`, ...):
/// no forwarding layer to keep in step with the trait.
impl std::ops::Deref for Place {
    type Target = dyn PlaceBackend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
