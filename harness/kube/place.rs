//! Places on a cluster: exec in the node probe pod.
//!
//! A host place runs `argv` in the probe (host network, host PID namespace). A pod or container
//! place runs `nsenter --net=/proc/<pid>/ns/net -- argv` in the probe, `<pid>` being the
//! container's init process on that node (see [`crate::kube::discovery`]).
//!
//! Exec done right: stdout and stderr are read concurrently (kube hands them over through
//! small in-memory pipes: reading one after the other deadlocks once the other fills), the exit
//! code comes from the `Status` the API server sends at the end ([`exit_code_from_status`]),
//! every exec has a deadline, and only transport failures (connection, WebSocket) are retried —
//! never a command that ran and exited non-zero.

use crate::error::{Error, Result};
use crate::place::{CmdOutput, PlaceBackend, command_line};
use crate::traffic::EchoReply;
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

/// The name of the probe pod's only container.
pub const PROBE_CONTAINER: &str = "probe";
/// How many times an exec is attempted when the transport fails.
const EXEC_ATTEMPTS: u32 = 3;
/// Buffer size of kube's stdout/stderr pipes for our execs (kube's default is 1 KiB).
const EXEC_BUFFER: usize = 64 * 1024;
/// How long a capture may take to become live (tcpdump printing `listening on`).
const CAPTURE_LIVE_DEADLINE: Duration = Duration::from_secs(15);
/// The longest a capture runs: tcpdump is wrapped in `timeout` so it ends by itself.
pub const CAPTURE_MAX_SECONDS: u32 = 60;

/// Why an exec's final `Status` is not an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecProblem {
    /// The API server reported a failure that is not an exit code (an `InternalError` because
    /// the binary does not exist, a container that is gone).
    Failed {
        /// `Status.reason` (`InternalError`).
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// A `NonZeroExitCode` status without a readable `ExitCode` cause.
    Unreadable(String),
    /// The connection ended without any status.
    NoStatus,
}

impl std::fmt::Display for ExecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecProblem::Failed { reason, message } => write!(f, "failed ({reason}): {message}"),
            ExecProblem::Unreadable(m) => write!(f, "ended with an unreadable exit status: {m}"),
            ExecProblem::NoStatus => {
                f.write_str("ended without an exit status from the API server")
            }
        }
    }
}

/// The exit code an exec's final `Status` carries: `Success` is 0; `NonZeroExitCode` carries the
/// code in `details.causes[reason=ExitCode].message` (the same over the v4 and v5 channel
/// protocols); anything else (`InternalError` for a missing binary) is an [`ExecProblem`].
pub fn exit_code_from_status(status: &Status) -> Result<i32, ExecProblem> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let reason = status.reason.clone().unwrap_or_default();
    let message = status.message.clone().unwrap_or_default();
    if reason == "NonZeroExitCode" {
        let cause = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref());
        return match cause.map(|m| m.trim().parse::<i32>()) {
            Some(Ok(code)) => Ok(code),
            _ => Err(ExecProblem::Unreadable(message)),
        };
    }
    Err(ExecProblem::Failed { reason, message })
}

/// Where in the probe a command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Netns {
    /// The probe's own namespace: the node's host network.
    Host,
    /// The network namespace of this node process (a container's init).
    Process(u32),
}

/// A place on a cluster: the node probe (host) or, through it, a pod's namespace.
#[derive(Clone)]
pub struct KubePlace {
    label: String,
    pods: Api<Pod>,
    probe: String,
    netns: Netns,
}

impl KubePlace {
    /// A place that runs commands in probe pod `probe` (reached through `pods`, the run
    /// namespace's pods API), in `netns`.
    pub(crate) fn new(label: String, pods: Api<Pod>, probe: String, netns: Netns) -> Self {
        KubePlace {
            label,
            pods,
            probe,
            netns,
        }
    }

    /// The probe pod the commands run in.
    pub fn probe(&self) -> &str {
        &self.probe
    }

    /// The node process whose network namespace this place is, `None` for a host place.
    pub fn netns_pid(&self) -> Option<u32> {
        match self.netns {
            Netns::Host => None,
            Netns::Process(pid) => Some(pid),
        }
    }

