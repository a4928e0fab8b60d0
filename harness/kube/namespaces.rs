//! The run's namespace: leftovers of killed runs, `cargo run -- cleanup`, and deleting a
//! namespace and waiting until it is gone.

use super::api::{DEFAULT_TEARDOWN_TIMEOUT, LEFTOVER_AGE, is_not_found};
use super::context::{connect, env_seconds};
use super::manifests::{self, MANAGED_BY_LABEL, MANAGER, RUN_ID_LABEL};
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use std::collections::BTreeMap;
use std::time::Duration;

/// Whether a namespace is a leftover of the suite: it carries the suite's managed-by and run-id
/// labels, and was created at least `older_than` before `now` (an unknown creation time counts
/// only when `older_than` is zero).
pub fn is_leftover(
    labels: &BTreeMap<String, String>,
    created: Option<Timestamp>,
    now: Timestamp,
    older_than: Duration,
) -> bool {
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGER)
        || !labels.contains_key(RUN_ID_LABEL)
    {
        return false;
    }
    match created {
        Some(c) => now
            .duration_since(c)
            .try_into()
            .is_ok_and(|age: Duration| age >= older_than),
        None => older_than.is_zero(),
    }
}

async fn leftovers(client: &Client, older_than: Duration) -> Result<Vec<String>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")))
        .await
        .map_err(|e| Error::api("listing the suite's namespaces", e))?;
    let now = Timestamp::now();
    Ok(list
        .items
        .iter()
        .filter(|ns| {
            is_leftover(
                &ns.metadata.labels.clone().unwrap_or_default(),
                ns.metadata.creation_timestamp.as_ref().map(|t| t.0),
                now,
                older_than,
            )
        })
        .filter_map(|ns| ns.metadata.name.clone())
        .collect())
}

/// Deletes every namespace of the suite (found by its managed-by label) created at least
/// `older_than` ago (all of them when `None`); returns their names. Does not wait.
pub async fn cleanup_leftovers(
    client: &Client,
    older_than: Option<Duration>,
) -> Result<Vec<String>> {
    let names = leftovers(client, older_than.unwrap_or_default()).await?;
    let api: Api<Namespace> = Api::all(client.clone());
    for name in &names {
        stop_pods_now(client, name).await;
        match api.delete(name, &DeleteParams::foreground()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::api(format!("deleting namespace {name}"), e)),
        }
    }
    Ok(names)
}

/// Deletes this run's namespace (found by name, so concurrent runs are untouched) and waits
/// for it to go, at most `CALICO_TEARDOWN_TIMEOUT`. For interrupted runs: the runner calls it
/// on SIGINT/SIGTERM, whether or not setup had finished.
pub async fn delete_run_namespace(run_id: &str) -> Result<()> {
    let conn = connect().await?;
    let namespace = manifests::namespace_name(run_id);
    let deadline = env_seconds("CALICO_TEARDOWN_TIMEOUT", DEFAULT_TEARDOWN_TIMEOUT)
        .unwrap_or(DEFAULT_TEARDOWN_TIMEOUT);
    delete_namespace(&conn.client, &conn.exec_client, &namespace, deadline).await
}

/// Lists (and logs a warning about) the suite's namespaces older than [`LEFTOVER_AGE`]: runs
/// that were killed before their teardown. `cargo run -- cleanup` removes them.
pub async fn warn_about_leftovers(client: &Client) -> Result<Vec<String>> {
    let names = leftovers(client, LEFTOVER_AGE).await?;
    if !names.is_empty() {
        tracing::warn!(
            "namespaces left by earlier runs (older than {} min): {}; remove them with `cargo run -- cleanup`",
            LEFTOVER_AGE.as_secs() / 60,
            names.join(", ")
        );
    }
    Ok(names)
}

/// How long the suite's pods get to stop when a run ends. The article's containers
/// (`python -m SimpleHTTPServer`, `tail -f /dev/null`) and the probe (`sleep`) ignore SIGTERM,
/// so their default 30 s grace period is all waiting (two thirds of a run on a real cluster).
/// Not 0: a zero grace period removes the pod from the API before the kubelet has stopped its
/// containers, so waiting for the namespace would no longer mean they are gone.
pub const POD_GRACE_PERIOD_SECONDS: u32 = 1;

