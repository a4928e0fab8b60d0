//! The kubeconfig context: the guard that refuses contexts not meant for privileged test
//! pods, connecting with one bounded reachability check, and the settings read from the
//! environment.

use super::api::CONNECT_DEADLINE;
use crate::error::{Error, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::time::Duration;

/// Refuses any context whose name does not start with `kind-`, unless `allow`
/// (`CALICO_ALLOW_CONTEXT`) is exactly that name: the suite creates privileged pods.
pub fn check_context(name: &str, allow: Option<&str>) -> Result<()> {
    if name.starts_with("kind-") || allow == Some(name) {
        return Ok(());
    }
    let also = match allow {
        Some(a) if !a.is_empty() => format!(" (CALICO_ALLOW_CONTEXT is `{a}`, not `{name}`)"),
        _ => String::new(),
    };
    Err(Error::Preflight(format!(
        "refusing kubeconfig context `{name}`: the suite creates privileged, host-network pods, so it \
         only runs against contexts named `kind-*` unless CALICO_ALLOW_CONTEXT={name} is set{also}"
    )))
}

/// The current kubeconfig context and its API server URL (honouring `KUBECONFIG`).
struct CurrentContext {
    name: String,
    server: String,
    kubeconfig: Kubeconfig,
}

fn current_context() -> Result<CurrentContext> {
    let kubeconfig = Kubeconfig::read().map_err(|e| {
        Error::Kube(format!(
            "cannot read the kubeconfig (KUBECONFIG or ~/.kube/config): {e}"
        ))
    })?;
    let name = kubeconfig
        .current_context
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Kube("the kubeconfig has no current-context".into()))?;
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| Error::Kube(format!("kubeconfig context `{name}` is not defined")))?;
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_else(|| format!("<no server for cluster {cluster}>"));
    Ok(CurrentContext {
        name,
        server,
        kubeconfig,
    })
}

/// The name of the current kubeconfig context (from `KUBECONFIG` or `~/.kube/config`).
pub fn context_name() -> Result<String> {
    current_context().map(|c| c.name)
}

/// A checked connection: the context passed the guard and its API server answered.
pub struct Connection {
    /// The context name.
    pub context: String,
    /// The API server URL from the kubeconfig.
    pub server: String,
    /// The API server's `gitVersion` (`v1.36.2`), as it answered the check.
    pub kubernetes_version: Option<String>,
    /// For ordinary API calls (connect and read timeouts set).
    pub client: Client,
    /// For exec sessions and watches (no read timeout: a capture or a watch may be silent for a
    /// while; every exec and wait has its own deadline instead).
    pub exec_client: Client,
    /// How long pods may take to become Ready, when not `CALICO_READY_TIMEOUT`'s (a caller's
    /// own deadline, e.g. a test's).
    pub ready_timeout: Option<std::time::Duration>,
}

/// Reads the current context, applies [`check_context`] and checks the API server answers
/// within [`CONNECT_DEADLINE`]. The error of an unreachable server names the context and URL.
pub async fn connect() -> Result<Connection> {
    let ctx = current_context()?;
    check_context(
        &ctx.name,
        std::env::var("CALICO_ALLOW_CONTEXT").ok().as_deref(),
    )?;
    let unreachable = |why: String| {
        Error::Kube(format!(
            "cannot reach the API server of context `{}` at {}: {why}",
            ctx.name, ctx.server
        ))
    };
    let mut config =
        Config::from_custom_kubeconfig(ctx.kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .map_err(|e| unreachable(format!("the kubeconfig is unusable: {e}")))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    let mut exec_config = config.clone();
    exec_config.read_timeout = None;
    config.read_timeout = Some(Duration::from_secs(30));
    config.reset_reader_on_write = true;
    let client = Client::try_from(config).map_err(|e| unreachable(e.to_string()))?;
    let exec_client = Client::try_from(exec_config).map_err(|e| unreachable(e.to_string()))?;
    let kubernetes_version =
        match tokio::time::timeout(CONNECT_DEADLINE, client.apiserver_version()).await {
            Ok(Ok(info)) => Some(info.git_version),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} s",
                    CONNECT_DEADLINE.as_secs()
                )));
            }
        };
    Ok(Connection {
        context: ctx.name,
        server: ctx.server,
        kubernetes_version,
        client,
        exec_client,
        ready_timeout: None,
    })
}

pub(crate) fn env_seconds(name: &str, default: Duration) -> Result<Duration> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| Error::config(name, &v, "not a number of seconds")),
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::KubeTarget;
    use crate::kube::fake_api::{ENV, set_env, write_kubeconfig};
    use std::time::Instant;

    #[test]
    fn only_kind_contexts_pass_without_an_explicit_allowance() {
        assert!(check_context("kind-calico", None).is_ok());
        assert!(check_context("kind-", None).is_ok());
        assert!(check_context("prod-east", Some("prod-east")).is_ok());
        let e = check_context("prod-east", None).unwrap_err().to_string();
        assert!(
            e.contains("`prod-east`") && e.contains("CALICO_ALLOW_CONTEXT=prod-east"),
            "{e}"
        );
        let e = check_context("prod-east", Some("prod-west"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`prod-west`, not `prod-east`"), "{e}");
        assert!(check_context("kindly-prod", None).is_err());
        assert!(check_context("prod-east", Some("")).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_api_fails_within_ten_seconds_naming_context_and_server() {
        let _env = ENV.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let server = format!("https://127.0.0.1:{port}");
        let path = write_kubeconfig(dir.path(), "kind-unreachable", &server);
        set_env("KUBECONFIG", Some(path.as_os_str()));
        set_env("CALICO_ALLOW_CONTEXT", None);
        let started = Instant::now();
        let result = KubeTarget::setup("unreachable-test").await;
        let took = started.elapsed();
        set_env("KUBECONFIG", None);
        let Err(e) = result else {
            panic!("setup against a closed port succeeded");
        };
        let e = e.to_string();
        assert!(took < Duration::from_secs(10), "took {took:?}: {e}");
        assert!(e.contains("kind-unreachable") && e.contains(&server), "{e}");
    }

    #[tokio::test]
    async fn a_non_kind_context_is_refused_before_anything_is_contacted() {
        let _env = ENV.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let path = write_kubeconfig(dir.path(), "prod-east", "https://192.0.2.1:6443");
        set_env("KUBECONFIG", Some(path.as_os_str()));
        set_env("CALICO_ALLOW_CONTEXT", None);
        let started = Instant::now();
        let result = KubeTarget::setup("refused-test").await;
        set_env("KUBECONFIG", None);
        let Err(e) = result else {
            panic!("setup against prod-east was not refused");
        };
        let e = e.to_string();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "contacted the server? {e}"
        );
        assert!(
            e.contains("`prod-east`") && e.contains("CALICO_ALLOW_CONTEXT"),
            "{e}"
        );
    }
}
