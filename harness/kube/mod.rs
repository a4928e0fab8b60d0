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

pub mod cluster;
pub mod discovery;
pub mod manifests;
pub mod place;
pub mod ready;

use crate::error::{Error, Result};
use crate::facts::{Facts, PodFacts};
use crate::place::Place;
use cluster::CalicoObjects;
use discovery::ContainerId;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use manifests::{
    C2C_POD, ImageMap, MANAGED_BY_LABEL, MANAGER, REMOTE_POD, RUN_ID_LABEL, TEST_TOOLS_POD,
};
use place::{KubePlace, Netns};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long reaching the API server may take before the run fails.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// Default of `CALICO_READY_TIMEOUT`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Default of `CALICO_TEARDOWN_TIMEOUT`.
pub const DEFAULT_TEARDOWN_TIMEOUT: Duration = Duration::from_secs(120);
/// Namespaces of the suite older than this are reported as leftovers.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(3600);
/// Deadline of each discovery command in a probe.
const PROBE_COMMAND_DEADLINE: Duration = Duration::from_secs(30);

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
    /// For ordinary API calls (connect and read timeouts set).
    pub client: Client,
    /// For exec sessions and watches (no read timeout: a capture or a watch may be silent for a
    /// while; every exec and wait has its own deadline instead).
    pub exec_client: Client,
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
    match tokio::time::timeout(CONNECT_DEADLINE, client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                CONNECT_DEADLINE.as_secs()
            )));
        }
    }
    Ok(Connection {
        context: ctx.name,
        server: ctx.server,
        client,
        exec_client,
    })
}

fn env_seconds(name: &str, default: Duration) -> Result<Duration> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| Error::Preflight(format!("{name}=`{v}` is not a number of seconds"))),
        _ => Ok(default),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error means "this group/version cannot be used here": not served (404),
/// not allowed (403), or its server unavailable (503, the aggregated API server down).
fn is_unusable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 403 | 404 | 503))
}

/// Reads Calico's objects, from `projectcalico.org/v3` when the cluster serves it and from
/// `crd.projectcalico.org/v1` otherwise (see [`cluster::CalicoApi`]). A cluster without Calico
/// fails with one message naming everything missing (the Calico API, the `calico-node` pods).
pub async fn read_calico_objects(client: &Client) -> Result<CalicoObjects> {
    let mut missing = Vec::new();
    let mut unusable = Vec::new();
    let mut found = None;
    for api in cluster::CalicoApi::PREFERENCE {
        // A list, not `get_opt("default")`: a GET of an object of a resource the server does
        // not serve is a 404 like a missing object (and `get_opt` turns both into `None`); a
        // list is a 404 only when the resource is not served.
        let info_api: Api<DynamicObject> =
            Api::all_with(client.clone(), &api.cluster_information());
        match info_api.list(&ListParams::default()).await {
            Ok(list) => {
                let info = list
                    .items
                    .into_iter()
                    .find(|o| o.metadata.name.as_deref() == Some("default"));
                found = Some((api, info));
                break;
            }
            Err(e) if is_unusable(&e) => {
                unusable.push(format!("{}: {e}", api.describe("clusterinformations")));
            }
            Err(e) => {
                return Err(Error::Kube(format!(
                    "listing {}: {e}",
                    api.describe("clusterinformations")
                )));
            }
        }
    }
    let (api, cluster_information) = match found {
        Some((api, Some(info))) => (Some(api), Some(info)),
        Some((api, None)) => {
            missing.push(format!(
                "ClusterInformation `default` ({})",
                api.describe("clusterinformations")
            ));
            (Some(api), None)
        }
        None => {
            missing.push(format!(
                "the Calico API (neither group can be read: {})",
                unusable.join("; ")
            ));
            (None, None)
        }
    };
    let calico_nodes = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels("k8s-app=calico-node"))
        .await
        .map_err(|e| Error::Kube(format!("listing calico-node pods: {e}")))?;
    if calico_nodes.items.is_empty() {
        missing
            .push("calico-node pods (no pod labelled k8s-app=calico-node in any namespace)".into());
    }
    let Some(api) = api.filter(|_| missing.is_empty()) else {
        return Err(Error::Kube(format!(
            "Calico is not installed on this cluster: missing {}",
            missing.join("; ")
        )));
    };
    tracing::debug!(
        group = api.group(),
        version = api.version(),
        "reading Calico's objects"
    );
    let list = |ar: kube::core::ApiResource, what: String| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        async move {
            api.list(&ListParams::default())
                .await
                .map(|l| l.items)
                .map_err(|e| Error::Kube(format!("listing {what}: {e}")))
        }
    };
    let ip_pools = list(api.ip_pool(), api.describe("ippools")).await?;
    let block_affinities = list(api.block_affinity(), api.describe("blockaffinities")).await?;
    let installation_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &cluster::installation_resource());
    // `get_opt` gives `None` for a 404: no Installation, or no operator CRD at all.
    let installation = installation_api
        .get_opt("default")
        .await
        .map_err(|e| Error::Kube(format!("reading Installation default: {e}")))?;
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::Kube(format!("listing nodes: {e}")))?
        .items;
    Ok(CalicoObjects {
        api: Some(api),
        cluster_information,
        ip_pools,
        block_affinities,
        installation,
        nodes,
    })
}

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
        .map_err(|e| Error::Kube(format!("listing the suite's namespaces: {e}")))?;
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
        match api.delete(name, &DeleteParams::foreground()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::Kube(format!("deleting namespace {name}: {e}"))),
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

