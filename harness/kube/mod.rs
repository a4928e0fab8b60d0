//! The kube target: the claims against a real cluster running Calico.
//!
//! [`KubeTarget::setup`] runs, in order: the context guard ([`check_context`]), connecting
//! (one reachability check bounded by [`CONNECT_DEADLINE`]), the Calico check (its CRDs and
//! `calico-node` pods), a fresh namespace for the run, the article's pods plus
//! `test-tools-remote` (server-side apply, `fieldValidation=Strict`), a node probe per node used,
//! the cluster facts, and the discovery of each pod's network namespace. Any failure after the
//! namespace exists deletes it before the error is returned. [`KubeTarget::teardown`] deletes
//! the namespace and waits for it to be gone; [`cleanup_leftovers`] removes what killed runs left.
//!
//! Configuration (environment): `KUBECONFIG` (the context is its current context),
//! `CALICO_ALLOW_CONTEXT`, `CALICO_IMAGE_MAP`, `CALICO_PROBE_IMAGE`, `CALICO_READY_TIMEOUT`
//! (seconds, default 180), `CALICO_TEARDOWN_TIMEOUT` (seconds, default 120).

pub mod calico_api;
pub mod cluster;
pub mod context;
pub mod discovery;
#[cfg(test)]
pub(crate) mod fake_api;
pub mod manifests;
pub mod namespaces;
pub mod place;
pub mod ready;
pub mod setup;
pub mod shared;

pub use calico_api::read_calico_objects;
pub use context::{Connection, check_context, connect, context_name};
pub use namespaces::{cleanup_leftovers, delete_run_namespace, is_leftover, warn_about_leftovers};
pub use setup::{KubeTarget, planned_pods};

use kube::api::Api;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long reaching the API server may take before the run fails.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// Default of `CALICO_READY_TIMEOUT`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Default of `CALICO_TEARDOWN_TIMEOUT`.
pub const DEFAULT_TEARDOWN_TIMEOUT: Duration = Duration::from_secs(120);
/// Namespaces of the suite older than this are reported as leftovers.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(3600);
/// Deadline of each discovery command in a probe.
pub(crate) const PROBE_COMMAND_DEADLINE: Duration = Duration::from_secs(30);
/// Whether an API error is a 404 of any kind: a missing object (a `Status` with reason
/// `NotFound`) or a path the server does not serve (a plain-text `404 page not found`, which
/// kube-rs turns into a `Status` with reason `Failed to parse error data`).
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error means "this group/version cannot be used here": not served (404),
/// not allowed (403), or its server unavailable (503, the aggregated API server down).
pub(crate) fn is_unusable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 403 | 404 | 503))
}

/// Reads an object that may not exist, where its resource may not be served either: `None`
/// for both. kube-rs' `get_opt` maps only a `NotFound` `Status` to `None`; a real API server
/// answers a group it does not serve with a plain-text 404 (recorded in
/// `fixtures/recorded/kube-api/`), which `get_opt` returns as an error.
pub(crate) async fn get_optional<K>(api: &Api<K>, name: &str) -> kube::Result<Option<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}
