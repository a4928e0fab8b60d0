//! Deploying the article's pods and the node probes, waiting for them, reading the facts and
//! discovering each pod's network namespace: [`KubeTarget`].

use super::api::{DEFAULT_READY_TIMEOUT, DEFAULT_TEARDOWN_TIMEOUT, PROBE_COMMAND_DEADLINE};
use super::calico_api::read_calico_objects;
use super::cluster;
use super::context::{Connection, connect, env_seconds};
use super::discovery::{self, ContainerId};
use super::manifests::{self, C2C_POD, ImageMap, MANAGER, REMOTE_POD, TEST_TOOLS_POD};
use super::namespaces::{delete_namespace, warn_about_leftovers};
use super::place::{KubePlace, Netns};
use super::ready;
use crate::error::{Error, Result};
use crate::facts::{Facts, PodFacts};
use crate::place::Place;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PodNetns {
    pub node: String,
    /// Container name → init PID on the node.
    pub containers: Vec<(String, u32)>,
    /// The PID whose netns is the pod's.
    pub pod_pid: u32,
}

/// What the first process of a run discovered, as written to `kube-target.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Discovered {
    pub context: String,
    pub namespace: String,
    pub facts: Facts,
    /// Node → probe pod name.
    pub probes: BTreeMap<String, String>,
    /// Pod name → discovered namespaces.
    pub pods: BTreeMap<String, PodNetns>,
    /// Every pod of the namespace when discovered: name → (uid, resourceVersion).
    pub versions: BTreeMap<String, (String, String)>,
}

impl Discovered {
    /// `Ok` when `pods` (the namespace's pods now) are the ones discovered, unchanged; else
    /// what changed.
    pub fn still_current(&self, pods: &[Pod]) -> std::result::Result<(), String> {
        let now = versions_of(pods);
        if now == self.versions {
            return Ok(());
        }
        let changed: Vec<&str> = self
            .versions
            .keys()
            .chain(now.keys())
            .filter(|name| self.versions.get(*name) != now.get(*name))
            .map(String::as_str)
            .collect();
        Err(format!(
            "pods changed since discovery: {}",
            changed.join(", ")
        ))
    }
}

/// Every pod's name → (uid, resourceVersion).
pub(crate) fn versions_of(pods: &[Pod]) -> BTreeMap<String, (String, String)> {
    pods.iter()
        .filter_map(|p| {
            Some((
                p.metadata.name.clone()?,
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    p.metadata.resource_version.clone().unwrap_or_default(),
                ),
            ))
        })
        .collect()
}

/// Where a run puts its node probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On the nodes the article's pods run on (the claims).
    Article,
    /// On every Ready, schedulable node as well (the sweep); the others are reported as
    /// skipped, with why.
    EveryNode,
}

/// Adds every Ready, schedulable node of the cluster to `nodes` (kept sorted); returns the
/// others, each with why it is left out.
async fn every_node(client: &Client, nodes: &mut Vec<String>) -> Result<Vec<(String, String)>> {
    let all = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::api("listing nodes", e))?;
    let mut skipped = Vec::new();
    for node in &all.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        match ready::not_sweepable(node) {
            Some(why) if !nodes.contains(&name) => skipped.push((name, why)),
            _ => nodes.push(name),
        }
    }
    nodes.sort();
    nodes.dedup();
    skipped.sort();
    Ok(skipped)
}

/// What [`deploy_probes`] made: node → probe name, and the nodes whose probe did not start
/// (with its state and events); node → the Ready pinger pod, and the nodes whose pinger did not
/// start.
#[derive(Default)]
struct Deployment {
    probes: BTreeMap<String, String>,
    probe_failures: BTreeMap<String, String>,
    pingers: BTreeMap<String, Pod>,
    pinger_failures: BTreeMap<String, String>,
}