/// The pods a run deploys, prepared exactly as they are sent: the article's two pods and
/// `test-tools-remote`, in that order.
pub fn planned_pods(namespace: &str, images: &ImageMap) -> Result<Vec<Pod>> {
    let mut pods = crate::fixtures::article_pods()?;
    pods.push(crate::fixtures::test_tools_remote_pod()?);
    pods.into_iter()
        .map(|p| manifests::prepare_pod(p, namespace, images))
        .collect()
}

/// A pod's discovered network namespaces.
#[derive(Debug, Clone)]
struct PodNetns {
    node: String,
    /// Container name → init PID on the node.
    containers: Vec<(String, u32)>,
    /// The PID whose netns is the pod's.
    pod_pid: u32,
}

/// A run against a real cluster: its namespace, pods, probes and facts.
pub struct KubeTarget {
    context: String,
    client: Client,
    watch_client: Client,
    namespace: String,
    exec_pods: Api<Pod>,
    facts: Facts,
    /// Node → probe pod name.
    probes: BTreeMap<String, String>,
    /// Pod name → discovered namespaces.
    pods: BTreeMap<String, PodNetns>,
    /// Why `test-tools-remote` is not running, when it is not (one schedulable node).
    remote_not_applicable: Option<String>,
}

impl KubeTarget {
    /// Guard → connect → Calico check → namespace → article pods and remote pod → probes →
    /// facts → discovery. On any error after the namespace was created it is deleted before the
    /// error is returned.
    pub async fn setup(run_id: &str) -> Result<KubeTarget> {
        let conn = connect().await?;
        Self::setup_on(&conn, run_id).await
    }

    /// [`KubeTarget::setup`] on a connection already made and checked.
    async fn setup_on(conn: &Connection, run_id: &str) -> Result<KubeTarget> {
        // Fail at once on a cluster without Calico, before creating anything.
        read_calico_objects(&conn.client).await?;
        if let Err(e) = warn_about_leftovers(&conn.client).await {
            tracing::warn!("could not look for leftover namespaces: {e}");
        }
        let namespace = manifests::namespace_name(run_id);
        let ns_api: Api<Namespace> = Api::all(conn.client.clone());
        let ns = manifests::namespace(run_id, &Timestamp::now().to_string());
        ns_api
            .patch(&namespace, &apply_params(), &Patch::Apply(&ns))
            .await
            .map_err(|e| Error::Kube(format!("creating namespace {namespace}: {e}")))?;
        match Self::populate(conn, &namespace).await {
            Ok(t) => Ok(t),
            Err(e) => {
                let deadline = env_seconds("CALICO_TEARDOWN_TIMEOUT", DEFAULT_TEARDOWN_TIMEOUT)
                    .unwrap_or(DEFAULT_TEARDOWN_TIMEOUT);
                if let Err(del) =
                    delete_namespace(&conn.client, &conn.exec_client, &namespace, deadline).await
                {
                    tracing::warn!("after a failed setup: {del}");
                }
                Err(e)
            }
        }
    }

