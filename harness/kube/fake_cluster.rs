//! A fake cluster over a lab: the loopback fake API server ([`super::fake_server`]) answering
//! for the lab's nodes and pods, so the kube target — deploy, readiness, facts, discovery, and
//! every claim as execs in the node probes — runs end to end on this machine.
//!
//! What it serves, and where each answer comes from:
//! - pods: the recorded `kubectl get -o json` of the article's pods
//!   (`fixtures/recorded/kube/pod-*.json`), with the lab's names, node, pod IP and host IP put
//!   in, and container IDs of its own (unique per fake cluster); the probes are the recorded
//!   `test-tools` pod made host-network on each lab node; `test-tools-remote` is `test-tools`
//!   on the lab's second node;
//! - nodes: the recorded `k8s-worker-1` node, once per lab node with its name and address;
//! - Calico (`crd.projectcalico.org/v1`, a manifest install): the fixtures' ClusterInformation,
//!   IP pool (the lab's CIDR, block size and encapsulation modes) and block affinities (the
//!   lab's blocks); `calico-node` pods as [`super::fake_api::calico_node_pods`];
//! - the operator group `operator.tigera.io` is not served at all ([`Install::Manifest`]: the
//!   recorded plain-text 404), or served without an Installation `default`
//!   ([`Install::OperatorWithoutInstallation`]: the recorded `NotFound` `Status`);
//! - execs in a probe run in its lab node's network namespace.
//!
//! Container discovery finds a container by its ID in `/proc/*/cgroup`, as on the recorded
//! node (cgroup v1, cgroupfs driver: `<cgroupRoot>/kubepods/besteffort/pod<uid>/<id>`). So each
//! lab container holder is moved into such a directory of the `pids` hierarchy, under a root
//! of this fake cluster's own (`/sys/fs/cgroup/pids/calico-conformance-fake-<run id>`); the
//! holders are moved back and the directories removed when the fake cluster is dropped. A
//! machine without a writable cgroup v1 `pids` hierarchy fails [`FakeCluster::over_lab`] with
//! one error saying so.
//!
//! Test scaffolding (the `fake-api` feature, on for every test build).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use super::fake_api::{
    api_list, api_list_of, as_api_list, calico_node_pods, namespace_json, recorded,
};
use super::fake_server::{FakeServer, ProbeNetns};
use super::manifests;
use crate::error::{Error, Result};
use crate::facts::Encapsulation;
use crate::topology::Topology;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cgroup hierarchies the fake cluster can put containers in, in order of preference:
/// cgroup v1's `pids` (as the recorded node's kubelet, cgroupfs driver), the cgroup v2 half of a
/// hybrid mount, and a cgroup v2-only machine's (Debian 12's default). A container's
/// `/proc/<pid>/cgroup` line then names its ID either way.
pub const CGROUP_HIERARCHIES: [&str; 3] = [
    "/sys/fs/cgroup/pids",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup",
];

/// How the cluster's Calico was installed, as the operator group shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Manifests: `operator.tigera.io` is not served.
    Manifest,
    /// The operator's group is served, but there is no Installation `default`.
    OperatorWithoutInstallation,
}

/// Nodes of a fake cluster that are not well.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trouble<'a> {
    /// NotReady (the kubelet stopped posting status).
    pub not_ready: &'a [&'a str],
    /// Their probe never becomes Ready (the recorded `ErrImagePull` pod).
    pub probe_not_starting: &'a [&'a str],
    /// Their sweep's pinger (the lab's pod `calico-pinger-<node>`) never becomes Ready.
    pub pinger_not_starting: &'a [&'a str],
    /// A user's pod runs on them named as one of the run's: `default/test-tools` (the
    /// recorded pod with that node and an IP of its first block, served in the cluster's list
    /// of pods only; nothing of it is in the lab).
    pub user_pod_on: &'a [&'a str],
}