    /// The argv actually executed in the probe for `argv` in this place.
    pub fn wrapped_argv(&self, argv: &[&str]) -> Vec<String> {
        let mut out = Vec::with_capacity(argv.len() + 3);
        if let Netns::Process(pid) = self.netns {
            out.push("nsenter".to_string());
            out.push(format!("--net=/proc/{pid}/ns/net"));
            out.push("--".to_string());
        }
        out.extend(argv.iter().map(|a| a.to_string()));
        out
    }

    /// Runs `argv` in the place and waits for it, at most `deadline`. A non-zero exit is not an
    /// error here (see [`CmdOutput::ok`]); failing to run or missing the deadline is.
    pub async fn exec(&self, argv: &[&str], deadline: Duration) -> Result<CmdOutput> {
        let command = command_line(argv);
        if argv.is_empty() {
            return Err(Error::Command {
                place: self.label.clone(),
                command,
                problem: "is empty".into(),
            });
        }
        exec_collect(
            &self.pods,
            &self.probe,
            self.wrapped_argv(argv),
            &self.label,
            command,
            deadline,
        )
        .await
    }

    /// `GET http://ip:port/` with curl from source port `src_port` (`curl -6 ...
    /// http://[ip]:port/` for IPv6); returns the body.
    pub async fn curl(
        &self,
        ip: IpAddr,
        port: u16,
        src_port: u16,
        deadline: Duration,
    ) -> Result<Vec<u8>> {
        let argv = curl_argv(ip, port, src_port, deadline);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self
            .exec(&argv, deadline + Duration::from_secs(5))
            .await?
            .ok()?;
        Ok(out.stdout)
    }

    /// `ping -c count -W 1 ip` (`ping -6 ...` for IPv6); returns the TTL (hop limit) of each
    /// reply that came back (none when every request went unanswered: the caller decides what
    /// that means).
    pub async fn ping_ttls(&self, ip: IpAddr, count: u16, deadline: Duration) -> Result<Vec<u8>> {
        let argv = ping_argv(ip, count, deadline);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.exec(&argv, deadline + Duration::from_secs(5)).await?;
        let ttls = parse_ping_ttls(&out.stdout_text());
        match out.code {
            // 1: some or all replies missing; the replies that came are the answer.
            Some(0) | Some(1) => Ok(ttls),
            _ => out.ok().map(|_| ttls),
        }
    }

    /// iputils `ping -M do -s <payload>` (see [`crate::df_echo::ping_df_argv`]); what became
    /// of the request, read from its output by [`crate::df_echo::parse_ping_df`]. Exit codes 0
    /// (answered) and 1 (no answer, or an error answered) are both outcomes; others fail.
    pub async fn ping_df(
        &self,
        ip: Ipv4Addr,
        payload: u32,
        deadline: Duration,
    ) -> Result<crate::df_echo::DfEcho> {
        let argv = crate::df_echo::ping_df_argv(ip, payload);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.exec(&argv, deadline + Duration::from_secs(5)).await?;
        let text = format!(
            "{}{}",
            out.stdout_text(),
            String::from_utf8_lossy(&out.stderr)
        );
        let outcome = crate::df_echo::parse_ping_df(&text);
        match out.code {
            Some(0) | Some(1) => Ok(crate::df_echo::DfEcho { payload, outcome }),
            // iputils exits 2 on a local error ("message too long") as on a usage error.
            Some(2) if matches!(outcome, crate::df_echo::DfOutcome::RefusedAtSource { .. }) => {
                Ok(crate::df_echo::DfEcho { payload, outcome })
            }
            _ => out
                .ok()
                .map(|_| crate::df_echo::DfEcho { payload, outcome }),
        }
    }

    /// Starts `tcpdump -U -n -i <iface> -w - <bpf>` in the place (ending by itself after
    /// [`CAPTURE_MAX_SECONDS`]), waits until it is live (`listening on` on stderr) and hands
    /// its pcap stream to [`crate::capture::Capture::from_pcap_stream`]. Stopping the capture
    /// sends SIGINT to the remote tcpdump.
    pub async fn tcpdump(&self, iface: &str, bpf: &str) -> Result<crate::capture::Capture> {
        let script = capture_script(iface, bpf);
        let argv = ["sh", "-c", script.as_str()];
        let command = format!("tcpdump -U -n -i {iface} -w - {bpf}");
        let long = self
            .start_long(
                &argv,
                command,
                Some("listening on"),
                CAPTURE_LIVE_DEADLINE,
                "-INT",
            )
            .await?;
        Ok(crate::capture::Capture::from_pcap_stream(
            self.label.clone(),
            iface.to_string(),
            long.stdout,
            long.stop,
        ))
    }