    async fn populate(conn: &Connection, namespace: &str) -> Result<KubeTarget> {
        let ready_timeout = env_seconds("CALICO_READY_TIMEOUT", DEFAULT_READY_TIMEOUT)?;
        let images = ImageMap::from_env()?;
        let pods_api: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
        let watch_pods: Api<Pod> = Api::namespaced(conn.exec_client.clone(), namespace);
        for pod in planned_pods(namespace, &images)? {
            let name = pod.metadata.name.clone().unwrap_or_default();
            pods_api
                .patch(&name, &apply_params(), &Patch::Apply(&pod))
                .await
                .map_err(|e| Error::Kube(format!("applying pod {namespace}/{name}: {e}")))?;
        }
        let started = Instant::now();
        let mut ready = BTreeMap::new();
        for name in [C2C_POD, TEST_TOOLS_POD] {
            let left = ready_timeout.saturating_sub(started.elapsed());
            ready.insert(
                name,
                wait_ready(&pods_api, &watch_pods, name, left, ready_timeout, false).await?,
            );
        }
        let left = ready_timeout.saturating_sub(started.elapsed());
        let mut remote_not_applicable = None;
        match wait_ready(
            &pods_api,
            &watch_pods,
            REMOTE_POD,
            left,
            ready_timeout,
            true,
        )
        .await
        {
            Ok(p) => {
                ready.insert(REMOTE_POD, p);
            }
            Err(Error::NotFound(why)) => {
                tracing::warn!("cross-node claims are not applicable: {why}");
                remote_not_applicable = Some(why);
            }
            Err(e) => return Err(e),
        }
        let mut nodes: Vec<String> = ready.values().map(pod_node).collect::<Result<_>>()?;
        nodes.sort();
        nodes.dedup();

        let probe_image =
            manifests::probe_image(std::env::var("CALICO_PROBE_IMAGE").ok().as_deref(), &images);
        let mut probes = BTreeMap::new();
        for node in &nodes {
            let probe = manifests::probe_pod(node, namespace, &probe_image);
            let name = manifests::probe_name(node);
            pods_api
                .patch(&name, &apply_params(), &Patch::Apply(&probe))
                .await
                .map_err(|e| Error::Kube(format!("applying probe {namespace}/{name}: {e}")))?;
            probes.insert(node.clone(), name);
        }
        for name in probes.values() {
            let left = ready_timeout.saturating_sub(started.elapsed());
            wait_ready(&pods_api, &watch_pods, name, left, ready_timeout, false).await?;
        }

        // Read again, not reused from setup's check: a node that got its first pod just now
        // has a block affinity that did not exist then.
        let objects = read_calico_objects(&conn.client).await?;
        let node_refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let mut facts =
            cluster::facts_from_objects(&format!("kube {}", conn.context), &objects, &node_refs)?;

        let exec_pods: Api<Pod> = Api::namespaced(conn.exec_client.clone(), namespace);
        let host = |node: &str| -> Result<KubePlace> {
            let probe = probes
                .get(node)
                .ok_or_else(|| Error::NotFound(format!("no probe on node {node}")))?;
            Ok(KubePlace::new(
                format!("host {node}"),
                exec_pods.clone(),
                probe.clone(),
                Netns::Host,
            ))
        };
        // Node details only the node knows: the ipip module, the underlay interface.
        for node in &nodes {
            let place = host(node)?;
            let out = place
                .run(&["test", "-d", "/sys/module/ipip"], PROBE_COMMAND_DEADLINE)
                .await?;
            let has_ipip = out.code == Some(0);
            facts.ipip_module = Some(facts.ipip_module.unwrap_or(true) && has_ipip);
            let addr = place
                .run(&["ip", "-j", "-4", "addr", "show"], PROBE_COMMAND_DEADLINE)
                .await?
                .ok()?;
            if let Some(n) = facts.nodes.iter_mut().find(|n| &n.name == node)
                && let Some((iface, prefix)) =
                    cluster::underlay_from_ip_addr(&addr.stdout_text(), n.address)
            {
                n.underlay = Some(iface);
                n.underlay_prefix.get_or_insert(prefix);
            }
        }

        let mut discovered = BTreeMap::new();
        for (name, pod) in &ready {
            let node = pod_node(pod)?;
            let place = host(&node)?;
            let netns = discover_pod(&place, pod).await?;
            facts.pods.push(PodFacts {
                namespace: namespace.to_string(),
                name: name.to_string(),
                node: node.clone(),
                ip: pod_ip(pod)?,
                containers: netns.containers.iter().map(|(c, _)| c.clone()).collect(),
            });
            discovered.insert(name.to_string(), netns);
        }
        Ok(KubeTarget {
            context: conn.context.clone(),
            client: conn.client.clone(),
            watch_client: conn.exec_client.clone(),
            namespace: namespace.to_string(),
            exec_pods,
            facts,
            probes,
            pods: discovered,
            remote_not_applicable,
        })
    }

    /// The cluster facts, the deployed pods included (`test-tools-remote` only when scheduled).
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The kubeconfig context the run uses.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The run's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Why the cross-node claims do not apply (`test-tools-remote` could not be scheduled on
    /// another node), or `None` when they do.
    pub fn cross_node_not_applicable(&self) -> Option<&str> {
        self.remote_not_applicable.as_deref()
    }