/// The fake API server over a lab, and the cgroup directories its containers were put in.
pub struct FakeCluster {
    pub server: FakeServer,
    /// The run's namespace (`calico-conformance-<run id>`).
    pub namespace: String,
    cgroups: std::sync::Mutex<Cgroups>,
    /// Container processes of pods the lab made without one (`test-tools-remote`).
    holders: std::sync::Mutex<Vec<crate::lab::holder::Holder>>,
    /// The article's pods as served, by name.
    served: std::sync::Mutex<BTreeMap<String, Value>>,
    /// Each pod's network namespace now (a `/proc/<pid>/ns/net` path), by name.
    netns: std::sync::Mutex<BTreeMap<String, PathBuf>>,
    /// Each lab node's network namespace, by name.
    nodes: BTreeMap<String, PathBuf>,
    /// The pods' names in the order the lists serve them.
    order: Vec<String>,
    /// Pods of other namespaces than the run's (a user's), in the cluster's list.
    others: Vec<Value>,
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for h in self.holders.get_mut().unwrap_or_else(|e| e.into_inner()) {
            if let Err(e) = h.kill_and_reap() {
                eprintln!("fake cluster: {e}");
            }
        }
    }
}

/// Checks that the lab was built for the run's namespace (`LabSpec::pod_namespace`): its host
/// ends are then named as Calico's CNI plugin names them for the pods the fake serves.
fn pods_in_namespace(topology: &Topology, namespace: &str) -> Result<()> {
    match topology.pods.iter().find(|p| p.namespace != namespace) {
        Some(p) => Err(Error::Internal(format!(
            "lab pod {}/{} is not in the run's namespace {namespace}: build the lab with \
             LabSpec::pod_namespace = {namespace}",
            p.namespace, p.name
        ))),
        None => Ok(()),
    }
}

/// A container process for each lab pod without one (on a cluster every pod has one): a holder
/// in the pod's namespace, named as the recorded pod's container.
fn add_missing_containers(
    topology: &mut Topology,
    run_id: &str,
) -> Result<Vec<crate::lab::holder::Holder>> {
    use crate::lab::holder::{HolderSpec, Ns, spawn_all};
    let mut specs = Vec::new();
    let mut owners = Vec::new();
    for (i, p) in topology.pods.iter().enumerate() {
        if p.containers.is_empty() {
            let ns = std::fs::File::open(&p.netns)
                .map_err(|e| Error::io(format!("opening {}", p.netns.display()), e))?;
            specs.push(HolderSpec {
                label: format!("calico-fake:{run_id}:{}/curl-client", p.name),
                ns: Ns::Join(ns.into()),
            });
            owners.push(i);
        }
    }
    let holders = spawn_all(specs)?;
    for (i, h) in owners.into_iter().zip(&holders) {
        topology.pods[i]
            .containers
            .insert("curl-client".into(), h.netns());
    }
    Ok(holders)
}

impl FakeCluster {
    /// Serves the lab described by `topology` as a cluster for run `run_id`.
    pub async fn over_lab(topology: &Topology, run_id: &str, install: Install) -> Result<Self> {
        Self::over_lab_not_ready(topology, run_id, install, &[]).await
    }

    /// [`FakeCluster::over_lab`] with the nodes `not_ready` NotReady: the recorded node with
    /// its `Ready` condition as the node lifecycle controller sets it when the kubelet stops
    /// posting status (`Unknown`, `NodeStatusUnknown`). No recording shows a NotReady node;
    /// the condition's fields are the recorded node's own.
    pub async fn over_lab_not_ready(
        topology: &Topology,
        run_id: &str,
        install: Install,
        not_ready: &[&str],
    ) -> Result<Self> {
        let trouble = Trouble {
            not_ready,
            ..Trouble::default()
        };
        Self::over_lab_with(topology, run_id, install, &trouble).await
    }

