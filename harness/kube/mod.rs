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

pub mod api;
pub mod calico_api;
pub mod cluster;
pub mod context;
pub mod discovery;
#[cfg(feature = "fake-api")]
pub mod fake_api;
#[cfg(feature = "fake-api")]
pub mod fake_cluster;
#[cfg(feature = "fake-api")]
pub mod fake_server;
pub mod manifests;
pub mod namespaces;
pub mod place;
pub mod ready;
pub mod setup;
pub mod shared;
pub mod workloads;

pub use api::{CONNECT_DEADLINE, DEFAULT_READY_TIMEOUT, DEFAULT_TEARDOWN_TIMEOUT, LEFTOVER_AGE};
pub use calico_api::read_calico_objects;
pub use context::{Connection, check_context, connect, context_name};
pub use namespaces::{cleanup_leftovers, delete_run_namespace, is_leftover, warn_about_leftovers};
pub use setup::{Found, KubeTarget, PodFinder, Scope, planned_pods};
pub use shared::open;