    fn probe_on(&self, node: &str) -> Result<&String> {
        self.probes.get(node).ok_or_else(|| {
            Error::NotFound(format!(
                "no node probe on node {node} (probes run on: {})",
                self.probes.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    fn pod(&self, pod: &str) -> Result<&PodNetns> {
        self.pods.get(pod).ok_or_else(|| {
            Error::NotFound(format!(
                "pod {pod} is not running in {} (running: {})",
                self.namespace,
                self.pods.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The host network namespace of `node` (its probe).
    pub fn host_place(&self, node: &str) -> Result<Place> {
        Ok(Place::Kube(Box::new(KubePlace::new(
            format!("host {node}"),
            self.exec_pods.clone(),
            self.probe_on(node)?.clone(),
            Netns::Host,
        ))))
    }

    /// The network namespace of pod `pod`, entered from its node's probe.
    pub fn pod_place(&self, pod: &str) -> Result<Place> {
        let p = self.pod(pod)?;
        Ok(Place::Kube(Box::new(KubePlace::new(
            format!("pod {}/{pod}", self.namespace),
            self.exec_pods.clone(),
            self.probe_on(&p.node)?.clone(),
            Netns::Process(p.pod_pid),
        ))))
    }

    /// One place per container of `pod`, each entering that container's own init process's
    /// network namespace (C2C-1 compares them).
    pub fn container_places(&self, pod: &str) -> Result<Vec<(String, Place)>> {
        let p = self.pod(pod)?;
        let probe = self.probe_on(&p.node)?;
        Ok(p.containers
            .iter()
            .map(|(c, pid)| {
                (
                    c.clone(),
                    Place::Kube(Box::new(KubePlace::new(
                        format!("container {}/{pod}/{c}", self.namespace),
                        self.exec_pods.clone(),
                        probe.clone(),
                        Netns::Process(*pid),
                    ))),
                )
            })
            .collect())
    }

    /// Deletes the run's namespace (foreground propagation) and waits until it is gone, at
    /// most `CALICO_TEARDOWN_TIMEOUT`.
    pub async fn teardown(self) -> Result<()> {
        let deadline = env_seconds("CALICO_TEARDOWN_TIMEOUT", DEFAULT_TEARDOWN_TIMEOUT)?;
        delete_namespace(&self.client, &self.watch_client, &self.namespace, deadline).await
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(MANAGER).validation_strict()
}

fn pod_node(pod: &Pod) -> Result<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .ok_or_else(|| {
            Error::Kube(format!(
                "pod {} is Ready but has no spec.nodeName",
                pod.metadata.name.as_deref().unwrap_or("?")
            ))
        })
}

fn pod_ip(pod: &Pod) -> Result<Ipv4Addr> {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .ok_or_else(|| Error::Kube(format!("pod {name} has no status.podIP")))?;
    ip.parse()
        .map_err(|_| Error::Kube(format!("pod {name}: status.podIP `{ip}` is not IPv4")))
}

/// Finds the init PID of every container of `pod` from its node's probe (`host`), by container
/// ID in `/proc/*/cgroup`; a container not found that way falls back to the namespace whose
/// `eth0` holds the pod IP.
async fn discover_pod(host: &KubePlace, pod: &Pod) -> Result<PodNetns> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let node = pod_node(pod)?;
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let mut containers = Vec::new();
    let mut fallback: Option<u32> = None;
    for c in &statuses {
        let Some(raw) = c.container_id.as_deref() else {
            return Err(Error::Kube(format!(
                "pod {name} container {}: no containerID in its status",
                c.name
            )));
        };
        let id = ContainerId::parse(raw)?;
        let out = host
            .run(
                &[
                    "sh",
                    "-c",
                    discovery::FIND_CONTAINER_PROCESSES,
                    "sh",
                    &id.id,
                ],
                PROBE_COMMAND_DEADLINE,
            )
            .await?
            .ok()?;
        let processes = discovery::parse_process_list(&out.stdout_text())?;
        let pid = match discovery::choose_init_process(&processes, &id.id) {
            Some(pid) => pid,
            None => {
                tracing::warn!(
                    "pod {name} container {}: no process in a cgroup of {raw}; finding the pod by its IP",
                    c.name
                );
                match fallback {
                    Some(pid) => pid,
                    None => {
                        let ip = pod_ip(pod)?;
                        let out = host
                            .run(
                                &["sh", "-c", discovery::LIST_NETNS_ETH0],
                                PROBE_COMMAND_DEADLINE,
                            )
                            .await?
                            .ok()?;
                        let entries = discovery::parse_netns_list(&out.stdout_text())?;
                        let pid = discovery::choose_netns_by_ip(&entries, ip).map_err(|e| {
                            Error::NotFound(format!("pod {name} on node {node}: {e}"))
                        })?;
                        fallback = Some(pid);
                        pid
                    }
                }
            }
        };
        containers.push((c.name.clone(), pid));
    }
    let pod_pid = containers
        .first()
        .map(|(_, pid)| *pid)
        .ok_or_else(|| Error::Kube(format!("pod {name} has no container statuses")))?;
    Ok(PodNetns {
        node,
        containers,
        pod_pid,
    })
}

/// Waits until pod `name` is Ready, at most `left`. With `allow_unschedulable`, a pod the
/// scheduler cannot place ends the wait with `Error::NotFound(<scheduler message>)`. On timeout
/// the error describes the pod (phase, containers, latest events).
async fn wait_ready(
    api: &Api<Pod>,
    watch: &Api<Pod>,
    name: &str,
    left: Duration,
    total: Duration,
    allow_unschedulable: bool,
) -> Result<Pod> {
    let cond = move |p: Option<&Pod>| {
        p.is_some_and(|p| {
            ready::is_ready(p) || (allow_unschedulable && ready::unschedulable(p).is_some())
        })
    };
    let waited = tokio::time::timeout(
        left,
        kube::runtime::wait::await_condition(watch.clone(), name, cond),
    )
    .await;
    match waited {
        Ok(Ok(Some(pod))) => {
            if ready::is_ready(&pod) {
                Ok(pod)
            } else {
                let why = ready::unschedulable(&pod).unwrap_or_default();
                Err(Error::NotFound(format!(
                    "pod {name} cannot be scheduled: {why}"
                )))
            }
        }
        Ok(Ok(None)) => Err(Error::Kube(format!(
            "pod {name} was deleted while starting"
        ))),
        Ok(Err(e)) => Err(Error::Kube(format!("watching pod {name}: {e}"))),
        Err(_) => {
            let pod = api.get(name).await.map_err(|e| {
                Error::Kube(format!(
                    "pod {name} did not become Ready, and reading it failed: {e}"
                ))
            })?;
            let events = list_events(api, name).await;
            Err(Error::Kube(ready::describe_not_ready(&pod, &events, total)))
        }
    }
}

/// The events of pod `name` (empty when they cannot be read: the message is still useful).
async fn list_events(pods: &Api<Pod>, name: &str) -> Vec<Event> {
    let ns = pods.namespace().unwrap_or("default").to_string();
    let events: Api<Event> = Api::namespaced(pods.clone().into_client(), &ns);
    let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
    match events.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            tracing::warn!("reading the events of pod {ns}/{name}: {e}");
            Vec::new()
        }
    }
}

/// Deletes namespace `name` with foreground propagation and waits until it is gone.
async fn delete_namespace(
    client: &Client,
    watch_client: &Client,
    name: &str,
    deadline: Duration,
) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let uid = match api.delete(name, &DeleteParams::foreground()).await {
        Ok(either) => either.left().and_then(|ns| ns.metadata.uid),
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(Error::Kube(format!("deleting namespace {name}: {e}"))),
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

    /// Environment variables are process-global: tests that set them take this lock.
    static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn write_kubeconfig(dir: &std::path::Path, context: &str, server: &str) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn set_env(key: &str, value: Option<&std::ffi::OsStr>) {
        // SAFETY: every test that touches the environment holds `ENV`, and nothing in this
        // crate's tests reads these variables from another thread meanwhile.
        unsafe {
            match value {
                Some(v) => std::env::set_var(key, v),
                None => std::env::remove_var(key),
            }
        }
    }

    /// The exact objects a run sends (namespace, pods, probes), compared with the committed
    /// files under fixtures/kube/snapshots/. `CALICO_BLESS=1` rewrites them.
    #[test]
    fn manifests_snapshot() {
        let run_id = "snapshot";
        let ns = manifests::namespace_name(run_id);
        let images = ImageMap::parse(
            "python:2.7=mirror.local/python:2.7,yannxia/ubuntu-with-tcpdump=mirror.local/utt",
        )
        .unwrap();
        let mut objects: Vec<(String, serde_json::Value)> = vec![(
            "namespace".into(),
            serde_json::to_value(manifests::namespace(run_id, "2026-01-01T00:00:00Z")).unwrap(),
        )];
        for pod in planned_pods(&ns, &images).unwrap() {
            let name = pod.metadata.name.clone().unwrap();
            objects.push((format!("pod-{name}"), serde_json::to_value(pod).unwrap()));
        }
        for node in ["kind-worker", "kind-worker2"] {
            let image = manifests::probe_image(None, &images);
            objects.push((
                format!("probe-{node}"),
                serde_json::to_value(manifests::probe_pod(node, &ns, &image)).unwrap(),
            ));
        }
        let dir = crate::fixtures::fixtures_dir().join("kube/snapshots");
        let bless = std::env::var("CALICO_BLESS").is_ok_and(|v| v == "1");
        let mut differ = Vec::new();
        for (name, value) in &objects {
            let path = dir.join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(value).unwrap() + "\n";
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(committed) if committed == text => {}
                Ok(_) => differ.push(format!("{} differs", path.display())),
                Err(e) => differ.push(format!("{}: {e}", path.display())),
            }
        }
        assert!(
            differ.is_empty(),
            "the objects a run sends changed: {differ:?}; review, then re-bless with CALICO_BLESS=1"
        );
        // What the snapshot must show, whatever was blessed.
        let pod = |n: &str| {
            &objects
                .iter()
                .find(|(k, _)| k == &format!("pod-{n}"))
                .unwrap()
                .1
        };
        let tools = pod(TEST_TOOLS_POD);
        assert!(tools["spec"].get("nodeSelector").is_none());
        let term = &tools["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(term["labelSelector"]["matchLabels"]["app"], C2C_POD);
        let remote = pod(REMOTE_POD);
        assert_eq!(
            remote["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                [0]["labelSelector"]["matchLabels"]["app"],
            C2C_POD
        );
        assert_eq!(
            pod(C2C_POD)["spec"]["containers"][0]["image"],
            "mirror.local/python:2.7"
        );
        for (_, v) in &objects {
            assert!(v["apiVersion"].is_string() && v["kind"].is_string(), "{v}");
        }
        assert_eq!(
            objects[0].1["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
    }

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

    #[tokio::test]
    #[ignore = "needs a cluster: a kind cluster with Calico (ci/kind-up.sh) as the current context"]
    async fn setup_and_teardown_on_a_live_cluster() {
        let target = KubeTarget::setup(&format!("live-{}", std::process::id()))
            .await
            .unwrap();
        assert!(target.facts().pod(C2C_POD).is_some());
        let c2c = target.facts().pod(C2C_POD).unwrap().clone();
        let tools = target.facts().pod(TEST_TOOLS_POD).unwrap().clone();
        assert_eq!(
            c2c.node, tools.node,
            "affinity keeps test-tools next to the server"
        );
        let place = target.pod_place(TEST_TOOLS_POD).unwrap();
        let out = place
            .run(&["ip", "-j", "-4", "addr"], Duration::from_secs(10))
            .await
            .unwrap();
        assert!(out.stdout_text().contains(&tools.ip.to_string()));
        let failing = place
            .run(&["sh", "-c", "exit 3"], Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(failing.code, Some(3));
        let ttls = place.ping(c2c.ip, 2, Duration::from_secs(5)).await.unwrap();
        assert_eq!(ttls.iter().map(|r| r.ttl).collect::<Vec<_>>(), vec![63, 63]);
        let containers = target.container_places(C2C_POD).unwrap();
        assert_eq!(containers.len(), 2);
        target.teardown().await.unwrap();
    }

    /// A fake API server: answers `<METHOD> <path>` (query ignored; a GET with `watch=true`
    /// is `WATCH <path>`) from `routes`, a Kubernetes 404 Status for anything else, and records
    /// the requests it got. A WATCH body is the newline-separated events, as the API sends.
    fn fake_api<K: AsRef<str> + Send + Sync + 'static>(
        routes: Vec<(K, u16, serde_json::Value)>,
    ) -> (Client, Log) {
        let (client, seen, _) = fake_api_with_uris(routes);
        (client, seen)
    }

    type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

    /// [`fake_api`], also recording each request as `<METHOD> <path and query>`.
    fn fake_api_with_uris<K: AsRef<str> + Send + Sync + 'static>(
        routes: Vec<(K, u16, serde_json::Value)>,
    ) -> (Client, Log, Log) {
        let seen = Log::default();
        let uris = Log::default();
        let (log, uri_log) = (seen.clone(), uris.clone());
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let watch = req.uri().query().is_some_and(|q| q.contains("watch=true"));
            let method = if watch {
                "WATCH"
            } else {
                req.method().as_str()
            };
            let key = format!("{method} {}", req.uri().path());
            log.lock().unwrap().push(key.clone());
            uri_log
                .lock()
                .unwrap()
                .push(format!("{method} {}", req.uri()));
            let (code, body) = routes
                .iter()
                .find(|(k, _, _)| k.as_ref() == key)
                .map(|(_, c, b)| (*c, b.clone()))
                .unwrap_or_else(|| (404, api_status(404, "NotFound")));
            let bytes = match (watch, body) {
                (true, serde_json::Value::Array(events)) => events
                    .iter()
                    .flat_map(|e| {
                        let mut line = serde_json::to_vec(e).unwrap();
                        line.push(b'\n');
                        line
                    })
                    .collect(),
                (_, body) => serde_json::to_vec(&body).unwrap(),
            };
            async move {
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(kube::client::Body::from(bytes))
                        .unwrap(),
                )
            }
        });
        (Client::new(svc, "default"), seen, uris)
    }

    fn api_status(code: u16, reason: &str) -> serde_json::Value {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": format!("{reason} (fake API)"), "reason": reason,
            "code": code})
    }

    /// A list as the API returns it: `kind`, `items`, and the list metadata a watch starts
    /// from.
    fn api_list_of(kind: &str, items: Vec<serde_json::Value>) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"resourceVersion": "1"}, "items": items})
    }