    /// Starts `argv`, a command that prints its PID on stderr first, in the place and hands
    /// over its stdout as it comes, one line at a time (see [`crate::place::Streaming`]).
    /// Returns once the PID is read (and `ready` seen on stderr, when given), within
    /// `deadline`. Stopping it sends SIGTERM to that PID; it must also end by itself.
    pub async fn stream_lines(
        &self,
        argv: &[&str],
        command: String,
        ready: Option<&str>,
        deadline: Duration,
    ) -> Result<crate::place::Streaming> {
        let long = self
            .start_long(argv, command, ready, deadline, "-TERM")
            .await?;
        Ok(crate::place::Streaming::from_reader(long.stdout, long.stop))
    }

    /// The start of a long-running exec: see [`Self::stream_lines`]; `signal` is what its
    /// stop sends.
    async fn start_long(
        &self,
        argv: &[&str],
        command: String,
        ready: Option<&str>,
        deadline: Duration,
        signal: &'static str,
    ) -> Result<LongExec> {
        let fail = |problem: String| Error::Command {
            place: self.label.clone(),
            command: command.clone(),
            problem,
        };
        let ap = exec_params();
        let mut attached = self
            .pods
            .exec(&self.probe, self.wrapped_argv(argv), &ap)
            .await
            .map_err(|e| fail(format!("could not start in probe {}: {e}", self.probe)))?;
        let (Some(stdout), Some(stderr), Some(status)) =
            (attached.stdout(), attached.stderr(), attached.take_status())
        else {
            return Err(fail("the exec has no stdout/stderr".into()));
        };
        let mut stderr_lines = tokio::io::BufReader::new(stderr).lines();
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut pid: Option<u32> = None;
        let live = tokio::time::timeout(deadline, async {
            while let Some(line) = stderr_lines.next_line().await? {
                if pid.is_none() {
                    pid = line.trim().parse().ok();
                }
                let is_live = match ready {
                    Some(marker) => line.contains(marker),
                    None => pid.is_some(),
                };
                seen.push(line);
                if is_live {
                    return Ok::<bool, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        match live {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let status = status.await;
                let code = status.as_ref().map(exit_code_from_status);
                return Err(fail(format!(
                    "ended before it was ready ({code:?}); stderr: {}",
                    seen.join(" | ")
                )));
            }
            Ok(Err(e)) => return Err(fail(format!("reading its stderr failed: {e}"))),
            Err(_) => {
                return Err(fail(format!(
                    "was not ready after {:.1} s; stderr so far: {}",
                    started.elapsed().as_secs_f64(),
                    seen.join(" | ")
                )));
            }
        }
        let Some(pid) = pid else {
            return Err(fail(format!(
                "did not print its PID first; stderr: {}",
                seen.join(" | ")
            )));
        };
        // Keep draining stderr (a full pipe would stall stdout too) and keep the exec alive
        // (dropping the attached process aborts it) until the command ends.
        let label = self.label.clone();
        let what = command.clone();
        tokio::spawn(async move {
            let mut rest = String::new();
            let _ = stderr_lines.get_mut().read_to_string(&mut rest).await;
            let status = status.await;
            if let Err(e) = attached.join().await {
                tracing::debug!("{label}: exec of {what} ended: {e}");
            }
            tracing::debug!("{label}: {what} ended: {status:?}; stderr: {rest}");
        });
        let pods = self.pods.clone();
        let probe = self.probe.clone();
        let label = self.label.clone();
        let stop: crate::capture::StreamStop = Box::new(move || {
            async move {
                let pid_s = pid.to_string();
                let argv = vec!["kill".to_string(), signal.to_string(), pid_s.clone()];
                if let Err(e) = exec_collect(
                    &pods,
                    &probe,
                    argv,
                    &label,
                    format!("kill {signal} {pid_s}"),
                    Duration::from_secs(10),
                )
                .await
                {
                    tracing::warn!("{label}: stopping {command} (pid {pid}) failed: {e}");
                }
            }
            .boxed()
        });
        Ok(LongExec {
            stdout: Box::new(stdout),
            stop,
        })
    }
}

/// A long-running exec, started: its stdout and how to stop it.
struct LongExec {
    stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    stop: crate::capture::StreamStop,
}

impl PlaceBackend for KubePlace {
    /// `host kind-worker`, `pod calico-conformance-x/test-tools`.
    fn label(&self) -> &str {
        &self.label
    }

    fn run<'a>(
        &'a self,
        argv: &'a [&'a str],
        deadline: Duration,
    ) -> BoxFuture<'a, Result<CmdOutput>> {
        self.exec(argv, deadline).boxed()
    }

