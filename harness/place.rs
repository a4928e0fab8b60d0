//! A place: a network namespace and a way to run a command in it.
//!
//! Lab and topology places are local namespaces entered with `setns` in the child
//! ([`crate::netns::command_in`]); kube places exec in the node probe pod
//! ([`crate::kube::place::KubePlace`]). Claims only see [`Place`].

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

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

/// A network namespace on this machine (lab and topology targets).
#[derive(Debug, Clone)]
pub struct LocalPlace {
    /// Human name: `host k8s-worker-1`, `pod default/test-tools`.
    pub label: String,
    /// Any path `setns` accepts: `/proc/PID/ns/net`, `/run/netns/NAME`.
    pub netns: PathBuf,
}

/// Where a claim observes.
#[derive(Clone)]
pub enum Place {
    Local(LocalPlace),
    Kube(Box<crate::kube::place::KubePlace>),
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Place {
    /// A local namespace.
    pub fn local(label: impl Into<String>, netns: impl Into<PathBuf>) -> Self {
        Place::Local(LocalPlace {
            label: label.into(),
            netns: netns.into(),
        })
    }

    /// Human name of the place, used in every message.
    pub fn label(&self) -> &str {
        match self {
            Place::Local(p) => &p.label,
            Place::Kube(p) => p.label(),
        }
    }

    /// The local namespace path, when the place is on this machine.
    pub fn netns(&self) -> Option<&Path> {
        match self {
            Place::Local(p) => Some(&p.netns),
            Place::Kube(_) => None,
        }
    }

    /// Runs `argv` in the place and waits for it, at most `deadline`. A non-zero exit is not
    /// an error here (see [`CmdOutput::ok`]); failing to start or missing the deadline is.
    pub async fn run(&self, argv: &[&str], deadline: Duration) -> Result<CmdOutput> {
        match self {
            Place::Local(p) => run_local(p, argv, deadline).await,
            Place::Kube(p) => p.run(argv, deadline).await,
        }
    }

    /// Runs `argv` with the default deadline and fails on a non-zero exit.
    pub async fn run_ok(&self, argv: &[&str]) -> Result<CmdOutput> {
        self.run(argv, COMMAND_DEADLINE).await?.ok()
    }
}

async fn run_local(place: &LocalPlace, argv: &[&str], deadline: Duration) -> Result<CmdOutput> {
    let command = command_line(argv);
    let (program, args) = argv.split_first().ok_or_else(|| Error::Command {
        place: place.label.clone(),
        command: command.clone(),
        problem: "is empty".into(),
    })?;
    let std_cmd = {
        let mut c = crate::netns::command_in(&place.netns, program)?;
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| Error::Command {
        place: place.label.clone(),
        command: command.clone(),
        problem: if e.kind() == std::io::ErrorKind::NotFound {
            format!("could not start: `{program}` is not installed")
        } else {
            format!("could not start: {e}")
        },
    })?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let started = Instant::now();
    let work = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let read_out = async {
            if let Some(o) = out.as_mut() {
                o.read_to_end(&mut stdout).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let read_err = async {
            if let Some(e) = err.as_mut() {
                e.read_to_end(&mut stderr).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let (a, b) = tokio::join!(read_out, read_err);
        a?;
        b?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, stdout, stderr))
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok((status, stdout, stderr))) => Ok(CmdOutput {
            place: place.label.clone(),
            command,
            code: status.code(),
            stdout,
            stderr,
        }),
        Ok(Err(e)) => Err(Error::Command {
            place: place.label.clone(),
            command,
            problem: format!("failed while running: {e}"),
        }),
        Err(_) => Err(Error::Timeout {
            place: place.label.clone(),
            command,
            seconds: started.elapsed().as_secs_f64(),
        }),
    }
}
