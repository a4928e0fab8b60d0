//! The lab target: the article's cluster rebuilt on this machine, in network namespaces, wired
//! the way Calico's CNI plugin and Felix wire a node.
//!
//! What [`Lab::build`] makes (for [`LabSpec::article`]):
//!
//! - nodes `k8s-worker-1` (10.12.22.2/16) and `k8s-worker-2` (10.12.22.3/16), each a network
//!   namespace, joined by a veth named `ens192` at both ends (MTU 1500), `ip_forward=1`;
//! - pods `default/c2c-network-demo` (192.168.1.10, containers `hello-world-server` and
//!   `curl-client`) and `default/test-tools` (192.168.1.12, container `curl-client`) on
//!   worker-1, `default/test-tools-remote` (192.168.2.12) on worker-2, each a namespace;
//! - per pod, a veth made inside the node's namespace with its peer created straight into the
//!   pod's: host end `cali` + sha1("<namespace>.<pod>")[:11], MAC ee:ee:ee:ee:ee:ee, UP, no
//!   address, `proxy_arp=1`, `neigh proxy_delay=0`, `forwarding=1`, `route_localnet=1`,
//!   `rp_filter` = the node's `conf/default/rp_filter` (pinned to 0 as on the recorded node,
//!   [`NODE_RP_FILTER`]), IPv6 `accept_ra=0` (what Felix's endpoint manager writes), one TX
//!   and one RX queue (see [`wire`]); pod end `eth0` with `<podIP>/32`,
//!   `169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1 dev eth0`;
//! - on the node: `<podIP>/32 dev <cali> scope link` per pod, `blackhole <block>` per affine
//!   /26 block (worker-1 192.168.1.0/26, worker-2 192.168.2.0/26, pool 192.168.0.0/16);
//! - between nodes, per encapsulation: none — `<remote block> via <remote node> dev ens192`;
//!   VXLAN — Felix's `vxlan.calico` (VNI 4096, port 4789, local = node address, dev ens192,
//!   no learning, MTU 1450, MAC `66` + sha1(node name)[:5] as Felix computes it, tunnel address
//!   = first address of the node's block, /32), `<remote block> via <remote tunnel address>
//!   dev vxlan.calico onlink`, a permanent neighbour `<remote tunnel address> lladdr <remote
//!   MAC>` and an FDB entry `<remote MAC> dst <remote node>`; IPIP — `tunl0` (needs the ipip
//!   module; this kernel lacks it, so only its plan is tested here). Pod MTU: 1500, 1450
//!   VXLAN, 1480 IPIP.
//!
//! Lifecycle: no namespace is bind-mounted. Each node and pod namespace is held by an open
//! descriptor of this process (see [`holder::HeldNs`]); a pod's is handed out as
//! `/proc/<pid>/fd/<n>`, a node's as `/proc/<tid>/ns/net` of a thread of this process parked
//! in it ([`holder::Anchor`]: `ip link set … netns` wants an id). Each pod "container" is a
//! `cat` process inside its pod's namespace (see [`holder`]). The descriptors close, the
//! threads end and the container processes exit when this process ends in any way, SIGKILL
//! included, and the namespaces — with every veth, address and route in them — vanish. Namespaces are anonymous, so two runs never collide; container holders carry the
//! run id in their `argv[0]` (`calico-lab:<run id>:<what>`) so `ps` shows whose they are.
//! Nothing is ever added to the caller's own network namespace.
//!
//! The parts: [`plan`] says what a lab is and which requests make it, computed from the
//! [`LabSpec`] alone (tested without root); [`wire`] sends those requests in the lab's
//! namespaces; [`holder`] makes and keeps the namespaces and container processes; [`netlink`]
//! moves the messages; [`preflight`] says in one line why a lab cannot run here.
//!
//! The lab emulates Calico's dataplane so the suite can be developed and can prove each claim
//! test able to fail; verdicts about Calico come from a real cluster.

pub mod holder;
pub mod netlink;
pub mod plan;
pub mod preflight;
mod wire;

#[cfg(test)]
mod tests;

pub use plan::{
    BLOCK_SIZE, LabSpec, NODE_RP_FILTER, POD_NAMESPACE, POOL_CIDR, UNDERLAY, UNDERLAY_GATEWAY,
    UNDERLAY_MTU, UNDERLAY_PREFIX, felix_vxlan_mac,
};