    fn capture<'a>(
        &'a self,
        iface: &'a str,
        bpf: &'a str,
    ) -> BoxFuture<'a, Result<crate::capture::Capture>> {
        self.tcpdump(iface, bpf).boxed()
    }

    fn http_get(
        &self,
        ip: IpAddr,
        port: u16,
        src_port: u16,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>>> {
        self.curl(ip, port, src_port, deadline).boxed()
    }

    fn ping(
        &self,
        ip: IpAddr,
        count: u16,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<Vec<EchoReply>>> {
        async move {
            Ok(self
                .ping_ttls(ip, count, deadline)
                .await?
                .into_iter()
                .enumerate()
                .map(|(i, ttl)| EchoReply {
                    seq: i as u16 + 1,
                    ttl,
                })
                .collect())
        }
        .boxed()
    }

    fn ping_df(
        &self,
        ip: Ipv4Addr,
        payload: u32,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<crate::df_echo::DfEcho>> {
        KubePlace::ping_df(self, ip, payload, deadline).boxed()
    }

    fn stream<'a>(
        &'a self,
        argv: &'a [&'a str],
        ready: Option<&'a str>,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<crate::place::Streaming>> {
        let command = crate::place::brief_command_line(argv);
        self.stream_lines(argv, command, ready, deadline).boxed()
    }
}

/// The capture wrapper: prints its PID on stderr (the PID `exec` keeps, so it is `timeout`'s,
/// which forwards SIGINT to tcpdump, or tcpdump's own where `timeout` execs it), then runs
/// tcpdump for at most [`CAPTURE_MAX_SECONDS`]. Interface and filter are passed as quoted words.
pub fn capture_script(iface: &str, bpf: &str) -> String {
    format!(
        "echo $$ >&2; exec timeout {CAPTURE_MAX_SECONDS} tcpdump -U -n -i {} -w - {}",
        shell_quote(iface),
        shell_quote(bpf)
    )
}

/// Quotes `s` as one POSIX shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// curl's argv for `GET http://ip:port/` from `src_port`: `curl -sS --max-time <s>
/// --local-port <src> http://1.2.3.4:8080/`, or with `-6` first and `http://[fd00::1]:8080/`
/// for IPv6.
pub fn curl_argv(ip: IpAddr, port: u16, src_port: u16, deadline: Duration) -> Vec<String> {
    let mut argv = vec!["curl".to_string()];
    if ip.is_ipv6() {
        argv.push("-6".into());
    }
    argv.extend([
        "-sS".to_string(),
        "--max-time".into(),
        deadline.as_secs().max(1).to_string(),
        "--local-port".into(),
        src_port.to_string(),
        format!("http://{}/", SocketAddr::new(ip, port)),
    ]);
    argv
}

/// ping's argv: `ping -c <count> -W 1 -w <s> <ip>`, with `-6` first for IPv6.
pub fn ping_argv(ip: IpAddr, count: u16, deadline: Duration) -> Vec<String> {
    let mut argv = vec!["ping".to_string()];
    if ip.is_ipv6() {
        argv.push("-6".into());
    }
    argv.extend([
        "-c".to_string(),
        count.max(1).to_string(),
        "-W".into(),
        "1".into(),
        "-w".into(),
        deadline.as_secs().max(1).to_string(),
        ip.to_string(),
    ]);
    argv
}

/// The TTL of each echo reply in `ping`'s output (`64 bytes from 192.168.1.2: icmp_seq=1
/// ttl=63 time=0.334 ms`; iputils and busybox print the same `ttl=` field). For IPv6 the hop
/// limit: recent iputils print it as `ttl=` too, older ones (and `ping6`) as `hlim=`.
pub fn parse_ping_ttls(text: &str) -> Vec<u8> {
    text.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("ttl=").or_else(|| w.strip_prefix("hlim=")))
                .and_then(|t| t.parse().ok())
        })
        .collect()
}