/// Deletes every pod of namespace `name` (the suite's own throwaway namespace) with a grace
/// period of [`POD_GRACE_PERIOD_SECONDS`], so that deleting the namespace does not wait out
/// each pod's default grace period. Best effort: on an error the namespace's own deletion
/// still removes the pods, only later.
async fn stop_pods_now(client: &Client, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), name);
    let params = DeleteParams {
        grace_period_seconds: Some(POD_GRACE_PERIOD_SECONDS),
        ..DeleteParams::background()
    };
    match pods
        .delete_collection(&params, &ListParams::default())
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => tracing::warn!("deleting the pods of namespace {name} at once: {e}"),
    }
}

/// Deletes namespace `name` with foreground propagation, its pods first with a short grace
/// period ([`stop_pods_now`]), and waits until it is gone.
pub(crate) async fn delete_namespace(
    client: &Client,
    watch_client: &Client,
    name: &str,
    deadline: Duration,
) -> Result<()> {
    stop_pods_now(client, name).await;
    let api: Api<Namespace> = Api::all(client.clone());
    let uid = match api.delete(name, &DeleteParams::foreground()).await {
        Ok(either) => either.left().and_then(|ns| ns.metadata.uid),
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(Error::api(format!("deleting namespace {name}"), e)),
    };
    let Some(uid) = uid else {
        return Ok(());
    };
    match tokio::time::timeout(
        deadline,
        kube::runtime::wait::await_condition(
            Api::<Namespace>::all(watch_client.clone()),
            name,
            kube::runtime::wait::conditions::is_deleted(&uid),
        ),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Kube(format!(
            "waiting for namespace {name} to go: {e}"
        ))),
        Err(_) => Err(Error::Kube(format!(
            "namespace {name} was still terminating after {} s (it will finish on its own; `cargo run -- cleanup` removes leftovers)",
            deadline.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fake_api::*;
    use std::time::Instant;

    #[test]
    fn leftovers_are_the_suites_labelled_namespaces_older_than_the_limit() {
        let now: Timestamp = "2026-11-25T20:00:00Z".parse().unwrap();
        let two_hours_ago: Timestamp = "2026-11-25T18:00:00Z".parse().unwrap();
        let ten_minutes_ago: Timestamp = "2026-11-25T19:50:00Z".parse().unwrap();
        let ours = BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
            (RUN_ID_LABEL.to_string(), "abc".to_string()),
        ]);
        assert!(is_leftover(&ours, Some(two_hours_ago), now, LEFTOVER_AGE));
        assert!(!is_leftover(
            &ours,
            Some(ten_minutes_ago),
            now,
            LEFTOVER_AGE
        ));
        assert!(is_leftover(
            &ours,
            Some(ten_minutes_ago),
            now,
            Duration::ZERO
        ));
        assert!(!is_leftover(&ours, None, now, LEFTOVER_AGE));
        assert!(is_leftover(&ours, None, now, Duration::ZERO));
        // Created "in the future" (clock skew): not old.
        assert!(!is_leftover(&ours, Some(now), two_hours_ago, LEFTOVER_AGE));
        let mut someone_elses = ours.clone();
        someone_elses.insert(MANAGED_BY_LABEL.to_string(), "helm".to_string());
        assert!(!is_leftover(
            &someone_elses,
            Some(two_hours_ago),
            now,
            LEFTOVER_AGE
        ));
        let mut no_run_id = ours.clone();
        no_run_id.remove(RUN_ID_LABEL);
        assert!(!is_leftover(
            &no_run_id,
            Some(two_hours_ago),
            now,
            LEFTOVER_AGE
        ));
    }

    fn namespace_json(name: &str, created: &str, uid: &str) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": uid, "creationTimestamp": created,
                "resourceVersion": "7",
                "labels": {MANAGED_BY_LABEL: MANAGER, RUN_ID_LABEL: name}},
            "status": {"phase": "Terminating"}})
    }

    #[tokio::test]
    async fn cleanup_deletes_only_the_suites_namespaces_older_than_asked() {
        let old = namespace_json("calico-conformance-old", "2026-01-01T00:00:00Z", "u1");
        let young_time = Timestamp::now().to_string();
        let young = namespace_json("calico-conformance-young", &young_time, "u2");
        let mut unlabelled =
            namespace_json("calico-conformance-foreign", "2026-01-01T00:00:00Z", "u3");
        unlabelled["metadata"]["labels"] = serde_json::json!({MANAGED_BY_LABEL: MANAGER});
        let list = api_list_of("NamespaceList", vec![old.clone(), young, unlabelled]);
        let (client, seen, uris) = fake_api_with_uris(vec![
            ("GET /api/v1/namespaces", 200, list),
            (
                "DELETE /api/v1/namespaces/calico-conformance-old/pods",
                200,
                api_list_of("PodList", vec![]),
            ),
            ("DELETE /api/v1/namespaces/calico-conformance-old", 200, old),
        ]);
        let names = cleanup_leftovers(&client, Some(LEFTOVER_AGE))
            .await
            .unwrap();
        assert_eq!(names, ["calico-conformance-old"]);
        let deletes: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.starts_with("DELETE"))
            .cloned()
            .collect();
        // Its pods first, with a one-second grace period, then the namespace.
        assert_eq!(
            deletes,
            [
                "DELETE /api/v1/namespaces/calico-conformance-old/pods",
                "DELETE /api/v1/namespaces/calico-conformance-old"
            ]
        );
        let uris = uris.lock().unwrap().clone();
        assert!(
            uris[1].starts_with("DELETE /api/v1/namespaces/calico-conformance-old/pods")
                && uris[1].contains(r#""gracePeriodSeconds":1"#),
            "{uris:?}"
        );
    }

    /// A namespace being deleted: DELETE answers with it, the list still shows it, and the
    /// watch then sends one `event` (`DELETED`: gone; `MODIFIED`: still terminating).
    fn being_deleted(name: &str, event: &str) -> Vec<(String, u16, serde_json::Value)> {
        let ns = namespace_json(name, "2026-01-01T00:00:00Z", "u1");
        vec![
            (format!("DELETE /api/v1/namespaces/{name}"), 200, ns.clone()),
            (
                "GET /api/v1/namespaces".into(),
                200,
                api_list_of("NamespaceList", vec![ns.clone()]),
            ),
            (
                "WATCH /api/v1/namespaces".into(),
                200,
                serde_json::json!([{"type": event, "object": ns}]),
            ),
        ]
    }

    #[tokio::test]
    async fn deleting_a_namespace_waits_for_the_api_to_report_it_gone() {
        let (client, seen) = fake_api(being_deleted("calico-conformance-r1", "DELETED"));
        delete_namespace(
            &client,
            &client,
            "calico-conformance-r1",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.iter().any(|k| k.starts_with("WATCH")), "{seen:?}");
    }

    #[tokio::test]
    async fn deleting_a_namespace_that_is_gone_is_fine() {
        let (client, seen) = fake_api(vec![(
            "DELETE /api/v1/namespaces/calico-conformance-gone/pods",
            200,
            api_list_of("PodList", vec![]),
        )]);
        delete_namespace(
            &client,
            &client,
            "calico-conformance-gone",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "DELETE /api/v1/namespaces/calico-conformance-gone/pods",
                "DELETE /api/v1/namespaces/calico-conformance-gone"
            ]
        );
    }

    #[tokio::test]
    async fn a_namespace_still_terminating_at_the_deadline_is_one_clear_error() {
        let (client, _) = fake_api(being_deleted("calico-conformance-stuck", "MODIFIED"));
        let started = Instant::now();
        let e = delete_namespace(
            &client,
            &client,
            "calico-conformance-stuck",
            Duration::from_millis(300),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            e.contains("namespace calico-conformance-stuck was still terminating after"),
            "{e}"
        );
        assert!(e.contains("cargo run -- cleanup"), "{e}");
    }
}
