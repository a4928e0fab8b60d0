//! One deployment, discovered once, for all the processes of a cargo-nextest run.
//!
//! Every nextest test is a process of its own, and all processes of a run share one namespace
//! (see [`crate::run::run_id`]). Without help each would repeat the whole setup: the Calico
//! check, server-side apply of every object, the readiness waits, and the discovery execs on
//! every node (67 s for a nextest run against 21 s for `cargo test` on a real cluster). So the
//! processes take turns on a lock file in the run's folder; the first sets up and writes what
//! it found (`kube-target.json`: facts, probes, each pod's init PIDs, and the uid and
//! resourceVersion of every pod of the namespace); each later one lists the namespace's pods
//! once and, when every uid and resourceVersion is unchanged (no pod was replaced, restarted or
//! rescheduled), attaches without a single exec. Anything else — no file, a file it cannot
//! read, another context, a changed pod — makes it set up again, as the first did.

use super::api::{DEFAULT_READY_TIMEOUT, DEFAULT_TEARDOWN_TIMEOUT};
use super::context::connect;
use super::context::{Connection, env_seconds};
use super::manifests;
use super::setup::{Discovered, KubeTarget, versions_of};
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::path::Path;
use std::time::{Duration, Instant};

/// The lock file and the discovery file of a run's folder.
const LOCK_FILE: &str = "kube-target.lock";
const DISCOVERY_FILE: &str = "kube-target.json";

/// Opens the kube target for this run: connects, then sets up alone ([`KubeTarget::setup_on`])
/// or, under cargo-nextest, sets up or attaches to the deployment the run's processes share.
pub async fn open(run_id: &str) -> Result<KubeTarget> {
    let conn = connect().await?;
    if crate::run::shared_with_other_processes() {
        return setup_shared(&conn, run_id).await;
    }
    KubeTarget::setup_on(&conn, run_id).await
}

/// Sets up run `run_id` with a probe on every Ready, schedulable node (the sweep): one
/// process's own, never shared with a nextest run's other processes.
pub async fn open_every_node(run_id: &str) -> Result<KubeTarget> {
    let conn = connect().await?;
    KubeTarget::setup_scoped(&conn, run_id, super::setup::Scope::EveryNode).await
}

/// Sets up, or attaches to, the deployment shared by this nextest run (see the module docs).
pub(crate) async fn setup_shared(conn: &Connection, run_id: &str) -> Result<KubeTarget> {
    setup_shared_in(conn, run_id, &crate::run::evidence_root()).await
}

/// [`setup_shared`] with the run's folder `dir`.
pub(crate) async fn setup_shared_in(
    conn: &Connection,
    run_id: &str,
    dir: &Path,
) -> Result<KubeTarget> {
    let started = Instant::now();
    // Another process may be setting up: wait for as long as a setup may take.
    let wait = env_seconds("CALICO_READY_TIMEOUT", DEFAULT_READY_TIMEOUT)?
        + env_seconds("CALICO_TEARDOWN_TIMEOUT", DEFAULT_TEARDOWN_TIMEOUT)?
        + Duration::from_secs(60);
    let lock_path = dir.join(LOCK_FILE);
    let lock = tokio::task::spawn_blocking(move || crate::run::lock_exclusive(&lock_path, wait))
        .await
        .map_err(|e| Error::Internal(format!("waiting for the run's lock file: {e}")))??;
    let file = dir.join(DISCOVERY_FILE);
    let namespace = manifests::namespace_name(run_id);
    if let Some(found) = read_discovery(&file) {
        let pods: Api<Pod> = Api::namespaced(conn.client.clone(), &namespace);
        let now = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::api(format!("listing the pods of {namespace}"), e))?;
        let current = if found.context != conn.context || found.namespace != namespace {
            Err(format!(
                "it was made for context {} namespace {}",
                found.context, found.namespace
            ))
        } else {
            found.still_current(&now.items)
        };
        match current {
            Ok(()) => {
                drop(lock);
                return Ok(KubeTarget::attach(conn, found, started.elapsed()));
            }
            Err(why) => tracing::warn!("{}: not reused ({why}); setting up again", file.display()),
        }
    }
    let target = KubeTarget::setup_on(conn, run_id).await?;
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), &namespace);
    match pods.list(&ListParams::default()).await {
        Ok(now) => {
            let discovered = target.discovered(versions_of(&now.items));
            if let Err(e) = write_discovery(&file, &discovered) {
                tracing::warn!("the other processes of this run will set up again: {e}");
            }
        }
        Err(e) => tracing::warn!("listing the pods of {namespace} after setup: {e}"),
    }
    drop(lock);
    Ok(target)
}

/// The discovery file, when there is one that parses (a broken one is reported and ignored).
fn read_discovery(path: &Path) -> Option<Discovered> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("{}: not reused ({e}); setting up again", path.display());
            None
        }
    }
}