    /// A list fixture (`kubectl get -o json` output, or one object) as the API returns it.
    fn as_api_list(mut v: serde_json::Value) -> serde_json::Value {
        if v.get("items").is_none() {
            return api_list_of("List", vec![v]);
        }
        v["metadata"] = serde_json::json!({"resourceVersion": "1"});
        v
    }

    /// A Calico fixture of `fixtures/kube/calico/` as the API would list it.
    fn api_list(fixture: &str) -> serde_json::Value {
        let text = crate::fixtures::read_text(&format!("kube/calico/{fixture}"));
        as_api_list(serde_json::from_str(&text).unwrap())
    }

    fn calico_node_pods() -> serde_json::Value {
        api_list_of(
            "PodList",
            vec![serde_json::json!({"metadata": {"name": "calico-node-x",
                "namespace": "kube-system", "labels": {"k8s-app": "calico-node"}}})],
        )
    }

    /// The routes every scenario shares: calico-node pods, the nodes, no Installation.
    fn common_routes(pods: serde_json::Value) -> Vec<(&'static str, u16, serde_json::Value)> {
        vec![
            ("GET /api/v1/pods", 200, pods),
            ("GET /api/v1/nodes", 200, api_list("nodes-kind.json")),
        ]
    }

    fn v1_routes() -> Vec<(&'static str, u16, serde_json::Value)> {
        vec![
            (
                "GET /apis/crd.projectcalico.org/v1/clusterinformations",
                200,
                api_list("clusterinformation-default.json"),
            ),
            (
                "GET /apis/crd.projectcalico.org/v1/ippools",
                200,
                api_list("ippools-ipip.json"),
            ),
            (
                "GET /apis/crd.projectcalico.org/v1/blockaffinities",
                200,
                api_list("blockaffinities.json"),
            ),
        ]
    }

