//! A fake API server on loopback (`http://127.0.0.1:<port>`), for driving the kube target end to
//! end without a cluster: kube-rs' own client talks HTTP/1.1 to it, exec included.
//!
//! - Ordinary requests are answered by [`super::fake_api::Answerer`]: the scripted routes,
//!   and beyond them what the recorded real server answers (a plain-text `404 page not found`
//!   for an unserved group, a `NotFound` `Status` for a missing object).
//! - `GET .../pods/<probe>/exec?command=...` is upgraded to a WebSocket (`v5.channel.k8s.io`
//!   when the client offers it, else `v4.channel.k8s.io`), and the command **runs for real** on
//!   this machine, in the network namespace given for that probe pod (a lab node's), with this
//!   machine's `/proc` (the probe is hostPID): stdout and stderr stream as channel 1 and 2
//!   frames while it runs, and the exec ends with the `Status` on channel 3 that the recorded
//!   API server sends (`fixtures/recorded/kube/exec-status-*.json`): `Success`, or
//!   `NonZeroExitCode` with the real exit code put into the recorded message. A process killed
//!   by a signal reports 128 + the signal (not recorded). When the client goes away before the
//!   command ends, the command's whole process group is killed.
//!
//! What is not recorded, and so not claimed to be the real server's: the WebSocket handshake
//! details beyond RFC 6455 and the subprotocol choice, the absence of the empty per-channel
//! frames a real server may send first, and the answer to a binary that does not exist (here
//! the exit code of `nsenter`, 127, where the real server sends an `InternalError`).
//!
//! Test scaffolding (the `fake-api` feature, on for every test build).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use super::fake_api::{Answerer, Log};
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

/// A running loopback fake API server. Dropping it stops accepting and kills every command an
/// exec still runs.
pub struct FakeServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<State>,
    /// Every request, as `<METHOD> <path>`; an exec as `EXEC <probe> <argv...>`.
    pub log: Log,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Which network namespace an exec in each probe pod runs in (probe name → namespace path;
/// `None`: this process's own, for tests of the exec path alone, which then need no root).
pub type ProbeNetns = BTreeMap<String, Option<PathBuf>>;

struct State {
    answerer: std::sync::RwLock<Answerer<String>>,
    probes: ProbeNetns,
    log: Log,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl FakeServer {
    /// Starts the server on `127.0.0.1:0` (on the current tokio runtime).
    pub async fn start(
        routes: Vec<(String, u16, serde_json::Value)>,
        probes: ProbeNetns,
    ) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let log = Log::default();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(State {
            answerer: std::sync::RwLock::new(Answerer::new(routes)),
            probes,
            log: log.clone(),
            stop: stop_rx.clone(),
        });
        let state_kept = state.clone();
        let mut stopped = stop_rx;
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stopped.changed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(FakeServer {
            url,
            state: state_kept,
            log,
            stop,
        })
    }

    /// A connection to this server as [`super::connect`] makes one (a client for ordinary
    /// calls with read timeouts, one without for execs and watches), for context `context`.
    pub fn connection(&self, context: &str) -> super::Connection {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.connect_timeout = Some(std::time::Duration::from_secs(5));
        let mut exec_config = config.clone();
        exec_config.read_timeout = None;
        config.read_timeout = Some(std::time::Duration::from_secs(30));
        super::Connection {
            context: context.to_string(),
            server: self.url.clone(),
            // What the recorded cluster ran (fixtures/recorded/README.md).
            kubernetes_version: Some("v1.36.2".into()),
            client: kube::Client::try_from(config).unwrap(),
            exec_client: kube::Client::try_from(exec_config).unwrap(),
            ready_timeout: None,
        }
    }

    /// Answers `key` (`<METHOD> <path>`) with `code` and `body` from now on (the object changed
    /// on the cluster: a container restarted).
    pub fn set_route(&self, key: &str, code: u16, body: serde_json::Value) {
        (self.state.answerer.write().unwrap()).set(key, code, body);
    }

    /// The execs the server ran, as `EXEC <probe> <argv...>`.
    pub fn execs(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("EXEC "))
            .cloned()
            .collect()
    }
}

type Reply = hyper::Response<Full<Bytes>>;