fn exec_params() -> AttachParams {
    AttachParams::default()
        .container(PROBE_CONTAINER)
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .tty(false)
        .max_stdout_buf_size(EXEC_BUFFER)
        .max_stderr_buf_size(EXEC_BUFFER)
}

/// What one exec attempt ended with.
enum AttemptError {
    /// The connection or WebSocket failed: worth another attempt.
    Transport(String),
    /// The API refused (no such pod, forbidden) or the exec itself failed: final.
    Final(String),
}

/// Whether a kube error is a transport failure (retried) rather than an answer (not retried).
fn is_transport(e: &kube::Error) -> bool {
    !matches!(
        e,
        kube::Error::Api(_) | kube::Error::BuildRequest(_) | kube::Error::SerdeError(_)
    )
}

async fn exec_attempt(
    pods: &Api<Pod>,
    probe: &str,
    argv: &[String],
) -> std::result::Result<(Vec<u8>, Vec<u8>, i32), AttemptError> {
    let mut attached = pods
        .exec(probe, argv.to_vec(), &exec_params())
        .await
        .map_err(|e| {
            if is_transport(&e) {
                AttemptError::Transport(e.to_string())
            } else {
                AttemptError::Final(format!("exec in probe {probe} was refused: {e}"))
            }
        })?;
    let out = attached.stdout();
    let err = attached.stderr();
    let status = attached.take_status();
    let read_out = async {
        let mut buf = Vec::new();
        if let Some(mut r) = out {
            r.read_to_end(&mut buf).await?;
        }
        Ok::<_, std::io::Error>(buf)
    };
    let read_err = async {
        let mut buf = Vec::new();
        if let Some(mut r) = err {
            r.read_to_end(&mut buf).await?;
        }
        Ok::<_, std::io::Error>(buf)
    };
    let status = async {
        match status {
            Some(s) => s.await,
            None => None,
        }
    };
    let (stdout, stderr, status) = tokio::join!(read_out, read_err, status);
    let joined = attached.join().await;
    let stdout = stdout.map_err(|e| AttemptError::Transport(format!("reading stdout: {e}")))?;
    let stderr = stderr.map_err(|e| AttemptError::Transport(format!("reading stderr: {e}")))?;
    match status {
        Some(s) => match exit_code_from_status(&s) {
            Ok(code) => Ok((stdout, stderr, code)),
            Err(p) => Err(AttemptError::Final(p.to_string())),
        },
        None => match joined {
            Err(e) => Err(AttemptError::Transport(e.to_string())),
            Ok(()) => Err(AttemptError::Final(ExecProblem::NoStatus.to_string())),
        },
    }
}