    fn v3_routes() -> Vec<(&'static str, u16, serde_json::Value)> {
        let mut info = api_list("clusterinformation-default.json");
        info["items"][0]["apiVersion"] = "projectcalico.org/v3".into();
        let mut pools = api_list("ippools-vxlan-crosssubnet.json");
        for p in pools["items"].as_array_mut().unwrap() {
            p["apiVersion"] = "projectcalico.org/v3".into();
        }
        vec![
            (
                "GET /apis/projectcalico.org/v3/clusterinformations",
                200,
                info,
            ),
            ("GET /apis/projectcalico.org/v3/ippools", 200, pools),
            (
                "GET /apis/projectcalico.org/v3/blockaffinities",
                200,
                api_list("blockaffinities-v3.json"),
            ),
        ]
    }

    fn asked(seen: &std::sync::Mutex<Vec<String>>, prefix: &str) -> bool {
        seen.lock().unwrap().iter().any(|p| p.contains(prefix))
    }

    #[tokio::test]
    async fn manifest_install_without_v3_is_read_from_the_crd_storage() {
        let mut routes = common_routes(calico_node_pods());
        routes.extend(v1_routes());
        let (client, seen) = fake_api(routes);
        let objects = read_calico_objects(&client).await.unwrap();
        assert_eq!(objects.api, Some(cluster::CalicoApi::CrdV1));
        assert!(objects.cluster_information.is_some());
        assert!(objects.installation.is_none());
        let facts = cluster::facts_from_objects("kube fake", &objects, &[]).unwrap();
        assert_eq!(facts.pools.len(), 1);
        assert_eq!(facts.calico_version.as_deref(), Some("v3.30.0"));
        // v3 was asked first.
        let first = seen.lock().unwrap().first().cloned();
        assert_eq!(
            first.as_deref(),
            Some("GET /apis/projectcalico.org/v3/clusterinformations")
        );
    }