use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::topology::{Topology, TopologyNode, TopologyPod, TopologyPool};
use holder::{Anchor, HeldNs, Holder, HolderSpec, Ns};
use plan::Plan;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The article's cluster, running in network namespaces on this machine.
///
/// Built by [`Lab::build`]; torn down by [`Lab::teardown`] or when dropped (and, whatever
/// happens to this process, when it ends).
pub struct Lab {
    /// What was built, in the topology-file form: pods' namespaces as
    /// `/proc/<this pid>/fd/<n>`, nodes' as `/proc/<anchor thread id>/ns/net` (see
    /// [`holder::Anchor`]), containers' as `/proc/<holder pid>/ns/net`.
    pub topology: Topology,
    /// The run id every holder's name carries.
    pub run_id: String,
    /// What was asked for.
    pub spec: LabSpec,
    /// Nodes, then pods: namespaces held by descriptors of this process.
    namespaces: Vec<HeldNs>,
    /// One parked thread per node, which gives the node a `/proc/<tid>/ns/net` path.
    anchors: Vec<Anchor>,
    /// One process per pod container.
    holders: Vec<Holder>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("run_id", &self.run_id)
            .field("spec", &self.spec)
            .field("namespaces", &self.namespaces)
            .field("holders", &self.holder_pids())
            .finish()
    }
}

impl Lab {
    /// Builds the lab on tokio's blocking pool (the work is blocking system calls); needs a
    /// tokio runtime, multi-thread or current-thread. On error everything already made is torn
    /// down before returning. Without a runtime, use [`Lab::build_blocking`].
    pub async fn build(spec: &LabSpec, run_id: &str) -> Result<Lab> {
        let (spec, run_id) = (spec.clone(), run_id.to_string());
        tokio::task::spawn_blocking(move || Lab::build_blocking(&spec, &run_id))
            .await
            .map_err(|e| Error::Internal(format!("the lab build task failed: {e}")))?
    }

    /// Builds the lab on the calling thread, synchronously (no runtime needed). On error
    /// everything already made is torn down before returning.
    pub fn build_blocking(spec: &LabSpec, run_id: &str) -> Result<Lab> {
        preflight::check_ipip_module(spec)?;
        let plan = Plan::new(spec)?;
        let t0 = std::time::Instant::now();
        let mark = |what: &str| {
            tracing::debug!(run_id, elapsed = ?t0.elapsed(), "lab build: {what}");
        };
        let mut lab = Lab {
            topology: Topology {
                pools: vec![],
                nodes: vec![],
                pods: vec![],
                lists_every_workload: true,
            },
            run_id: run_id.to_string(),
            spec: spec.clone(),
            namespaces: Vec::new(),
            anchors: Vec::new(),
            holders: Vec::new(),
        };

        // 1. One namespace per node and per pod, held by a descriptor, made concurrently.
        lab.namespaces = holder::new_namespaces(namespace_labels(&plan, run_id))?;
        mark("namespaces made");
        let n_nodes = plan.nodes.len();
        lab.anchors = lab.namespaces[..n_nodes]
            .iter()
            .map(Anchor::new)
            .collect::<Result<_>>()?;
        let n_pods = plan.pods.len();
        let node_ns = dup_all(&lab.namespaces[..n_nodes])?;
        let pod_ns = dup_all(&lab.namespaces[n_nodes..n_nodes + n_pods])?;
        // More than two nodes: the switch's namespace comes last.
        let switch_ns = dup_all(&lab.namespaces[n_nodes + n_pods..])?;

        // 2. Container holders join their pods' namespaces (concurrently with the wiring).
        let (container_specs, container_of) = container_specs(&plan, &pod_ns, run_id)?;
        let containers = std::thread::Builder::new()
            .name("lab-containers".into())
            .spawn(move || holder::spawn_all(container_specs))
            .map_err(|e| Error::io("starting the container-holder thread", e))?;

        // 3. Wire the nodes (each from a thread inside its namespace), then the pods.
        mark("container holders started");
        let wired = wire::wire(&plan, &node_ns, &pod_ns, switch_ns.first(), &mark);
        let containers = containers
            .join()
            .map_err(|_| Error::Internal("the container-holder thread panicked".into()))?;
        lab.holders.extend(containers?);
        wired?;
        mark("containers joined");

        // 4. Describe it.
        lab.topology = lab.describe(&plan, &container_of);
        Ok(lab)
    }