fn reply(code: u16, content_type: &str, body: Vec<u8>) -> Reply {
    hyper::Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn handle(state: Arc<State>, mut req: hyper::Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if let Some(probe) = exec_pod(&path) {
        return upgrade_exec(state, probe, &mut req);
    }
    let answer = (state.answerer.read().unwrap()).answer(req.method().as_str(), req.uri());
    state.log.lock().unwrap().push(answer.key.clone());
    // Read the request body (an applied object, DeleteOptions) so the connection stays usable.
    let _ = req.into_body().collect().await;
    reply(answer.code, answer.content_type, answer.body)
}

/// The pod of an exec path `/api/v1/namespaces/<ns>/pods/<pod>/exec`.
fn exec_pod(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", "v1", "namespaces", _, "pods", pod, "exec"] => Some(pod.to_string()),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).map(|h| u8::from_str_radix(h, 16)) {
                    Ok(Ok(b)) => {
                        out.push(b);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `command` parameters of an exec query, in order.
fn exec_argv(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("command="))
        .map(form_decode)
        .collect()
}

/// The exec subprotocol.
#[derive(Clone, Copy)]
pub enum Channel {
    V4,
    V5,
}

fn upgrade_exec(state: Arc<State>, probe: String, req: &mut hyper::Request<Incoming>) -> Reply {
    let argv = exec_argv(req.uri().query().unwrap_or(""));
    state
        .log
        .lock()
        .unwrap()
        .push(format!("EXEC {probe} {}", argv.join(" ")));
    if argv.is_empty() {
        let status = super::fake_api::api_status(400, "BadRequest");
        return reply(
            400,
            "application/json",
            serde_json::to_vec(&status).unwrap(),
        );
    }
    let Some(netns) = state.probes.get(&probe).cloned() else {
        let status = super::fake_api::api_status(404, "NotFound");
        return reply(
            404,
            "application/json",
            serde_json::to_vec(&status).unwrap(),
        );
    };
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let offered = header(http::header::SEC_WEBSOCKET_PROTOCOL);
    let key = header(http::header::SEC_WEBSOCKET_KEY);
    let channel = if offered.contains("v5.channel.k8s.io") {
        Channel::V5
    } else if offered.contains("v4.channel.k8s.io") {
        Channel::V4
    } else {
        let status = super::fake_api::api_status(400, "BadRequest");
        return reply(
            400,
            "application/json",
            serde_json::to_vec(&status).unwrap(),
        );
    };
    let on_upgrade = hyper::upgrade::on(req);
    let stop = state.stop.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        run_exec(ws, channel, netns, argv, stop).await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    hyper::Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            match channel {
                Channel::V4 => "v4.channel.k8s.io",
                Channel::V5 => "v5.channel.k8s.io",
            },
        )
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Kills a process group when dropped (the exec's command and whatever it started).
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::binary(v)
}

async fn run_exec<S>(
    ws: WebSocketStream<S>,
    channel: Channel,
    netns: Option<PathBuf>,
    argv: Vec<String>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    let mut cmd = match &netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg(format!("--net={}", ns.display()))
                .arg("--")
                .args(&argv);
            c
        }
        None => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = super::fake_api::api_status(500, &format!("InternalError: {e}"));
            let _ = tx
                .send(frame(3, &serde_json::to_vec(&status).unwrap()))
                .await;
            let _ = tx.close().await;
            return;
        }
    };
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (mut out_open, mut err_open) = (true, true);
    let (mut obuf, mut ebuf) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    while out_open || err_open {
        tokio::select! {
            n = out.read(&mut obuf), if out_open => match n {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => if tx.send(frame(1, &obuf[..n])).await.is_err() { return },
            },
            n = err.read(&mut ebuf), if err_open => match n {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => if tx.send(frame(2, &ebuf[..n])).await.is_err() { return },
            },
            m = rx.next() => match m {
                // The client went away (its deadline): the group is killed on return.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => return,
        }
    }
    let code = match child.wait().await {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            s.code().or(s.signal().map(|sig| 128 + sig)).unwrap_or(255)
        }
        Err(_) => 255,
    };
    // It ended by itself: its group id may be reused from now on.
    group.0 = None;
    let status = exit_status(channel, code, &argv);
    let _ = tx.send(frame(3, &status)).await;
    let _ = tx.close().await;
}