    #[tokio::test]
    async fn native_v3_crds_are_read_without_touching_the_v1_group() {
        let mut routes = common_routes(calico_node_pods());
        routes.extend(v3_routes());
        let (client, seen) = fake_api(routes);
        let objects = read_calico_objects(&client).await.unwrap();
        assert_eq!(objects.api, Some(cluster::CalicoApi::V3));
        let facts = cluster::facts_from_objects("kube fake", &objects, &[]).unwrap();
        assert_eq!(facts.pools.len(), 1, "{:?}", facts.pools);
        assert!(facts.nodes.iter().all(|n| !n.blocks.is_empty()));
        assert!(!asked(&seen, "/apis/crd.projectcalico.org/"));
    }

    #[tokio::test]
    async fn an_unavailable_or_forbidden_v3_falls_back_to_v1() {
        for code in [503u16, 403] {
            let mut routes = common_routes(calico_node_pods());
            routes.push((
                "GET /apis/projectcalico.org/v3/clusterinformations",
                code,
                api_status(code, "ServiceUnavailable"),
            ));
            routes.extend(v1_routes());
            let (client, _) = fake_api(routes);
            let objects = read_calico_objects(&client).await.unwrap();
            assert_eq!(
                objects.api,
                Some(cluster::CalicoApi::CrdV1),
                "v3 answered {code}"
            );
        }
    }

