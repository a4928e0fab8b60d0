//! What the kube target's modules share: its deadlines and defaults, and how API errors are
//! read (what a real API server answers for a missing object, and for a resource it does not
//! serve).

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