/// The recorded channel-3 `Status` for exit code `code` of `argv` over `channel`.
pub fn exit_status(channel: Channel, code: i32, argv: &[String]) -> Vec<u8> {
    if code == 0 {
        return crate::fixtures::read_bytes("recorded/kube/exec-status-success.json");
    }
    let file = match channel {
        Channel::V4 => "recorded/kube/exec-status-exit-3-v4.json",
        Channel::V5 => "recorded/kube/exec-status-exit-3-v5.json",
    };
    let mut status: serde_json::Value =
        serde_json::from_slice(&crate::fixtures::read_bytes(file)).unwrap();
    // The recorded message names the exit code (and, over v4, the command) of the recorded
    // `sh -c 'echo out; echo err >&2; exit 3'`.
    let recorded = status["message"].as_str().unwrap_or_default().to_string();
    let message = match channel {
        Channel::V5 => recorded.replace("exit code 3", &format!("exit code {code}")),
        Channel::V4 => format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
    };
    status["message"] = message.into();
    status["details"]["causes"][0]["message"] = code.to_string().into();
    serde_json::to_vec(&status).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::place::{KubePlace, Netns};
    use std::time::Duration;

    /// kube-rs' own exec client against the server: stdout and stderr apart and whole (more
    /// than kube's pipe buffer), the exit code from the recorded status, 128 + the signal for
    /// a killed command, and a deadline that ends a command that does not.
    #[tokio::test]
    async fn kube_rs_execs_run_for_real_through_the_websocket() {
        let probes = ProbeNetns::from([("probe-x".to_string(), None)]);
        let server = FakeServer::start(Vec::new(), probes).await.unwrap();
        let conn = server.connection("kind-fake");
        let pods = kube::Api::namespaced(conn.exec_client.clone(), "ns");
        let place = KubePlace::new("probe".into(), pods, "probe-x".into(), Netns::Host);
        let t = Duration::from_secs(20);
        let out = place
            .exec(&["sh", "-c", "echo out; echo err >&2; exit 3"], t)
            .await
            .unwrap();
        assert_eq!(
            (
                out.code,
                out.stdout_text(),
                String::from_utf8_lossy(&out.stderr).to_string()
            ),
            (Some(3), "out\n".to_string(), "err\n".to_string())
        );
        let big = place
            .exec(
                &[
                    "sh",
                    "-c",
                    "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2",
                ],
                t,
            )
            .await
            .unwrap();
        assert_eq!(
            (big.code, big.stdout.len(), big.stderr.len()),
            (Some(0), 300000, 200000)
        );
        let killed = place.exec(&["sh", "-c", "kill -TERM $$"], t).await.unwrap();
        assert_eq!(killed.code, Some(143));
        let e = place
            .exec(&["sleep", "30"], Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("sleep 30"), "{e}");
        let execs = server.execs();
        assert_eq!(
            execs[0],
            "EXEC probe-x sh -c echo out; echo err >&2; exit 3"
        );
        // The abandoned `sleep` was killed with its group when the client went away.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let left = std::process::Command::new("pgrep")
            .args(["-f", "-P", &std::process::id().to_string(), "^sleep 30$"])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&left.stdout)
        );
    }

    #[test]
    fn exec_queries_decode_into_argv() {
        assert_eq!(
            exec_argv(
                "container=probe&stdout=true&command=sh&command=-c&command=echo+%24%24+%3E%262"
            ),
            ["sh", "-c", "echo $$ >&2"]
        );
        assert_eq!(form_decode("100%"), "100%");
    }

    /// The statuses are the recorded ones, with the real exit code.
    #[test]
    fn exit_statuses_follow_the_recordings() {
        let argv = vec!["sh".to_string(), "-c".into(), "exit 7".into()];
        let ok: serde_json::Value =
            serde_json::from_slice(&exit_status(Channel::V5, 0, &argv)).unwrap();
        assert_eq!(ok["status"], "Success");
        for ch in [Channel::V4, Channel::V5] {
            let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
                serde_json::from_slice(&exit_status(ch, 7, &argv)).unwrap();
            assert_eq!(super::super::place::exit_code_from_status(&s), Ok(7));
            assert!(s.message.unwrap().contains("exit code 7"));
        }
    }
}