/// Applies a probe on each of `nodes` and a pinger on each of `pinger_nodes`, and waits (until
/// `ready_timeout` after `started`) for them all. A probe of the `article_nodes` that does not
/// start is the setup's error; any other probe or pinger that does not start is its node's.
async fn deploy_probes(
    (pods_api, watch_pods): (&Api<Pod>, &Api<Pod>),
    (nodes, pinger_nodes): (&[String], &[String]),
    article_nodes: &[String],
    images: &ImageMap,
    (started, ready_timeout): (Instant, Duration),
) -> Result<Deployment> {
    let namespace = pods_api.namespace().unwrap_or_default().to_string();
    let namespace = namespace.as_str();
    let probe_image =
        manifests::probe_image(std::env::var("CALICO_PROBE_IMAGE").ok().as_deref(), images);
    let probes = nodes
        .iter()
        .map(|n| (n, manifests::probe_pod(n, namespace, &probe_image)));
    let pingers =
        (pinger_nodes.iter()).map(|n| (n, manifests::pinger_pod(n, namespace, &probe_image)));
    // (node, pod name, is a pinger)
    let mut made = Vec::new();
    for (node, pod, pinger) in probes
        .map(|(n, p)| (n, p, false))
        .chain(pingers.map(|(n, p)| (n, p, true)))
    {
        let name = pod.metadata.name.clone().unwrap_or_default();
        pods_api
            .patch(&name, &apply_params(), &Patch::Apply(&pod))
            .await
            .map_err(|e| Error::api(format!("applying {namespace}/{name}"), e))?;
        made.push((node.clone(), name, pinger));
    }
    // A sweep goes on without a node whose probe did not start (that node fails, with the
    // probe's state and events); the article's nodes cannot do without theirs.
    // Sixteen waits at once, each until the deadline, and at least a few seconds: a pod that
    // is Ready is seen Ready even after another one used the deadline up.
    let waits = futures::stream::iter(made.into_iter().map(|(node, name, pinger)| async move {
        let left = (ready_timeout.saturating_sub(started.elapsed())).max(Duration::from_secs(5));
        let r = wait_ready(pods_api, watch_pods, &name, left, ready_timeout, false).await;
        (node, name, pinger, r)
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let mut out = Deployment::default();
    for (node, name, pinger, r) in waits {
        match (pinger, r) {
            (true, Ok(Readiness::Ready(pod))) => {
                out.pingers.insert(node, *pod);
            }
            (true, Ok(Readiness::Unschedulable(why))) => {
                out.pinger_failures.insert(node, why);
            }
            (true, Err(e)) => {
                out.pinger_failures.insert(node, e.to_string());
            }
            (false, Err(e)) if !article_nodes.contains(&node) => {
                out.probe_failures.insert(node, e.to_string());
            }
            (false, r) => {
                r?;
                out.probes.insert(node, name);
            }
        }
    }
    Ok(out)
}

/// The nodes that get a pinger: in a sweep, those without an article pod (for XN-1 and MTU-2
/// from and to them).
fn pinger_nodes(scope: Scope, nodes: &[String], article_nodes: &[String]) -> Vec<String> {
    match scope {
        Scope::Article => Vec::new(),
        Scope::EveryNode => (nodes.iter())
            .filter(|n| !article_nodes.contains(n))
            .cloned()
            .collect(),
    }
}

/// Each pinger's namespaces, found through its node's probe, 16 at a time, into `discovered`
/// (by pod name); a pinger that cannot be found into `failures` (by node).
async fn discover_pingers(
    host: &impl Fn(&str) -> Result<KubePlace>,
    pingers: &BTreeMap<String, Pod>,
    discovered: &mut BTreeMap<String, PodNetns>,
    failures: &mut BTreeMap<String, String>,
) {
    let found = futures::stream::iter(pingers.iter().map(|(node, pod)| {
        let place = host(node);
        async move {
            let netns = match place {
                Ok(place) => discover_pod(&place, pod).await,
                Err(e) => Err(e),
            };
            (node, netns)
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for (node, netns) in found {
        match netns {
            Ok(netns) => {
                discovered.insert(crate::calico::pinger_name(node), netns);
            }
            Err(e) => {
                failures.insert(node.clone(), e.to_string());
            }
        }
    }
}

/// Puts what only each node knows (the ipip module, its underlay interface) into `facts`. A
/// sweep's node whose probe could not answer goes into `probe_failures`; one of the
/// `article_nodes` is the setup's error.
fn add_node_details(
    facts: &mut Facts,
    details: Vec<(String, Result<(bool, String)>)>,
    article_nodes: &[String],
    probe_failures: &mut BTreeMap<String, String>,
) -> Result<()> {
    for (node, found) in details {
        let (has_ipip, addr) = match found {
            Ok(d) => d,
            Err(e) if !article_nodes.contains(&node) => {
                probe_failures.insert(node, e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        facts.ipip_module = Some(facts.ipip_module.unwrap_or(true) && has_ipip);
        if let Some(n) = facts.nodes.iter_mut().find(|n| n.name == node)
            && let Some((iface, prefix)) = cluster::underlay_from_ip_addr(&addr, n.address)
        {
            n.underlay = Some(iface);
            n.underlay_prefix.get_or_insert(prefix);
        }
    }
    Ok(())
}

/// What only the node knows, read through its probe: whether the ipip module is loaded, and
/// `ip -j -4 addr show` (its underlay interface).
async fn node_details(place: Result<KubePlace>) -> Result<(bool, String)> {
    let place = place?;
    let out = place
        .exec(&["test", "-d", "/sys/module/ipip"], PROBE_COMMAND_DEADLINE)
        .await?;
    let addr = place
        .exec(&["ip", "-j", "-4", "addr", "show"], PROBE_COMMAND_DEADLINE)
        .await?
        .ok()?;
    Ok((out.code == Some(0), addr.stdout_text()))
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
    /// Nodes left out of a sweep, and why (NotReady, cordoned).
    skipped: Vec<(String, String)>,
    /// Nodes of a sweep whose probe could not start or be used, and why.
    probe_failures: BTreeMap<String, String>,
    /// Nodes of a sweep whose pinger could not start or be entered, and why.
    pinger_failures: BTreeMap<String, String>,
    /// How long each phase of the setup took.
    phases: Vec<(&'static str, Duration)>,
}

impl KubeTarget {
    /// Guard → connect → Calico check → namespace → article pods and remote pod → probes →
    /// facts → discovery. On any error after the namespace was created it is deleted before the
    /// error is returned.
    /// For one process alone; [`super::open`] also handles the processes of a nextest run.
    pub async fn setup(run_id: &str) -> Result<KubeTarget> {
        let conn = connect().await?;
        Self::setup_on(&conn, run_id).await
    }

    /// A target from what another process of this run discovered (`took`: reading it).
    pub(crate) fn attach(conn: &Connection, d: Discovered, took: Duration) -> KubeTarget {
        KubeTarget {
            context: d.context,
            client: conn.client.clone(),
            watch_client: conn.exec_client.clone(),
            exec_pods: Api::namespaced(conn.exec_client.clone(), &d.namespace),
            namespace: d.namespace,
            facts: d.facts,
            probes: d.probes,
            pods: d.pods,
            skipped: Vec::new(),
            probe_failures: BTreeMap::new(),
            pinger_failures: BTreeMap::new(),
            phases: vec![("attached to this nextest run's deployment", took)],
        }
    }

    /// What this target discovered, for the other processes of the run; `versions` are the
    /// namespace's pods' uids and resourceVersions.
    pub(crate) fn discovered(&self, versions: BTreeMap<String, (String, String)>) -> Discovered {
        Discovered {
            context: self.context.clone(),
            namespace: self.namespace.clone(),
            facts: self.facts.clone(),
            probes: self.probes.clone(),
            pods: self.pods.clone(),
            versions,
        }
    }

    /// [`KubeTarget::setup`] on a connection already made and checked.
    pub async fn setup_on(conn: &Connection, run_id: &str) -> Result<KubeTarget> {
        Self::setup_scoped(conn, run_id, Scope::Article).await
    }

    /// [`KubeTarget::setup_on`] with probes on the article's nodes, or on every node.
    pub async fn setup_scoped(conn: &Connection, run_id: &str, scope: Scope) -> Result<KubeTarget> {
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
            .map_err(|e| Error::api(format!("creating namespace {namespace}"), e))?;
        match Self::populate(conn, &namespace, scope).await {
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

    async fn populate(conn: &Connection, namespace: &str, scope: Scope) -> Result<KubeTarget> {
        let ready_timeout = match conn.ready_timeout {
            Some(t) => t,
            None => env_seconds("CALICO_READY_TIMEOUT", DEFAULT_READY_TIMEOUT)?,
        };
        let images = ImageMap::from_env()?;
        let pods_api: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
        let watch_pods: Api<Pod> = Api::namespaced(conn.exec_client.clone(), namespace);
        for pod in planned_pods(namespace, &images)? {
            let name = pod.metadata.name.clone().unwrap_or_default();
            pods_api
                .patch(&name, &apply_params(), &Patch::Apply(&pod))
                .await
                .map_err(|e| Error::api(format!("applying pod {namespace}/{name}"), e))?;
        }
        let started = Instant::now();
        let Deployed { ready, absent } =
            wait_for_pods(&pods_api, &watch_pods, ready_timeout).await?;
        let mut nodes: Vec<String> = ready.values().map(pod_node).collect::<Result<_>>()?;
        nodes.sort();
        nodes.dedup();
        let article_nodes = nodes.clone();
        let skipped = match scope {
            Scope::Article => Vec::new(),
            Scope::EveryNode => every_node(&conn.client, &mut nodes).await?,
        };

        let pinger_nodes = pinger_nodes(scope, &nodes, &article_nodes);
        let pods = (&pods_api, &watch_pods);
        let Deployment {
            probes,
            mut probe_failures,
            pingers,
            mut pinger_failures,
        } = deploy_probes(
            pods,
            (&nodes, &pinger_nodes),
            &article_nodes,
            &images,
            (started, ready_timeout),
        )
        .await?;
        let deployed = started.elapsed();

        // Read again, not reused from setup's check: a node that got its first pod just now
        // has a block affinity that did not exist then.
        let objects = read_calico_objects(&conn.client).await?;
        let node_refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let mut facts =
            cluster::facts_from_objects(&format!("kube {}", conn.context), &objects, &node_refs)?;
        facts.kubernetes_version = conn.kubernetes_version.clone();
        // REC-*: every pod Calico networks on the run's nodes, all namespaces (read only).
        let pools = super::workloads::every_pool_cidr(&objects.ip_pools);
        facts.workloads =
            Some(super::workloads::read_workloads(&conn.client, &nodes, &pools).await?);

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
        // Node details only the node knows: the ipip module, the underlay interface; 16 nodes
        // at a time. A sweep's node whose probe cannot answer is reported as that node's error.
        let details = futures::stream::iter(probes.keys().map(|node| {
            let place = host(node);
            async move { (node.clone(), node_details(place).await) }
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        add_node_details(&mut facts, details, &article_nodes, &mut probe_failures)?;

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
                ipv6: super::workloads::ipv6_of(pod),
                containers: netns.containers.iter().map(|(c, _)| c.clone()).collect(),
            });
            discovered.insert(name.to_string(), netns);
        }
        // The pingers: entered like the article's pods, but not among them (no claim runs on
        // them); a sweep finds them among the workloads.
        discover_pingers(&host, &pingers, &mut discovered, &mut pinger_failures).await;
        facts.absent_pods = absent;
        Ok(KubeTarget {
            context: conn.context.clone(),
            client: conn.client.clone(),
            watch_client: conn.exec_client.clone(),
            namespace: namespace.to_string(),
            exec_pods,
            facts,
            probes,
            pods: discovered,
            skipped,
            probe_failures,
            pinger_failures,
            phases: vec![
                ("deploy and readiness", deployed),
                (
                    "facts and discovery",
                    started.elapsed().saturating_sub(deployed),
                ),
            ],
        })
    }

    /// The cluster facts, the deployed pods included (`test-tools-remote` only when scheduled;
    /// otherwise it is in `absent_pods` with the scheduler's reason).
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

    /// How long the phases of the setup took: deploy and readiness, facts and discovery.
    pub fn phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }

    /// Nodes left out of a sweep (NotReady, cordoned), and why.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// Why the pinger of `node` is not there to ping from or to, when it did not start.
    pub fn pinger_failure(&self, node: &str) -> Option<&str> {
        self.pinger_failures.get(node).map(String::as_str)
    }

    fn probe_on(&self, node: &str) -> Result<&String> {
        if let Some(why) = self.probe_failures.get(node) {
            return Err(Error::Kube(format!(
                "node {node}: its probe did not start: {why}"
            )));
        }
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
        Ok(Place::new(KubePlace::new(
            format!("host {node}"),
            self.exec_pods.clone(),
            self.probe_on(node)?.clone(),
            Netns::Host,
        )))
    }

    /// The network namespace of pod `pod`, entered from its node's probe.
    pub fn pod_place(&self, pod: &str) -> Result<Place> {
        let p = self.pod(pod)?;
        Ok(Place::new(KubePlace::new(
            format!("pod {}/{pod}", self.namespace),
            self.exec_pods.clone(),
            self.probe_on(&p.node)?.clone(),
            Netns::Process(p.pod_pid),
        )))
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
                    Place::new(KubePlace::new(
                        format!("container {}/{pod}/{c}", self.namespace),
                        self.exec_pods.clone(),
                        probe.clone(),
                        Netns::Process(*pid),
                    )),
                )
            })
            .collect())
    }

    /// What finds the run's pods again, as they are now (see [`PodFinder`]).
    pub fn pod_finder(&self) -> PodFinder {
        PodFinder {
            pods: Api::namespaced(self.client.clone(), &self.namespace),
            exec_pods: self.exec_pods.clone(),
            namespace: self.namespace.clone(),
            probes: self.probes.clone(),
        }
    }

    /// Deletes the run's namespace (foreground propagation) and waits until it is gone, at
    /// most `CALICO_TEARDOWN_TIMEOUT`.
    pub async fn teardown(self) -> Result<()> {
        let deadline = env_seconds("CALICO_TEARDOWN_TIMEOUT", DEFAULT_TEARDOWN_TIMEOUT)?;
        delete_namespace(&self.client, &self.watch_client, &self.namespace, deadline).await
    }
}

/// Finds a pod of the run again, as it is now: for a watch that outlives a container restart
/// (a new init process to enter) or a pod made again under its name (a new network namespace,
/// maybe a new IP). Cheap to clone; every call reads the pod from the API server and looks for
/// its container on its node, as the target's opening did.
#[derive(Clone)]
pub struct PodFinder {
    pods: Api<Pod>,
    exec_pods: Api<Pod>,
    namespace: String,
    probes: BTreeMap<String, String>,
}

/// A pod as [`PodFinder::find`] found it.
#[derive(Clone)]
pub struct Found {
    /// Its network namespace, entered from its node's probe (labelled as the target's).
    pub place: Place,
    /// Its IPv4 address (`status.podIP`).
    pub ip: IpAddr,
    /// Which network namespace that is: its node and `net:[inode]`. The same while the pod's
    /// sandbox lives (a container restart keeps it); another once the pod was made again.
    pub netns: String,
}

impl PodFinder {
    /// Pod `pod` now: read from the API server, its containers running, its namespace found
    /// from its node's probe. Fails naming the pod when it is not there, not running (a
    /// container waiting, with the kubelet's reason), on a node without a probe, or not found
    /// on its node.
    pub async fn find(&self, pod: &str) -> Result<Found> {
        let ns = &self.namespace;
        let p = (self.pods.get(pod).await)
            .map_err(|e| Error::api(format!("reading pod {ns}/{pod}"), e))?;
        let statuses = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for c in statuses.into_iter().flatten() {
            if c.state.as_ref().and_then(|s| s.running.as_ref()).is_none() {
                let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
                let why = waiting
                    .and_then(|w| w.reason.clone())
                    .unwrap_or_else(|| "not running".into());
                return Err(Error::Kube(format!(
                    "pod {ns}/{pod}: container {} is {why}",
                    c.name
                )));
            }
        }
        let node = pod_node(&p)?;
        let probe = self.probes.get(&node).ok_or_else(|| {
            Error::NotFound(format!(
                "pod {ns}/{pod} is on node {node} now, which has no node probe"
            ))
        })?;
        let at = |label: String, netns| {
            KubePlace::new(label, self.exec_pods.clone(), probe.clone(), netns)
        };
        let found = discover_pod(&at(format!("host {node}"), Netns::Host), &p).await?;
        let place = at(format!("pod {ns}/{pod}"), Netns::Process(found.pod_pid));
        let link = format!("/proc/{}/ns/net", found.pod_pid);
        let inode = (place
            .exec(&["readlink", &link], PROBE_COMMAND_DEADLINE)
            .await?
            .ok())?;
        Ok(Found {
            place: Place::new(place),
            ip: pod_ip(&p)?.into(),
            netns: format!("node {node}, {}", inode.stdout_text().trim()),
        })
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
            .exec(
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
                            .exec(
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

/// How waiting for a pod ended, when it did not fail.
#[derive(Debug)]
pub(crate) enum Readiness {
    Ready(Box<Pod>),
    /// The scheduler cannot place it; its message.
    Unschedulable(String),
}

/// The article's pods after the readiness wait: those Ready, and those that do not run here,
/// with why (`test-tools-remote` on a cluster with one schedulable node).
#[derive(Debug)]
pub(crate) struct Deployed {
    pub ready: BTreeMap<&'static str, Pod>,
    pub absent: BTreeMap<String, String>,
}

/// Waits for the article's pods to be Ready, at most `timeout` for all of them.
/// `c2c-network-demo` and `test-tools` must be Ready; `test-tools-remote` may instead be
/// Unschedulable (its anti-affinity finds no second node), which makes it absent with the
/// scheduler's message. Anything else — an image that cannot be pulled, a crash loop, a pod
/// still Pending at the deadline for any other reason — fails with the pod's state and events.
pub(crate) async fn wait_for_pods(
    api: &Api<Pod>,
    watch: &Api<Pod>,
    timeout: Duration,
) -> Result<Deployed> {
    let started = Instant::now();
    let mut deployed = Deployed {
        ready: BTreeMap::new(),
        absent: BTreeMap::new(),
    };
    for (name, may_be_unschedulable) in [
        (C2C_POD, false),
        (TEST_TOOLS_POD, false),
        (REMOTE_POD, true),
    ] {
        let left = timeout.saturating_sub(started.elapsed());
        match wait_ready(api, watch, name, left, timeout, may_be_unschedulable).await? {
            Readiness::Ready(pod) => {
                deployed.ready.insert(name, *pod);
            }
            Readiness::Unschedulable(why) => {
                let why = format!(
                    "{name} cannot be scheduled on another node than {C2C_POD}'s (the cluster has one schedulable node): {why}"
                );
                tracing::warn!("{why}");
                deployed.absent.insert(name.to_string(), why);
            }
        }
    }
    Ok(deployed)
}

/// Waits until pod `name` is Ready, at most `left`. With `allow_unschedulable`, a pod the
/// scheduler cannot place ends the wait as [`Readiness::Unschedulable`]. On timeout the error
/// describes the pod (phase, containers, latest events).
async fn wait_ready(
    api: &Api<Pod>,
    watch: &Api<Pod>,
    name: &str,
    left: Duration,
    total: Duration,
    allow_unschedulable: bool,
) -> Result<Readiness> {
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
                Ok(Readiness::Ready(Box::new(pod)))
            } else {
                Ok(Readiness::Unschedulable(
                    ready::unschedulable(&pod).unwrap_or_default(),
                ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fake_api::*;

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
        let ttls = place
            .ping(c2c.ip.into(), 2, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ttls.iter().map(|r| r.ttl).collect::<Vec<_>>(), vec![63, 63]);
        let containers = target.container_places(C2C_POD).unwrap();
        assert_eq!(containers.len(), 2);
        target.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn a_recorded_ready_pod_ends_the_wait_at_once() {
        let pod = recorded("kube/pod-test-tools.json");
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
        let Readiness::Ready(got) = got else {
            panic!("{got:?}")
        };
        assert_eq!(got.metadata.name.as_deref(), Some("test-tools"));
    }

    #[tokio::test]
    async fn a_recorded_image_pull_failure_is_reported_with_its_events_at_the_deadline() {
        let pod = recorded("kube/pod-image-pull-failure.json");
        let events = as_api_list(recorded("kube/events-image-pull-failure.json"));
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

    /// The article's pods in namespace `ns` as the API lists and watches them: the recorded
    /// Ready `c2c-network-demo` and `test-tools`, and `remote` as `test-tools-remote`.
    fn one_node_cluster(
        ns: &str,
        remote: serde_json::Value,
    ) -> Vec<(String, u16, serde_json::Value)> {
        let mut pods = vec![
            recorded("kube/pod-c2c-network-demo.json"),
            recorded("kube/pod-test-tools.json"),
            remote,
        ];
        for p in &mut pods {
            p["metadata"]["namespace"] = ns.into();
        }
        pods[2]["metadata"]["name"] = REMOTE_POD.into();
        let path = format!("/api/v1/namespaces/{ns}");
        let events: Vec<serde_json::Value> = pods
            .iter()
            .map(|p| serde_json::json!({"type": "MODIFIED", "object": p}))
            .collect();
        vec![
            (
                format!("GET {path}/pods"),
                200,
                api_list_of("PodList", pods.clone()),
            ),
            (format!("WATCH {path}/pods"), 200, serde_json::json!(events)),
            (
                format!("GET {path}/pods/{REMOTE_POD}"),
                200,
                pods[2].clone(),
            ),
        ]
    }

    /// One schedulable node (recorded): `test-tools-remote` Pending, `PodScheduled=False`
    /// reason `Unschedulable`. The wait ends at once with the two article pods Ready and the
    /// remote pod absent, carrying the scheduler's message.
    #[tokio::test]
    async fn one_schedulable_node_leaves_the_remote_pod_absent_with_the_schedulers_reason() {
        let ns = "calico-conformance-6b0ed858-32fe";
        let remote = recorded("kube-api/pod-pending-unschedulable.json");
        let (client, _) = fake_api(one_node_cluster(ns, remote));
        let api: Api<Pod> = Api::namespaced(client, ns);
        let started = Instant::now();
        let deployed = wait_for_pods(&api, &api, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            deployed.ready.keys().copied().collect::<Vec<_>>(),
            [C2C_POD, TEST_TOOLS_POD]
        );
        let why = &deployed.absent[REMOTE_POD];
        assert!(
            why.contains("the cluster has one schedulable node")
                && why.contains(
                    "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules"
                ),
            "{why}"
        );
    }

    /// A remote pod Pending for another reason (the recorded `ErrImagePull`) is not "one
    /// node": the wait fails at its deadline with the pod's state.
    #[tokio::test]
    async fn a_remote_pod_that_cannot_pull_its_image_still_fails_the_setup() {
        let ns = "calico-conformance-pull";
        let remote = recorded("kube/pod-image-pull-failure.json");
        let mut routes = one_node_cluster(ns, remote);
        routes.push((
            format!("GET /api/v1/namespaces/{ns}/events"),
            200,
            as_api_list(recorded("kube/events-image-pull-failure.json")),
        ));
        let (client, _) = fake_api(routes);
        let api: Api<Pod> = Api::namespaced(client, ns);
        let e = wait_for_pods(&api, &api, Duration::from_millis(500))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("test-tools-remote did not become Ready"), "{e}");
        assert!(e.contains("ErrImagePull"), "{e}");
    }

    #[tokio::test]
    async fn a_setup_that_fails_after_creating_its_namespace_deletes_it() {
        let _env = ENV.lock().await;
        set_env("CALICO_READY_TIMEOUT", Some("1".as_ref()));
        set_env("CALICO_TEARDOWN_TIMEOUT", Some("5".as_ref()));
        let ns_name = manifests::namespace_name("fake");
        let ns = namespace_json(&ns_name, "2026-01-01T00:00:00Z", "u-fake");
        let mut pod = recorded("kube/pod-image-pull-failure.json");
        pod["metadata"]["namespace"] = ns_name.clone().into();
        let events = as_api_list(recorded("kube/events-image-pull-failure.json"));
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
            kubernetes_version: Some("v1.36.2".into()),
            client: client.clone(),
            exec_client: client,
            ready_timeout: None,
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