    /// [`FakeCluster::over_lab`] with the nodes in `trouble`: NotReady, or whose probe never
    /// starts.
    pub async fn over_lab_with(
        topology: &Topology,
        run_id: &str,
        install: Install,
        trouble: &Trouble<'_>,
    ) -> Result<Self> {
        let not_ready = trouble.not_ready;
        let namespace = manifests::namespace_name(run_id);
        let mut cgroups = Cgroups::new(&format!("calico-conformance-fake-{run_id}"))?;
        pods_in_namespace(topology, &namespace)?;
        let mut topology = topology.clone();
        let mut holders = add_missing_containers(&mut topology, run_id)?;
        let mut pods = Vec::new();
        let stuck = |p: &crate::topology::TopologyPod| {
            let pinger = crate::calico::pinger_name(&p.node);
            (p.name == pinger && trouble.pinger_not_starting.contains(&p.node.as_str()))
                .then_some(pinger)
        };
        for p in &topology.pods {
            if let Some(name) = stuck(p) {
                pods.push(not_starting(&name, &p.node, &namespace));
                continue;
            }
            match article_pod(&topology, p, &namespace, &mut cgroups) {
                Ok(pod) => pods.push(pod),
                Err(e) => {
                    holders.iter_mut().for_each(|h| drop(h.kill_and_reap()));
                    return Err(e);
                }
            }
        }
        let mut probes = ProbeNetns::new();
        for n in &topology.nodes {
            if trouble.probe_not_starting.contains(&n.name.as_str()) {
                let name = manifests::probe_name(&n.name);
                pods.push(not_starting(&name, &n.name, &namespace));
                continue;
            }
            pods.push(probe_pod(n, &namespace));
            probes.insert(manifests::probe_name(&n.name), Some(n.netns.clone()));
        }
        let mut routes = routes(&topology, &namespace, &pods, install);
        let first = (trouble
            .probe_not_starting
            .first()
            .map(|n| manifests::probe_name(n)))
        .or_else(|| {
            trouble
                .pinger_not_starting
                .first()
                .map(|n| crate::calico::pinger_name(n))
        });
        if let Some(first) = first {
            // What the wait reads when a pod did not become Ready: the recorded events of the
            // recorded pod that could not pull its image, as the first such pod's.
            let mut events = as_api_list(recorded("kube/events-image-pull-failure.json"));
            for e in events["items"].as_array_mut().into_iter().flatten() {
                e["involvedObject"]["name"] = first.clone().into();
                e["involvedObject"]["namespace"] = namespace.clone().into();
            }
            let path = format!("GET /api/v1/namespaces/{namespace}/events");
            routes.push((path, 200, events));
        }
        let others: Vec<Value> = (topology.nodes.iter())
            .filter(|n| trouble.user_pod_on.contains(&n.name.as_str()))
            .map(user_pod)
            .collect();
        for (route, _, body) in &mut routes {
            if route == "GET /api/v1/pods"
                && let Some(items) = body["items"].as_array_mut()
            {
                items.extend(others.iter().cloned());
            }
            if route == "GET /api/v1/nodes" {
                for node in body["items"].as_array_mut().into_iter().flatten() {
                    let name = node["metadata"]["name"].as_str().unwrap_or_default();
                    if not_ready.contains(&name) {
                        unknown_ready(node);
                    }
                }
            }
        }
        let server = match FakeServer::start(routes, probes).await {
            Ok(s) => s,
            Err(e) => {
                holders.iter_mut().for_each(|h| drop(h.kill_and_reap()));
                return Err(Error::io("starting the fake API server", e));
            }
        };
        let order: Vec<String> = (pods.iter())
            .map(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let served = order.iter().cloned().zip(pods.iter().cloned()).collect();
        let netns = (topology.pods.iter())
            .map(|p| (p.name.clone(), p.netns.clone()))
            .collect();
        let nodes = (topology.nodes.iter())
            .map(|n| (n.name.clone(), n.netns.clone()))
            .collect();
        Ok(FakeCluster {
            server,
            namespace,
            cgroups: std::sync::Mutex::new(cgroups),
            holders: std::sync::Mutex::new(holders),
            served: std::sync::Mutex::new(served),
            netns: std::sync::Mutex::new(netns),
            nodes,
            order,
            others,
        })
    }

    /// The cgroup directories made for the containers (for tests checking they are gone).
    pub fn cgroup_root(&self) -> PathBuf {
        self.cgroups.lock().unwrap().root.clone()
    }

    /// Makes `pod` again under its name, as after a `kubectl delete` and an apply (or a new
    /// sandbox): a new pod UID, a new network namespace with a new process for each of its
    /// containers, and the pod's `eth0` moved there and configured as Calico's CNI plugin does
    /// (its /32, the route to 169.254.1.1 and the default route through it), keeping its IP
    /// and host end. The old namespace is left without its `eth0`; the container processes the
    /// fake made there are killed (the lab's own stay until the lab closes). No recording shows
    /// a pod made again: the fields changed are the recorded pod's own.
    pub fn make_pod_again(&self, pod: &str) -> Result<()> {
        self.make_pod_again_at(pod, None)
    }

    /// [`FakeCluster::make_pod_again`], the pod given `new_ip` (an address of its node's block)
    /// when there is one, as IPAM may: its `eth0` has that /32, and its node's /32 route moves
    /// to it from the old IP, as Felix moves it.
    pub fn make_pod_again_at(&self, pod: &str, new_ip: Option<std::net::Ipv4Addr>) -> Result<()> {
        use crate::lab::holder::{HolderSpec, Ns, spawn_all};
        let mut holders = self.holders.lock().unwrap();
        let mut served = self.served.lock().unwrap();
        let mut netns = self.netns.lock().unwrap();
        let body = served
            .get_mut(pod)
            .ok_or_else(|| Error::Internal(format!("{pod} is not served")))?;
        let old_ns = (netns.get(pod).cloned())
            .ok_or_else(|| Error::Internal(format!("no network namespace of {pod}")))?;
        let node = body["spec"]["nodeName"].as_str().unwrap_or_default();
        let node_ns = (self.nodes.get(node).cloned())
            .ok_or_else(|| Error::Internal(format!("{pod} is on {node}, not a lab node")))?;
        let old_ip = body["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ip = new_ip.map_or(old_ip.clone(), |ip| ip.to_string());
        let containers: Vec<String> = (body["status"]["containerStatuses"].as_array())
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let label = |c: &str| format!("calico-fake:{}:{pod}/{c} (made again)", self.namespace);
        let mut new = spawn_all(vec![HolderSpec {
            label: label(containers.first().map_or("", String::as_str)),
            ns: Ns::New,
        }])?;
        let new_ns = new[0].netns();
        let mut joining = Vec::new();
        for c in containers.iter().skip(1) {
            let ns = std::fs::File::open(&new_ns)
                .map_err(|e| Error::io(format!("opening {}", new_ns.display()), e))?;
            joining.push(HolderSpec {
                label: label(c),
                ns: Ns::Join(ns.into()),
            });
        }
        new.extend(spawn_all(joining)?);
        let new_pid = new[0].pid().to_string();
        ip_in(&old_ns, &["link", "set", "eth0", "netns", &new_pid])?;
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", &format!("{ip}/32"), "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
            vec![
                "route",
                "add",
                "169.254.1.1",
                "dev",
                "eth0",
                "scope",
                "link",
            ],
            vec![
                "route",
                "add",
                "default",
                "via",
                "169.254.1.1",
                "dev",
                "eth0",
            ],
        ] {
            ip_in(&new_ns, &args)?;
        }
        if ip != old_ip {
            let cali = crate::calico::host_end_name(&self.namespace, pod);
            let to = |ip: &str| format!("{ip}/32");
            let (new_route, old_route) = (to(&ip), to(&old_ip));
            let routes = [
                [
                    "route", "replace", &new_route, "dev", &cali, "scope", "link",
                ],
                ["route", "del", &old_route, "dev", &cali, "scope", "link"],
            ];
            for args in routes {
                ip_in(&node_ns, &args)?;
            }
            body["status"]["podIP"] = ip.clone().into();
            body["status"]["podIPs"] = json!([{"ip": ip}]);
        }
        let uid = format!(
            "{}-0000-4000-8000-000000000001",
            &hex_id(&format!("{pod} again"))[..8]
        );
        let mut cgroups = self.cgroups.lock().unwrap();
        let statuses = body["status"]["containerStatuses"].as_array_mut();
        for (status, holder) in statuses.into_iter().flatten().zip(&new) {
            let name = status["name"].as_str().unwrap_or_default();
            let id = hex_id(&format!(
                "{}/{pod}/{name}/made again",
                cgroups.root.display()
            ));
            cgroups.put(&format!("kubepods/besteffort/pod{uid}/{id}"), holder.pid())?;
            status["containerID"] = format!("containerd://{id}").into();
        }
        body["metadata"]["uid"] = uid.into();
        let tail = format!(":{pod}/");
        for mut old in holders.extract_if(.., |h| h.label.contains(&tail)) {
            old.kill_and_reap()?;
        }
        holders.extend(new);
        netns.insert(pod.to_string(), new_ns);
        self.serve_again(pod, &served);
        Ok(())
    }

    /// Serves `pod` as it is in `served` from now on, read alone and in the lists of pods (the
    /// run's namespace's and the cluster's), in the order they were first served.
    fn serve_again(&self, pod: &str, served: &BTreeMap<String, Value>) {
        let ns_path = format!("/api/v1/namespaces/{}", self.namespace);
        if let Some(body) = served.get(pod) {
            let key = format!("GET {ns_path}/pods/{pod}");
            self.server.set_route(&key, 200, body.clone());
        }
        let pods: Vec<Value> = (self.order.iter())
            .filter_map(|name| served.get(name).cloned())
            .collect();
        let mut all = calico_node_pods();
        if let Some(items) = all["items"].as_array_mut() {
            items.extend(pods.iter().cloned());
            items.extend(self.others.iter().cloned());
        }
        self.server.set_route("GET /api/v1/pods", 200, all);
        let list = api_list_of("PodList", pods);
        self.server
            .set_route(&format!("GET {ns_path}/pods"), 200, list);
    }

    /// Restarts the container of `pod` as the kubelet does: a new process in the pod's network
    /// namespace (the sandbox's, which stays) and in a new container's cgroup, the old process
    /// killed, and the pod served with the new container ID and one restart more; its IP stays.
    /// For the containers this fake cluster made (`curl-client` of `test-tools-remote`). No
    /// recording shows a restarted container: the fields changed are the recorded pod's own.
    pub fn restart_container(&self, pod: &str) -> Result<()> {
        use crate::lab::holder::{HolderSpec, Ns, spawn_all};
        let mut holders = self.holders.lock().unwrap();
        let tail = format!(":{pod}/curl-client");
        let i = (holders.iter().position(|h| h.label.ends_with(&tail)))
            .ok_or_else(|| Error::Internal(format!("no container of {pod} that the fake made")))?;
        let ns = std::fs::File::open(holders[i].netns())
            .map_err(|e| Error::io(format!("opening {pod}'s namespace"), e))?;
        let label = format!("{} (restarted)", holders[i].label);
        let new = spawn_all(vec![HolderSpec {
            label,
            ns: Ns::Join(ns.into()),
        }])?;
        let mut served = self.served.lock().unwrap();
        let body = served
            .get_mut(pod)
            .ok_or_else(|| Error::Internal(format!("{pod} is not served")))?;
        let uid = body["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let status = &mut body["status"]["containerStatuses"][0];
        let restarts = status["restartCount"].as_u64().unwrap_or(0) + 1;
        let mut cgroups = self.cgroups.lock().unwrap();
        let id = hex_id(&format!(
            "{}/{pod}/restart {restarts}",
            cgroups.root.display()
        ));
        cgroups.put(&format!("kubepods/besteffort/pod{uid}/{id}"), new[0].pid())?;
        status["containerID"] = format!("containerd://{id}").into();
        status["restartCount"] = restarts.into();
        let mut old = std::mem::replace(&mut holders[i], new.into_iter().next().unwrap());
        old.kill_and_reap()?;
        self.serve_again(pod, &served);
        Ok(())
    }
}

/// `ip <args>` in the network namespace `ns` (a `/proc/<pid>/ns/net` path), through nsenter.
fn ip_in(ns: &Path, args: &[&str]) -> Result<()> {
    let mut argv = vec![format!("--net={}", ns.display()), "--".into(), "ip".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = std::process::Command::new("nsenter")
        .args(&argv)
        .output()
        .map_err(|e| Error::io("running nsenter", e))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(Error::Internal(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

/// A hex ID of 64 characters (a containerd container ID's shape), unique for `seed`.
fn hex_id(seed: &str) -> String {
    let a = Sha1::digest(seed.as_bytes());
    let b = Sha1::digest(format!("{seed}/2").as_bytes());
    let hex = |d: &[u8]| d.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}{}", hex(&a), &hex(&b)[..24])
}

/// The PID in a `/proc/<pid>/ns/net` path.
fn pid_of(netns: &Path) -> Result<u32> {
    netns
        .strip_prefix("/proc")
        .ok()
        .and_then(|rest| rest.iter().next())
        .and_then(|pid| pid.to_str()?.parse().ok())
        .ok_or_else(|| Error::Internal(format!("{}: not /proc/<pid>/ns/net", netns.display())))
}

/// A lab pod as the API returns it: the recorded pod of the same role with the lab's values.
fn article_pod(
    topology: &Topology,
    p: &crate::topology::TopologyPod,
    namespace: &str,
    cgroups: &mut Cgroups,
) -> Result<Value> {
    let file = if p.name == manifests::C2C_POD {
        "kube/pod-c2c-network-demo.json"
    } else {
        "kube/pod-test-tools.json"
    };
    let mut pod = recorded(file);
    let node = topology
        .nodes
        .iter()
        .find(|n| n.name == p.node)
        .ok_or_else(|| Error::Internal(format!("pod {} on unknown node {}", p.name, p.node)))?;
    let uid = format!(
        "{}-{}",
        &hex_id(&format!("{namespace}/{}", p.name))[..8],
        "0000-4000-8000-000000000000"
    );
    pod["metadata"]["name"] = p.name.clone().into();
    pod["metadata"]["namespace"] = namespace.into();
    pod["metadata"]["uid"] = uid.clone().into();
    pod["spec"]["nodeName"] = p.node.clone().into();
    pod["status"]["podIP"] = p.ip.to_string().into();
    pod["status"]["podIPs"] = json!([{"ip": p.ip.to_string()}]);
    pod["status"]["hostIP"] = node.address.to_string().into();
    pod["status"]["hostIPs"] = json!([{"ip": node.address.to_string()}]);
    let statuses = pod["status"]["containerStatuses"]
        .as_array_mut()
        .ok_or_else(|| Error::Internal(format!("{file}: no containerStatuses")))?;
    if statuses.len() != p.containers.len() {
        return Err(Error::Internal(format!(
            "{file} has {} containers, lab pod {} has {}",
            statuses.len(),
            p.name,
            p.containers.len()
        )));
    }
    for s in statuses.iter_mut() {
        let name = s["name"].as_str().unwrap_or_default().to_string();
        let netns = p.containers.get(&name).ok_or_else(|| {
            Error::Internal(format!("lab pod {} has no container {name}", p.name))
        })?;
        let id = hex_id(&format!(
            "{}/{namespace}/{}/{name}",
            cgroups.root.display(),
            p.name
        ));
        cgroups.put(
            &format!("kubepods/besteffort/pod{uid}/{id}"),
            pid_of(netns)?,
        )?;
        s["containerID"] = format!("containerd://{id}").into();
    }
    Ok(pod)
}

/// Pod `name` on `node` as one that never starts: the recorded pod that could not pull its
/// image (`ErrImagePull`), so named and placed.
fn not_starting(name: &str, node: &str, namespace: &str) -> Value {
    let mut pod = recorded("kube/pod-image-pull-failure.json");
    pod["metadata"]["name"] = name.into();
    pod["metadata"]["namespace"] = namespace.into();
    pod["spec"]["nodeName"] = node.into();
    pod
}

/// A user's pod on lab node `n` named as one of the run's: the recorded `test-tools` pod in
/// namespace `default`, with an IP of the node's first block (its 61st address).
fn user_pod(n: &crate::topology::TopologyNode) -> Value {
    let mut pod = recorded("kube/pod-test-tools.json");
    let ip = (n.blocks.first().and_then(|b| b.hosts().nth(60)))
        .map_or(String::new(), |ip| ip.to_string());
    pod["metadata"]["namespace"] = "default".into();
    pod["metadata"]["uid"] = hex_id(&format!("default/test-tools/{}", n.name))[..36]
        .to_string()
        .into();
    pod["spec"]["nodeName"] = n.name.clone().into();
    pod["status"]["podIP"] = ip.clone().into();
    pod["status"]["podIPs"] = json!([{ "ip": ip }]);
    pod["status"]["hostIP"] = n.address.to_string().into();
    pod
}

/// The node probe on lab node `n`: the recorded `test-tools` pod, host network, Running.
fn probe_pod(n: &crate::topology::TopologyNode, namespace: &str) -> Value {
    let mut pod = recorded("kube/pod-test-tools.json");
    let name = manifests::probe_name(&n.name);
    pod["metadata"]["name"] = name.clone().into();
    pod["metadata"]["namespace"] = namespace.into();
    pod["metadata"]["uid"] = hex_id(&format!("{namespace}/{name}"))[..36]
        .to_string()
        .into();
    pod["spec"]["nodeName"] = n.name.clone().into();
    pod["spec"]["hostNetwork"] = true.into();
    pod["spec"]["hostPID"] = true.into();
    pod["status"]["podIP"] = n.address.to_string().into();
    pod["status"]["podIPs"] = json!([{"ip": n.address.to_string()}]);
    pod["status"]["hostIP"] = n.address.to_string().into();
    if let Some(s) = pod["status"]["containerStatuses"].get_mut(0) {
        s["name"] = super::place::PROBE_CONTAINER.into();
        s["containerID"] = format!("containerd://{}", hex_id(&name)).into();
    }
    pod
}

/// `node`'s Ready condition as the node lifecycle controller leaves it for a silent kubelet.
fn unknown_ready(node: &mut Value) {
    for c in node["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if c["type"] == "Ready" {
            c["status"] = "Unknown".into();
            c["reason"] = "NodeStatusUnknown".into();
            c["message"] = "Kubelet stopped posting node status.".into();
        }
    }
}

/// The recorded node, named and addressed as lab node `n`.
fn node(n: &crate::topology::TopologyNode) -> Value {
    let mut node = recorded("kube/node-k8s-worker-1.json");
    node["metadata"]["name"] = n.name.clone().into();
    if let Some(labels) = node["metadata"]["labels"].as_object_mut() {
        labels.insert("kubernetes.io/hostname".into(), n.name.clone().into());
    }
    node["status"]["addresses"] = json!([
        {"address": n.address.to_string(), "type": "InternalIP"},
        {"address": n.name, "type": "Hostname"},
    ]);
    node
}

/// Calico's v1 objects for the lab: its pool and its nodes' blocks.
fn calico_routes(topology: &Topology) -> Vec<(String, u16, Value)> {
    let template = api_list("ippools-ipip.json")["items"][0].clone();
    let pools: Vec<Value> = topology
        .pools
        .iter()
        .map(|p| {
            let mut pool = template.clone();
            let (ipip, vxlan) = match p.encapsulation {
                Encapsulation::Ipip => ("Always", "Never"),
                Encapsulation::IpipCrossSubnet => ("CrossSubnet", "Never"),
                Encapsulation::Vxlan => ("Never", "Always"),
                Encapsulation::VxlanCrossSubnet => ("Never", "CrossSubnet"),
                Encapsulation::None => ("Never", "Never"),
            };
            pool["spec"]["cidr"] = p.cidr.to_string().into();
            pool["spec"]["blockSize"] = p.block_size.into();
            pool["spec"]["ipipMode"] = ipip.into();
            pool["spec"]["vxlanMode"] = vxlan.into();
            pool
        })
        .collect();
    let affinity = api_list("blockaffinities.json")["items"][0].clone();
    let affinities: Vec<Value> = topology
        .nodes
        .iter()
        .flat_map(|n| n.blocks.iter().map(move |b| (n.name.clone(), *b)))
        .map(|(node, block)| {
            let mut a = affinity.clone();
            let cidr = block.to_string();
            a["metadata"]["name"] = format!("{node}-{}", cidr.replace(['.', '/'], "-")).into();
            a["spec"]["cidr"] = cidr.into();
            a["spec"]["node"] = node.into();
            a
        })
        .collect();
    let v1 = "/apis/crd.projectcalico.org/v1";
    vec![
        (
            format!("GET {v1}/clusterinformations"),
            200,
            api_list("clusterinformation-default.json"),
        ),
        (
            format!("GET {v1}/ippools"),
            200,
            api_list_of("IPPoolList", pools),
        ),
        (
            format!("GET {v1}/blockaffinities"),
            200,
            api_list_of("BlockAffinityList", affinities),
        ),
    ]
}

fn routes(
    topology: &Topology,
    namespace: &str,
    pods: &[Value],
    install: Install,
) -> Vec<(String, u16, Value)> {
    let ns_path = format!("/api/v1/namespaces/{namespace}");
    let ns = namespace_json(namespace, "2026-12-01T00:00:00Z", "u-fake-cluster");
    let mut all_pods = calico_node_pods();
    all_pods["items"]
        .as_array_mut()
        .unwrap()
        .extend(pods.iter().cloned());
    let events: Vec<Value> = pods
        .iter()
        .map(|p| json!({"type": "MODIFIED", "object": p}))
        .collect();
    let mut routes = vec![
        ("GET /api/v1/pods".to_string(), 200, all_pods),
        (
            "GET /api/v1/nodes".to_string(),
            200,
            api_list_of("NodeList", topology.nodes.iter().map(node).collect()),
        ),
        (
            "GET /api/v1/namespaces".to_string(),
            200,
            api_list_of("NamespaceList", vec![]),
        ),
        (format!("PATCH {ns_path}"), 200, ns.clone()),
        (format!("DELETE {ns_path}"), 200, ns),
        (
            format!("GET {ns_path}/pods"),
            200,
            api_list_of("PodList", pods.to_vec()),
        ),
        (format!("WATCH {ns_path}/pods"), 200, json!(events)),
        (
            format!("DELETE {ns_path}/pods"),
            200,
            api_list_of("PodList", pods.to_vec()),
        ),
    ];
    for p in pods {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        routes.push((format!("PATCH {ns_path}/pods/{name}"), 200, p.clone()));
        routes.push((format!("GET {ns_path}/pods/{name}"), 200, p.clone()));
    }
    routes.extend(calico_routes(topology));
    if install == Install::OperatorWithoutInstallation {
        // Serves the group: a GET of `default` is then the recorded NotFound.
        routes.push((
            "GET /apis/operator.tigera.io/v1/installations".into(),
            200,
            api_list_of("InstallationList", vec![]),
        ));
    }
    routes
}

/// Cgroup directories made under the first writable of [`CGROUP_HIERARCHIES`], removed (their
/// processes moved back to the hierarchy's root) when dropped.
struct Cgroups {
    /// The hierarchy's root.
    base: PathBuf,
    root: PathBuf,
    /// Made directories, parents first.
    made: Vec<PathBuf>,
    moved: Vec<u32>,
}

impl Cgroups {
    fn new(root: &str) -> Result<Self> {
        let writable = |base: &Path| {
            std::fs::metadata(base.join("cgroup.procs")).is_ok()
                && nix::unistd::access(base, nix::unistd::AccessFlags::W_OK).is_ok()
        };
        let Some(base) = CGROUP_HIERARCHIES
            .iter()
            .map(Path::new)
            .find(|b| writable(b))
        else {
            return Err(Error::Preflight(format!(
                "the fake cluster puts its containers into cgroup directories named like the \
                 kubelet's (cgroupfs driver), but none of {} is a writable cgroup hierarchy here",
                CGROUP_HIERARCHIES.join(", ")
            )));
        };
        Ok(Cgroups {
            base: base.to_path_buf(),
            root: base.join(root),
            made: Vec::new(),
            moved: Vec::new(),
        })
    }

    /// Makes `<root>/<rel>` and moves `pid` into it.
    fn put(&mut self, rel: &str, pid: u32) -> Result<()> {
        let mut dir = self.root.clone();
        for part in std::iter::once("").chain(rel.split('/')) {
            if !part.is_empty() {
                dir.push(part);
            }
            if !self.made.contains(&dir) {
                match std::fs::create_dir(&dir) {
                    Ok(()) => self.made.push(dir.clone()),
                    Err(e) => {
                        return Err(Error::io(format!("making cgroup {}", dir.display()), e));
                    }
                }
            }
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| Error::io(format!("moving {pid} into cgroup {}", dir.display()), e))?;
        self.moved.push(pid);
        Ok(())
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let root_procs = self.base.join("cgroup.procs");
        for pid in &self.moved {
            // A holder that already exited is not there to move.
            let _ = std::fs::write(&root_procs, pid.to_string());
        }
        for dir in self.made.iter().rev() {
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("fake cluster: removing cgroup {}: {e}", dir.display());
            }
        }
    }
}
