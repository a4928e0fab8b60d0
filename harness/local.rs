//! Places on this machine: network namespaces of the lab or of a topology file, entered with
//! `setns` in a child before exec ([`crate::netns::command_in`]) or in a thread
//! ([`crate::netns::in_netns`]). Captures, pings and HTTP run in-process.

use crate::capture::Capture;
use crate::error::{Error, Result};
use crate::place::{CmdOutput, Place, PlaceBackend, command_line};
use crate::traffic::{self, EchoReply};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A network namespace on this machine (lab and topology targets).
#[derive(Debug, Clone)]
pub struct LocalPlace {
    /// Human name: `host k8s-worker-1`, `pod default/test-tools`.
    pub label: String,
    /// Any path `setns` accepts: `/proc/PID/ns/net`, `/run/netns/NAME`.
    pub netns: PathBuf,
}

impl LocalPlace {
    /// A place in the local namespace `netns` (any path `setns` accepts).
    pub fn place(label: impl Into<String>, netns: impl Into<PathBuf>) -> Place {
        Place::new(LocalPlace {
            label: label.into(),
            netns: netns.into(),
        })
    }
}

impl PlaceBackend for LocalPlace {
    fn label(&self) -> &str {
        &self.label
    }

    fn netns(&self) -> Option<&Path> {
        Some(&self.netns)
    }

    fn run<'a>(
        &'a self,
        argv: &'a [&'a str],
        deadline: Duration,
    ) -> BoxFuture<'a, Result<CmdOutput>> {
        run_local(self, argv, deadline).boxed()
    }

    fn capture<'a>(&'a self, iface: &'a str, _bpf: &'a str) -> BoxFuture<'a, Result<Capture>> {
        async move { Capture::native(&self.label, &self.netns, iface) }.boxed()
    }

    fn http_get(
        &self,
        ip: IpAddr,
        port: u16,
        src_port: u16,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>>> {
        traffic::in_netns(&self.label, &self.netns, move |label| {
            traffic::http_get_here(label, ip, port, src_port, deadline)
        })
        .boxed()
    }

    fn ping(
        &self,
        ip: IpAddr,
        count: u16,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<Vec<EchoReply>>> {
        traffic::in_netns(&self.label, &self.netns, move |label| {
            traffic::ping_here(label, ip, count, deadline)
        })
        .boxed()
    }

    fn ping_df(
        &self,
        ip: Ipv4Addr,
        payload: u32,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<crate::df_echo::DfEcho>> {
        traffic::in_netns(&self.label, &self.netns, move |label| {
            crate::df_echo::df_echo_here(label, ip, payload, deadline)
        })
        .boxed()
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