/// Runs `argv` in `probe` with retries on transport failures, all within `deadline`.
pub(crate) async fn exec_collect(
    pods: &Api<Pod>,
    probe: &str,
    argv: Vec<String>,
    label: &str,
    command: String,
    deadline: Duration,
) -> Result<CmdOutput> {
    let started = Instant::now();
    let work = async {
        let mut last = String::new();
        for attempt in 1..=EXEC_ATTEMPTS {
            match exec_attempt(pods, probe, &argv).await {
                Ok(done) => return Ok(done),
                Err(AttemptError::Final(m)) => return Err(m),
                Err(AttemptError::Transport(m)) => {
                    tracing::debug!("{label}: exec attempt {attempt} failed: {m}");
                    last = m;
                    if attempt < EXEC_ATTEMPTS {
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                    }
                }
            }
        }
        Err(format!(
            "failed {EXEC_ATTEMPTS} times to reach probe {probe}: {last}"
        ))
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok((stdout, stderr, code))) => Ok(CmdOutput {
            place: label.to_string(),
            command,
            code: Some(code),
            stdout,
            stderr,
        }),
        Ok(Err(problem)) => Err(Error::Command {
            place: label.to_string(),
            command,
            problem,
        }),
        Err(_) => Err(Error::Timeout {
            place: label.to_string(),
            command,
            seconds: started.elapsed().as_secs_f64(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(file: &str) -> Status {
        serde_json::from_str(&crate::fixtures::read_text(&format!(
            "recorded/kube/{file}"
        )))
        .unwrap()
    }

    #[test]
    fn a_successful_exec_is_exit_code_zero() {
        assert_eq!(
            exit_code_from_status(&status("exec-status-success.json")),
            Ok(0)
        );
    }

    #[test]
    fn non_zero_exit_codes_are_read_over_v4_and_v5() {
        assert_eq!(
            exit_code_from_status(&status("exec-status-exit-3-v4.json")),
            Ok(3)
        );
        assert_eq!(
            exit_code_from_status(&status("exec-status-exit-3-v5.json")),
            Ok(3)
        );
    }

    #[test]
    fn a_missing_binary_is_a_problem_carrying_the_message() {
        let problem =
            exit_code_from_status(&status("exec-status-no-such-binary.json")).unwrap_err();
        let ExecProblem::Failed { reason, message } = &problem else {
            panic!("{problem:?}");
        };
        assert_eq!(reason, "InternalError");
        assert!(message.contains("/no/such/binary"), "{message}");
        assert!(problem.to_string().contains("no such file or directory"));
    }

    #[test]
    fn a_non_zero_status_without_a_code_is_unreadable() {
        let mut s = status("exec-status-exit-3-v5.json");
        s.details = None;
        assert!(matches!(
            exit_code_from_status(&s),
            Err(ExecProblem::Unreadable(_))
        ));
    }

    #[test]
    fn ping_ttls_are_read_from_the_recorded_output() {
        let text = crate::fixtures::read_text("recorded/pod/test-tools-ping-c2c.txt");
        assert_eq!(parse_ping_ttls(&text), vec![63, 63]);
        let busybox = "PING 10.0.0.1 (10.0.0.1): 56 data bytes\n64 bytes from 10.0.0.1: seq=0 ttl=62 time=0.1 ms\n";
        assert_eq!(parse_ping_ttls(busybox), vec![62]);
        assert!(parse_ping_ttls("2 packets transmitted, 0 received").is_empty());
    }

    #[test]
    fn ipv6_ping_hop_limits_are_read_as_hlim_or_ttl() {
        let hlim = "PING fd00:10:244::5(fd00:10:244::5) 56 data bytes\n64 bytes from fd00:10:244::5: icmp_seq=1 hlim=62 time=0.081 ms\n";
        assert_eq!(parse_ping_ttls(hlim), vec![62]);
        let ttl = "PING fd00:10:244::5 (fd00:10:244::5) 56 data bytes\n64 bytes from fd00:10:244::5: icmp_seq=1 ttl=62 time=0.081 ms\n64 bytes from fd00:10:244::5: icmp_seq=2 ttl=62 time=0.070 ms\n";
        assert_eq!(parse_ping_ttls(ttl), vec![62, 62]);
    }

    #[test]
    fn ipv6_pings_and_gets_use_dash_6_and_a_bracketed_url() {
        let d = Duration::from_secs(5);
        let v4: IpAddr = Ipv4Addr::new(192, 168, 1, 2).into();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(
            ping_argv(v4, 2, d),
            ["ping", "-c", "2", "-W", "1", "-w", "5", "192.168.1.2"]
        );
        assert_eq!(
            ping_argv(v6, 2, d),
            ["ping", "-6", "-c", "2", "-W", "1", "-w", "5", "fd00::1"]
        );
        assert_eq!(
            curl_argv(v4, 8080, 40000, d),
            [
                "curl",
                "-sS",
                "--max-time",
                "5",
                "--local-port",
                "40000",
                "http://192.168.1.2:8080/"
            ]
        );
        assert_eq!(
            curl_argv(v6, 8080, 40000, d),
            [
                "curl",
                "-6",
                "-sS",
                "--max-time",
                "5",
                "--local-port",
                "40000",
                "http://[fd00::1]:8080/"
            ]
        );
    }

    #[test]
    fn the_capture_script_quotes_the_filter_and_prints_its_pid_first() {
        let s = capture_script("eth0", "tcp port 8080 and host 1.2.3.4");
        assert_eq!(
            s,
            "echo $$ >&2; exec timeout 60 tcpdump -U -n -i 'eth0' -w - 'tcp port 8080 and host 1.2.3.4'"
        );
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }
}