    #[tokio::test]
    async fn another_v3_error_is_reported_not_papered_over() {
        let mut routes = common_routes(calico_node_pods());
        routes.push((
            "GET /apis/projectcalico.org/v3/clusterinformations",
            500,
            api_status(500, "InternalError"),
        ));
        routes.extend(v1_routes());
        let (client, _) = fake_api(routes);
        let e = read_calico_objects(&client).await.unwrap_err().to_string();
        assert!(
            e.contains("listing clusterinformations.projectcalico.org/v3"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_cluster_without_calico_gets_one_message_naming_what_is_missing() {
        let empty = api_list_of("PodList", vec![]);
        let (client, _) = fake_api(common_routes(empty));
        let e = read_calico_objects(&client).await.unwrap_err().to_string();
        assert!(e.contains("Calico is not installed on this cluster"), "{e}");
        assert!(
            e.contains("clusterinformations.projectcalico.org/v3"),
            "{e}"
        );
        assert!(
            e.contains("clusterinformations.crd.projectcalico.org/v1"),
            "{e}"
        );
        assert!(e.contains("calico-node pods"), "{e}");
    }

    #[tokio::test]
    async fn a_served_api_without_clusterinformation_default_says_so() {
        let mut routes = common_routes(calico_node_pods());
        let mut v1 = v1_routes();
        v1[0].2["items"] = serde_json::json!([]);
        routes.extend(v1);
        let (client, _) = fake_api(routes);
        let e = read_calico_objects(&client).await.unwrap_err().to_string();
        assert!(
            e.contains(
                "ClusterInformation `default` (clusterinformations.crd.projectcalico.org/v1)"
            ),
            "{e}"
        );
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
        let (client, seen) = fake_api(vec![
            ("GET /api/v1/namespaces", 200, list),
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
        assert_eq!(
            deletes,
            ["DELETE /api/v1/namespaces/calico-conformance-old"]
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
        let (client, seen) = fake_api::<&str>(vec![]);
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
            ["DELETE /api/v1/namespaces/calico-conformance-gone"]
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

    fn recorded(file: &str) -> serde_json::Value {
        serde_json::from_str(&crate::fixtures::read_text(&format!(
            "recorded/kube/{file}"
        )))
        .unwrap()
    }

    fn pod_list(pod: &serde_json::Value) -> serde_json::Value {
        api_list_of("PodList", vec![pod.clone()])
    }

    #[tokio::test]
    async fn a_recorded_ready_pod_ends_the_wait_at_once() {
        let pod = recorded("pod-test-tools.json");
        let (client, _) = fake_api(vec![(
            "GET /api/v1/namespaces/default/pods",
            200,
            pod_list(&pod),
        )]);
        let api: Api<Pod> = Api::namespaced(client, "default");
        let t = Duration::from_secs(10);
        let got = wait_ready(&api, &api, "test-tools", t, t, false)
            .await
            .unwrap();
        assert_eq!(got.metadata.name.as_deref(), Some("test-tools"));
    }

    #[tokio::test]
    async fn a_recorded_image_pull_failure_is_reported_with_its_events_at_the_deadline() {
        let pod = recorded("pod-image-pull-failure.json");
        let events = as_api_list(recorded("events-image-pull-failure.json"));
        let (client, seen) = fake_api(vec![
            ("GET /api/v1/namespaces/default/pods", 200, pod_list(&pod)),
            (
                "WATCH /api/v1/namespaces/default/pods",
                200,
                serde_json::json!([{"type": "MODIFIED", "object": pod.clone()}]),
            ),
            ("GET /api/v1/namespaces/default/pods/badimage", 200, pod),
            ("GET /api/v1/namespaces/default/events", 200, events),
        ]);
        let api: Api<Pod> = Api::namespaced(client, "default");
        let e = wait_ready(
            &api,
            &api,
            "badimage",
            Duration::from_millis(300),
            Duration::from_secs(180),
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("pod default/badimage did not become Ready within 180 s"),
            "{e}"
        );
        assert!(e.contains("waiting ErrImagePull"), "{e}");
        assert!(e.contains("latest events (7 of 7)"), "{e}");
        assert!(
            seen.lock()
                .unwrap()
                .contains(&"GET /api/v1/namespaces/default/events".to_string())
        );
    }

    #[tokio::test]
    async fn a_setup_that_fails_after_creating_its_namespace_deletes_it() {
        let _env = ENV.lock().await;
        set_env("CALICO_READY_TIMEOUT", Some("1".as_ref()));
        set_env("CALICO_TEARDOWN_TIMEOUT", Some("5".as_ref()));
        let ns_name = manifests::namespace_name("fake");
        let ns = namespace_json(&ns_name, "2026-01-01T00:00:00Z", "u-fake");
        let mut pod = recorded("pod-image-pull-failure.json");
        pod["metadata"]["namespace"] = ns_name.clone().into();
        let events = as_api_list(recorded("events-image-pull-failure.json"));
        let no_namespaces = api_list_of("NamespaceList", vec![]);
        let key = |method: &str, rest: &str| format!("{method} /api/v1/namespaces/{ns_name}{rest}");
        let mut routes: Vec<(String, u16, serde_json::Value)> = common_routes(calico_node_pods())
            .into_iter()
            .chain(v1_routes())
            .map(|(k, code, body)| (k.to_string(), code, body))
            .collect();
        routes.push(("GET /api/v1/namespaces".into(), 200, no_namespaces));
        routes.extend([
            (key("PATCH", ""), 200, ns.clone()),
            (key("DELETE", ""), 200, ns),
            (key("PATCH", "/pods/c2c-network-demo"), 200, pod.clone()),
            (key("PATCH", "/pods/test-tools"), 200, pod.clone()),
            (key("PATCH", "/pods/test-tools-remote"), 200, pod.clone()),
            (key("GET", "/pods"), 200, pod_list(&pod)),
            (
                key("WATCH", "/pods"),
                200,
                serde_json::json!([{"type": "MODIFIED", "object": pod.clone()}]),
            ),
            (key("GET", "/pods/c2c-network-demo"), 200, pod),
            (key("GET", "/events"), 200, events),
        ]);
        let (client, seen, uris) = fake_api_with_uris(routes);
        let conn = Connection {
            context: "kind-fake".into(),
            server: "https://fake.invalid".into(),
            client: client.clone(),
            exec_client: client,
        };
        let result = KubeTarget::setup_on(&conn, "fake").await;
        set_env("CALICO_READY_TIMEOUT", None);
        set_env("CALICO_TEARDOWN_TIMEOUT", None);
        let e = result.err().expect("setup must fail").to_string();
        assert!(e.contains("did not become Ready within 1 s"), "{e}");
        let seen = seen.lock().unwrap().clone();
        let at = |k: String| seen.iter().position(|s| *s == k);
        let created = at(key("PATCH", "")).expect("the namespace was applied");
        let applied = at(key("PATCH", "/pods/c2c-network-demo")).expect("c2c was applied");
        let deleted = at(key("DELETE", "")).expect("the namespace was deleted");
        assert!(created < applied && applied < deleted, "{seen:?}");
        // Nothing was created after the delete.
        assert!(
            seen[deleted..].iter().all(|k| !k.starts_with("PATCH")),
            "{seen:?}"
        );
        // Every object went by server-side apply as the suite's field manager, strictly
        // validated.
        let patches: Vec<String> = uris
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.starts_with("PATCH"))
            .cloned()
            .collect();
        assert_eq!(patches.len(), 4, "{patches:?}");
        for p in &patches {
            assert!(
                p.contains("fieldManager=calico-conformance")
                    && p.contains("fieldValidation=Strict"),
                "{p}"
            );
        }
    }
}