    /// What was built, in the topology-file form. `container_of` names each holder's pod
    /// (by index) and container.
    fn describe(&self, plan: &Plan, container_of: &[(usize, &'static str)]) -> Topology {
        let n_nodes = plan.nodes.len();
        let nodes = plan.nodes.iter().zip(&self.anchors);
        let pods = plan.pods.iter().zip(&self.namespaces[n_nodes..]);
        Topology {
            pools: std::iter::once(TopologyPool {
                cidr: POOL_CIDR.into(),
                block_size: BLOCK_SIZE,
                encapsulation: plan.spec.encapsulation,
            })
            .chain(plan.spec.dual_stack.then_some(TopologyPool {
                cidr: plan::IPV6_POOL_CIDR.into(),
                block_size: plan::IPV6_BLOCK_SIZE,
                encapsulation: plan.spec.encapsulation,
            }))
            .collect(),
            nodes: nodes
                .map(|(n, anchor)| TopologyNode {
                    name: n.name.clone(),
                    netns: anchor.netns(),
                    address: n.address,
                    underlay: UNDERLAY.to_string(),
                    blocks: n.blocks.clone(),
                    vxlan_tunnel_address: n.tunnel.filter(|_| plan.spec.uses_vxlan()),
                    ipv6_address: n.ipv6,
                    ipv6_blocks: n.ipv6_blocks.clone(),
                    vxlan_v6_tunnel_address: n.tunnel6,
                })
                .collect(),
            pods: pods
                .enumerate()
                .map(|(i, (p, ns))| {
                    let containers: BTreeMap<String, PathBuf> = container_of
                        .iter()
                        .zip(&self.holders)
                        .filter(|((pod, _), _)| *pod == i)
                        .map(|((_, c), h)| (c.to_string(), h.netns()))
                        .collect();
                    TopologyPod {
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                        node: plan.nodes[p.node].name.clone(),
                        netns: ns.path(),
                        ip: p.ip,
                        ipv6: p.ipv6,
                        containers,
                    }
                })
                .collect(),
            // The lab knows every pod it built: its file lists every workload.
            lists_every_workload: true,
        }
    }

    /// Writes [`Lab::topology`] as a topology file, so a `topology:<file>` run can attach to
    /// this lab while it lives.
    pub fn write_topology(&self, path: &Path) -> Result<()> {
        self.topology.save(path)
    }

    /// The facts the lab states (what it built, plus its MTU and whether the ipip module
    /// exists here).
    pub fn facts(&self) -> Facts {
        let mut facts = self.topology.facts(format!(
            "lab ({}{})",
            self.spec.encapsulation.as_str(),
            if self.spec.dual_stack {
                ", dual stack"
            } else {
                ""
            }
        ));
        facts.configured_mtu = Some(self.spec.pod_mtu());
        facts.ipip_module = Some(Path::new("/sys/module/ipip").exists());
        for n in &mut facts.nodes {
            n.underlay_prefix = Some(UNDERLAY_PREFIX);
            if self.spec.uses_ipip() {
                n.ipip_tunnel_address = n.blocks.first().map(|b| b.network());
            }
        }
        facts
    }

    /// Process ids of the container holders, for diagnostics and tests.
    pub fn holder_pids(&self) -> Vec<u32> {
        self.holders.iter().map(Holder::pid).collect()
    }

    /// The nsfs inode numbers of the node and pod namespaces (nodes first), for diagnostics
    /// and tests: `/proc/PID/ns/net` of a process in one of them reads `net:[<inode>]`.
    pub fn namespace_inodes(&self) -> Result<Vec<u64>> {
        self.namespaces.iter().map(HeldNs::inode).collect()
    }

    /// Kills and reaps every container holder, ends the nodes' anchor threads, then closes
    /// the node and pod namespaces' descriptors (pods first, nodes last). The namespaces, and all links in them, go with
    /// their last reference; the kernel frees them in the background. Takes milliseconds
    /// (SIGKILL then `waitpid` per container holder), so it runs inline.
    pub async fn teardown(self) -> Result<()> {
        self.teardown_blocking()
    }

    /// [`Lab::teardown`] without a runtime.
    pub fn teardown_blocking(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(mut h) = self.holders.pop() {
            if let Err(e) = h.kill_and_reap() {
                first_error.get_or_insert(e);
            }
        }
        self.anchors.clear();
        while let Some(ns) = self.namespaces.pop() {
            drop(ns);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `calico-lab:<run id>:<what>`: what the holder of a namespace or container is called.
fn label(run_id: &str, what: &str) -> String {
    format!("calico-lab:{run_id}:{what}")
}

/// One label per namespace: the nodes', then the pods'.
fn namespace_labels(plan: &Plan, run_id: &str) -> Vec<String> {
    let nodes = plan.nodes.iter().map(|n| format!("node:{}", n.name));
    let pods = plan
        .pods
        .iter()
        .map(|p| format!("pod:{}/{}", p.namespace, p.name));
    let switch = plan.uses_switch().then(|| "switch".to_string());
    (nodes.chain(pods).chain(switch))
        .map(|what| label(run_id, &what))
        .collect()
}

fn dup_all(held: &[HeldNs]) -> Result<Vec<File>> {
    held.iter()
        .map(|h| {
            h.file()
                .try_clone()
                .map_err(|e| Error::io("duplicating a namespace descriptor", e))
        })
        .collect()
}

/// A holder per pod container, joining the pod's namespace; beside each, its pod's index and
/// the container's name.
type Containers = (Vec<HolderSpec>, Vec<(usize, &'static str)>);

fn container_specs(plan: &Plan, pod_ns: &[File], run_id: &str) -> Result<Containers> {
    let mut specs = Vec::new();
    let mut container_of = Vec::new();
    for ((i, p), ns) in plan.pods.iter().enumerate().zip(pod_ns) {
        for c in &p.containers {
            let fd: OwnedFd = ns
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io("duplicating a namespace descriptor", e))?;
            specs.push(HolderSpec {
                label: label(run_id, &format!("container:{}/{}/{c}", p.namespace, p.name)),
                ns: Ns::Join(fd),
            });
            container_of.push((i, *c));
        }
    }
    Ok((specs, container_of))
}