/// Writes the discovery file whole (a temporary file renamed over it).
fn write_discovery(path: &Path, d: &Discovered) -> Result<()> {
    let text = serde_json::to_string_pretty(d)
        .map_err(|e| Error::parse(path.display().to_string(), e.to_string()))?;
    crate::run::write_whole(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Facts;
    use crate::kube::fake_api::*;
    use crate::kube::manifests::{C2C_POD, REMOTE_POD, TEST_TOOLS_POD};
    use crate::kube::setup::PodNetns;
    use std::collections::BTreeMap;

    fn conn(client: kube::Client) -> Connection {
        Connection {
            context: "kind-fake".into(),
            server: "https://fake.invalid".into(),
            kubernetes_version: Some("v1.36.2".into()),
            client: client.clone(),
            exec_client: client,
            ready_timeout: None,
        }
    }

    /// The namespace's pods as recorded, in namespace `ns`.
    fn pods_in(ns: &str) -> Vec<serde_json::Value> {
        let mut pods = vec![
            recorded("kube/pod-c2c-network-demo.json"),
            recorded("kube/pod-test-tools.json"),
        ];
        for p in &mut pods {
            p["metadata"]["namespace"] = ns.into();
        }
        pods
    }

    fn discovered(ns: &str, pods: &[serde_json::Value]) -> Discovered {
        let typed: Vec<Pod> = pods
            .iter()
            .map(|p| serde_json::from_value(p.clone()).unwrap())
            .collect();
        let mut facts: Facts = serde_json::from_value(serde_json::json!({
            "target": "kube kind-fake", "calico_version": "v3.32.1", "cluster_type": null,
            "dataplane": null, "configured_mtu": null, "ipip_module": true, "pools": [],
            "nodes": [], "pods": []}))
        .unwrap();
        facts
            .absent_pods
            .insert(REMOTE_POD.into(), "one node".into());
        Discovered {
            context: "kind-fake".into(),
            namespace: ns.into(),
            facts,
            probes: BTreeMap::from([("k8s-worker-1".into(), "calico-probe-k8s-worker-1".into())]),
            pods: [C2C_POD, TEST_TOOLS_POD]
                .iter()
                .map(|p| {
                    (
                        p.to_string(),
                        PodNetns {
                            node: "k8s-worker-1".into(),
                            containers: vec![("c".into(), 4242)],
                            pod_pid: 4242,
                        },
                    )
                })
                .collect(),
            versions: versions_of(&typed),
        }
    }

    /// A later process of the run: one list of the namespace's pods, nothing else (no apply,
    /// no wait, no exec), and the facts and places of the first.
    #[tokio::test]
    async fn a_later_process_attaches_with_one_request_when_no_pod_changed() {
        let dir = tempfile::tempdir().unwrap();
        let ns = manifests::namespace_name("nx-shared");
        let pods = pods_in(&ns);
        let d = discovered(&ns, &pods);
        write_discovery(&dir.path().join(DISCOVERY_FILE), &d).unwrap();
        let list = format!("GET /api/v1/namespaces/{ns}/pods");
        let (client, seen) = fake_api(vec![(list.clone(), 200, api_list_of("PodList", pods))]);
        let target = setup_shared_in(&conn(client), "nx-shared", dir.path())
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), [list]);
        assert_eq!(target.facts(), &d.facts);
        assert!(target.pod_place(TEST_TOOLS_POD).is_ok());
        assert!(target.host_place("k8s-worker-1").is_ok());
        assert_eq!(target.facts().absence(REMOTE_POD), Some("one node"));
    }

    /// A pod that restarted (its resourceVersion moved) has other PIDs: the process sets up
    /// again instead of trusting the file (here the fake serves no Calico, so that setup stops
    /// at its first check, which shows it ran).
    #[tokio::test]
    async fn a_changed_pod_makes_a_later_process_set_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let ns = manifests::namespace_name("nx-changed");
        let mut pods = pods_in(&ns);
        let d = discovered(&ns, &pods);
        write_discovery(&dir.path().join(DISCOVERY_FILE), &d).unwrap();
        pods[1]["metadata"]["resourceVersion"] = "99999".into();
        let list = format!("GET /api/v1/namespaces/{ns}/pods");
        let mut routes = vec![(list, 200, api_list_of("PodList", pods))];
        routes.push((
            "GET /api/v1/pods".to_string(),
            200,
            api_list_of("PodList", vec![]),
        ));
        let (client, _) = fake_api(routes);
        let e = setup_shared_in(&conn(client), "nx-changed", dir.path())
            .await
            .err()
            .expect("a set-up against a fake without Calico fails")
            .to_string();
        assert!(e.contains("Calico is not installed"), "{e}");
        assert_eq!(
            d.still_current(
                &pods_in(&ns)
                    .iter()
                    .map(|p| serde_json::from_value(p.clone()).unwrap())
                    .collect::<Vec<Pod>>()
            ),
            Ok(())
        );
    }
}
