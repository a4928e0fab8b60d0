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
//!   and one RX queue (see [`veth`]); pod end `eth0` with `<podIP>/32`,
//!   `169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1 dev eth0`;
//! - on the node: `<podIP>/32 dev <cali> scope link` per pod, `blackhole <block>` per affine
//!   /26 block (worker-1 192.168.1.0/26, worker-2 192.168.2.0/26, pool 192.168.0.0/16);
//! - between nodes, per encapsulation: none — `<remote block> via <remote node> dev ens192`;
//!   VXLAN — Felix's `vxlan.calico` (VNI 4096, port 4789, local = node address, dev ens192,
//!   no learning, MTU 1450, MAC `66` + sha1(node name)[:5] as Felix computes it, tunnel address
//!   = first address of the node's block, /32), `<remote block> via <remote tunnel address>
//!   dev vxlan.calico onlink`, a permanent neighbour `<remote tunnel address> lladdr <remote
//!   MAC>` and an FDB entry `<remote MAC> dst <remote node>`; IPIP — `tunl0` (needs the ipip
//!   module; untested here, this kernel lacks it). Pod MTU: 1500, 1450 VXLAN, 1480 IPIP.
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
//! The lab emulates Calico's dataplane so the suite can be developed and can prove each claim
//! test able to fail; verdicts about Calico come from a real cluster.

pub mod holder;
pub mod netlink;
pub mod preflight;

#[cfg(test)]
mod tests;

use crate::calico::{HOST_END_MAC, LINK_LOCAL_GATEWAY, VXLAN_DEVICE, VXLAN_PORT, VXLAN_VNI};
use crate::error::{Error, Result};
use crate::facts::{Encapsulation, Facts};
use crate::topology::{Topology, TopologyNode, TopologyPod, TopologyPool};
use holder::{Anchor, HeldNs, Holder, HolderSpec, Ns};
use ipnet::Ipv4Net;
use netlink::{CHANGE, CREATE, CREATE_OR_REPLACE, Request, Rtnl};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteProtocol, RouteScope, RouteType};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{AddressMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// The lab's IP pool (the article's).
pub const POOL_CIDR: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16) {
    Ok(n) => n,
    Err(_) => panic!("constant pool CIDR"),
};
/// Calico's default IPAM block size.
pub const BLOCK_SIZE: u8 = 26;
/// The underlay's default gateway, as in the article (`default via 10.12.0.1 dev ens192`).
pub const UNDERLAY_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 12, 0, 1);
/// The underlay interface name in every node namespace.
pub const UNDERLAY: &str = "ens192";
/// The underlay MTU.
pub const UNDERLAY_MTU: u32 = 1500;
/// Prefix length of the underlay subnet (10.12.0.0/16 in the article).
pub const UNDERLAY_PREFIX: u8 = 16;
/// The namespace (Kubernetes namespace) of every lab pod.
pub const POD_NAMESPACE: &str = "default";
/// The node's reverse-path filter (`conf/all` and `conf/default`), which Felix copies to each
/// host end: 0, as on the recorded node (`recorded/node/sysctl-calied9d42cb137.txt`). Strict
/// (1), as older Felix releases wrote, would make the proxy ARP reply depend on the host route
/// back to the pod: the kernel validates the ARP sender's address like a packet's source.
pub const NODE_RP_FILTER: &str = "0";
/// Route protocol number Felix gives the routes it programs (`proto 80`).
const PROTO_FELIX: u8 = 80;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// How the pool carries traffic between nodes: `None`, `Vxlan` (or `VxlanCrossSubnet`,
    /// which between these nodes of one subnet routes like `None` over a `vxlan.calico` that
    /// exists), `Ipip` (needs the ipip kernel module; the preflight says when it is missing).
    pub encapsulation: Encapsulation,
    /// Extra pods per node, `bench-0`, `bench-1`, ..., with further addresses from the
    /// node's /24 (in as many /26 blocks as they need). 0 for the article; the bench uses more.
    pub extra_pods_per_node: usize,
    /// 1 or 2 nodes (2 for the article; the bench uses 1). With one node, `ens192` is a veth
    /// whose other end (`ens192-wire`) stays in the same namespace.
    pub nodes: usize,
}

impl LabSpec {
    /// The article's cluster: two nodes, its three pods, no extra pods.
    pub fn article(encapsulation: Encapsulation) -> Self {
        LabSpec {
            encapsulation,
            extra_pods_per_node: 0,
            nodes: 2,
        }
    }

    /// The pod MTU for this spec.
    pub fn pod_mtu(&self) -> u32 {
        self.encapsulation.pod_mtu(UNDERLAY_MTU)
    }

    fn uses_vxlan(&self) -> bool {
        matches!(
            self.encapsulation,
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet
        )
    }

    fn uses_ipip(&self) -> bool {
        matches!(
            self.encapsulation,
            Encapsulation::Ipip | Encapsulation::IpipCrossSubnet
        )
    }
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec::article(Encapsulation::None)
    }
}

/// One node as planned.
#[derive(Debug, Clone)]
struct NodePlan {
    name: String,
    address: Ipv4Addr,
    blocks: Vec<Ipv4Net>,
    tunnel: Option<Ipv4Addr>,
    vxlan_mac: [u8; 6],
}

/// One pod as planned.
#[derive(Debug, Clone)]
struct PodPlan {
    name: String,
    node: usize,
    ip: Ipv4Addr,
    host_end: String,
    containers: Vec<&'static str>,
}

/// Felix's VXLAN MAC for a node without a configured one: `0x66` ('f') + sha1(name)[0..5].
pub fn felix_vxlan_mac(node: &str) -> [u8; 6] {
    let sha = Sha1::digest(node.as_bytes());
    [b'f', sha[0], sha[1], sha[2], sha[3], sha[4]]
}

fn plan(spec: &LabSpec) -> Result<(Vec<NodePlan>, Vec<PodPlan>)> {
    if !(1..=2).contains(&spec.nodes) {
        return Err(Error::Preflight(format!(
            "the lab builds 1 or 2 nodes, not {}",
            spec.nodes
        )));
    }
    let article: [(&str, usize, Ipv4Addr, &[&'static str]); 3] = [
        (
            "c2c-network-demo",
            0,
            Ipv4Addr::new(192, 168, 1, 10),
            &["hello-world-server", "curl-client"],
        ),
        (
            "test-tools",
            0,
            Ipv4Addr::new(192, 168, 1, 12),
            &["curl-client"],
        ),
        ("test-tools-remote", 1, Ipv4Addr::new(192, 168, 2, 12), &[]),
    ];
    let tunnelled = spec.uses_vxlan() || spec.uses_ipip();
    let mut nodes = Vec::new();
    let mut pods = Vec::new();
    for n in 0..spec.nodes {
        let third = (n + 1) as u8;
        let name = format!("k8s-worker-{}", n + 1);
        let mut used: BTreeSet<u8> = BTreeSet::new();
        let tunnel = tunnelled.then(|| {
            used.insert(0);
            Ipv4Addr::new(192, 168, third, 0)
        });
        for (pod, node, ip, containers) in article {
            if node == n {
                used.insert(ip.octets()[3]);
                pods.push(PodPlan {
                    name: pod.to_string(),
                    node: n,
                    ip,
                    host_end: crate::calico::host_end_name(POD_NAMESPACE, pod),
                    containers: containers.to_vec(),
                });
            }
        }
        let free: Vec<u8> = (0..=255u8).filter(|o| !used.contains(o)).collect();
        if spec.extra_pods_per_node > free.len() {
            return Err(Error::Preflight(format!(
                "the lab fits at most {} extra pods per node (one /24 of /26 blocks), not {}",
                free.len(),
                spec.extra_pods_per_node
            )));
        }
        for (i, last) in free.iter().take(spec.extra_pods_per_node).enumerate() {
            used.insert(*last);
            let pod = format!("bench-{i}");
            pods.push(PodPlan {
                host_end: crate::calico::host_end_name(POD_NAMESPACE, &pod),
                name: pod,
                node: n,
                ip: Ipv4Addr::new(192, 168, third, *last),
                containers: Vec::new(),
            });
        }
        // The node's blocks: its first /26, and every /26 a pod landed in.
        let mut block_bases: BTreeSet<u8> = BTreeSet::from([0]);
        block_bases.extend(used.iter().map(|o| o & 0xc0));
        let blocks = block_bases
            .into_iter()
            .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(192, 168, third, b), BLOCK_SIZE).ok())
            .collect();
        nodes.push(NodePlan {
            vxlan_mac: felix_vxlan_mac(&name),
            name,
            address: Ipv4Addr::new(10, 12, 22, (n + 2) as u8),
            blocks,
            tunnel,
        });
    }
    Ok((nodes, pods))
}

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
            .map_err(|e| Error::Preflight(format!("the lab build task failed: {e}")))?
    }

    /// Builds the lab on the calling thread, synchronously (no runtime needed). On error
    /// everything already made is torn down before returning.
    pub fn build_blocking(spec: &LabSpec, run_id: &str) -> Result<Lab> {
        if spec.uses_ipip() && !Path::new("/sys/module/ipip").exists() {
            return Err(Error::Preflight(preflight::IPIP_MISSING.to_string()));
        }
        let (nodes, pods) = plan(spec)?;
        let t0 = std::time::Instant::now();
        let mark = |what: &str| {
            tracing::debug!(run_id, elapsed = ?t0.elapsed(), "lab build: {what}");
        };
        let mut lab = Lab {
            topology: Topology {
                pools: vec![],
                nodes: vec![],
                pods: vec![],
            },
            run_id: run_id.to_string(),
            spec: spec.clone(),
            namespaces: Vec::new(),
            anchors: Vec::new(),
            holders: Vec::new(),
        };
        let label = |what: &str| format!("calico-lab:{run_id}:{what}");

        // 1. One namespace per node and per pod, held by a descriptor, made concurrently.
        let labels = nodes
            .iter()
            .map(|n| label(&format!("node:{}", n.name)))
            .chain(
                pods.iter()
                    .map(|p| label(&format!("pod:{POD_NAMESPACE}/{}", p.name))),
            )
            .collect();
        lab.namespaces = holder::new_namespaces(labels)?;
        mark("namespaces made");
        lab.anchors = lab.namespaces[..nodes.len()]
            .iter()
            .map(Anchor::new)
            .collect::<Result<_>>()?;
        let dup = |h: &HeldNs| {
            h.file()
                .try_clone()
                .map_err(|e| Error::io("duplicating a namespace descriptor", e))
        };
        let node_ns: Vec<File> = lab.namespaces[..nodes.len()]
            .iter()
            .map(dup)
            .collect::<Result<_>>()?;
        let pod_ns: Vec<File> = lab.namespaces[nodes.len()..]
            .iter()
            .map(dup)
            .collect::<Result<_>>()?;

        // 2. Container holders join their pods' namespaces (concurrently with the wiring).
        let mut container_specs = Vec::new();
        let mut container_of = Vec::new();
        for (i, p) in pods.iter().enumerate() {
            for c in &p.containers {
                let fd: OwnedFd = pod_ns[i]
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Error::io("duplicating a namespace descriptor", e))?;
                container_specs.push(HolderSpec {
                    label: label(&format!("container:{POD_NAMESPACE}/{}/{c}", p.name)),
                    ns: Ns::Join(fd),
                });
                container_of.push((i, *c));
            }
        }
        let containers = std::thread::Builder::new()
            .name("lab-containers".into())
            .spawn(move || holder::spawn_all(container_specs))
            .map_err(|e| Error::io("starting the container-holder thread", e))?;

        // 3. Wire the nodes (each from a thread inside its namespace), then the pods.
        mark("container holders started");
        let wired = wire(spec, &nodes, &pods, &node_ns, &pod_ns, &mark);
        let containers = containers
            .join()
            .map_err(|_| Error::Preflight("the container-holder thread panicked".into()))?;
        match containers {
            Ok(hs) => lab.holders.extend(hs),
            Err(e) => return Err(e),
        }
        wired?;
        mark("containers joined");

        // 4. Describe it.
        let n_nodes = nodes.len();
        lab.topology = Topology {
            pools: vec![TopologyPool {
                cidr: POOL_CIDR,
                block_size: BLOCK_SIZE,
                encapsulation: spec.encapsulation,
            }],
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| TopologyNode {
                    name: n.name.clone(),
                    netns: lab.anchors[i].netns(),
                    address: n.address,
                    underlay: UNDERLAY.to_string(),
                    blocks: n.blocks.clone(),
                    vxlan_tunnel_address: if spec.uses_vxlan() { n.tunnel } else { None },
                })
                .collect(),
            pods: pods
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let containers: BTreeMap<String, std::path::PathBuf> = container_of
                        .iter()
                        .enumerate()
                        .filter(|(_, (pod, _))| *pod == i)
                        .map(|(k, (_, c))| (c.to_string(), lab.holders[k].netns()))
                        .collect();
                    TopologyPod {
                        namespace: POD_NAMESPACE.to_string(),
                        name: p.name.clone(),
                        node: nodes[p.node].name.clone(),
                        netns: lab.namespaces[n_nodes + i].path(),
                        ip: p.ip,
                        containers,
                    }
                })
                .collect(),
        };
        Ok(lab)
    }

    /// Writes [`Lab::topology`] as a topology file, so a `topology:<file>` run can attach to
    /// this lab while it lives.
    pub fn write_topology(&self, path: &Path) -> Result<()> {
        self.topology.save(path)
    }

    /// The facts the lab states (what it built, plus its MTU and whether the ipip module
    /// exists here).
    pub fn facts(&self) -> Facts {
        let mut facts = self
            .topology
            .facts(format!("lab ({})", self.spec.encapsulation.as_str()));
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

/// Everything a node's thread needs, owned (it runs on another thread).
struct NodeJob {
    spec: LabSpec,
    node: NodePlan,
    /// The other node, when there are two.
    remote: Option<NodePlan>,
    /// Where the far end of `ens192` goes: the other node's namespace (first node of two),
    /// nowhere (the second node: its end arrives from the first), or this namespace (one node).
    underlay: Underlay,
    pods: Vec<(PodPlan, File)>,
}

enum Underlay {
    /// Create `ens192` with its peer `ens192` in that namespace.
    CreateTo(File),
    /// `ens192` arrives from the other node.
    Arrives,
    /// One node: `ens192` with its peer `ens192-wire` in the same namespace.
    Alone,
}

fn wire(
    spec: &LabSpec,
    nodes: &[NodePlan],
    pods: &[PodPlan],
    node_ns: &[File],
    pod_ns: &[File],
    mark: &dyn Fn(&str),
) -> Result<()> {
    for (i, node) in nodes.iter().enumerate() {
        let underlay = match (nodes.len(), i) {
            (1, _) => Underlay::Alone,
            (_, 0) => Underlay::CreateTo(
                node_ns[1]
                    .try_clone()
                    .map_err(|e| Error::io("duplicating a namespace descriptor", e))?,
            ),
            _ => Underlay::Arrives,
        };
        let my_pods = pods
            .iter()
            .zip(pod_ns)
            .filter(|(p, _)| p.node == i)
            .map(|(p, f)| Ok((p.clone(), f.try_clone()?)))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io("duplicating a namespace descriptor", e))?;
        let job = NodeJob {
            spec: spec.clone(),
            node: node.clone(),
            remote: nodes
                .iter()
                .enumerate()
                .find(|(j, _)| *j != i)
                .map(|(_, n)| n.clone()),
            underlay,
            pods: my_pods,
        };
        let ns = node_ns[i]
            .try_clone()
            .map_err(|e| Error::io("duplicating a namespace descriptor", e))?;
        in_ns(ns, node.name.clone(), move || wire_node(job))?;
        mark("node wired");
    }
    let r = wire_pods(pods, pod_ns);
    mark("pods wired");
    r
}

/// Runs `f` on a new thread that joined the namespace behind `ns`.
fn in_ns<T: Send + 'static>(
    ns: File,
    place: String,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    std::thread::Builder::new()
        .name(format!("lab {place}"))
        .spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                Error::Netns {
                    netns: place,
                    problem: format!("setns failed: {e}"),
                }
            })?;
            f()
        })
        .map_err(|e| Error::io("spawning a thread to enter a network namespace", e))?
        .join()
        .map_err(|_| Error::Preflight("a lab thread panicked".into()))?
}

fn link_up(index: u32) -> RouteNetlinkMessage {
    RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).up().build())
}

/// A veth `name` here, its peer `peer` created in the namespace behind `peer_ns` (or here).
///
/// Both ends are asked for one TX and one RX queue. Without that the kernel allocates one
/// queue per possible CPU and then trims the ones in use to one (`veth_init_queues`), and the
/// trim waits for an RCU grace period under the rtnl lock — per device, two per pod; that
/// wait was a fifth of the 110-pod lab build. Calico's CNI plugin does not ask, so a real
/// host end reports `numtxqueues <possible CPUs>` in `ip -d link`; both have one queue in
/// use, and no claim looks at the count.
fn veth(
    name: &str,
    mac: Option<[u8; 6]>,
    mtu: u32,
    peer: &str,
    peer_ns: Option<&File>,
) -> RouteNetlinkMessage {
    // The peer cannot be created UP (veth_open refuses while the pair is half-made, ENOTCONN):
    // whoever owns its namespace sets it up next.
    let mut peer_msg = LinkUnspec::new_with_name(peer)
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1));
    if let Some(ns) = peer_ns {
        peer_msg = peer_msg.setns_by_fd(ns.as_raw_fd());
    }
    let mut msg = LinkVeth::new(name, peer)
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .up();
    if let Some(mac) = mac {
        msg = msg.address(mac.to_vec());
    }
    let msg: LinkMessage = msg
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .build();
    RouteNetlinkMessage::NewLink(msg)
}

fn address(index: u32, ip: Ipv4Addr, prefix: u8) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewAddress(
        AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(ip, prefix)
            .build(),
    )
}

fn route(dst: Ipv4Net) -> RouteMessageBuilder<Ipv4Addr> {
    RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dst.network(), dst.prefix_len())
}

fn host(ip: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::from(ip)
}

fn neighbour(index: u32, family: AddressFamily, dst: Ipv4Addr, mac: [u8; 6]) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    msg
}

fn mac_str(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs inside the node's namespace: links, addresses, routes, neighbours, sysctls.
fn wire_node(job: NodeJob) -> Result<()> {
    let NodeJob {
        spec,
        node,
        remote,
        underlay,
        pods,
    } = job;
    let mtu = spec.pod_mtu();
    // A new namespace copies the machine's IPv4 defaults (net.core.devconf_inherit_init_net
    // 0): pin the node's rp_filter before any link exists, so the lab behaves the same on
    // every machine (see NODE_RP_FILTER).
    write_sysctl("/proc/sys/net/ipv4/conf/all/rp_filter", NODE_RP_FILTER)?;
    write_sysctl("/proc/sys/net/ipv4/conf/default/rp_filter", NODE_RP_FILTER)?;
    let mut nl = Rtnl::open_here(node.name.clone())?;

    // Links: lo, the underlay, one veth per pod (peer straight into the pod's namespace).
    let mut reqs = vec![Request::new(link_up(1), CHANGE, "link set lo up")];
    match &underlay {
        Underlay::CreateTo(peer) => reqs.push(Request::new(
            veth(UNDERLAY, None, UNDERLAY_MTU, UNDERLAY, Some(peer)),
            CREATE,
            format!("link add {UNDERLAY} type veth peer {UNDERLAY} (other node)"),
        )),
        Underlay::Alone => reqs.push(Request::new(
            veth(UNDERLAY, None, UNDERLAY_MTU, "ens192-wire", None),
            CREATE,
            format!("link add {UNDERLAY} type veth peer ens192-wire"),
        )),
        Underlay::Arrives => {}
    }
    for (p, ns) in &pods {
        reqs.push(Request::new(
            veth(&p.host_end, Some(HOST_END_MAC), mtu, "eth0", Some(ns)),
            CREATE,
            format!(
                "link add {} type veth peer eth0 (pod {})",
                p.host_end, p.name
            ),
        ));
    }
    // The kernel has taken the peers into the pods' namespaces: the descriptors were only
    // needed for that send.
    nl.batch(reqs)?;

    let idx = nl.link_indices()?;
    let index_of = |name: &str| {
        idx.get(name).copied().ok_or_else(|| {
            Error::NotFound(format!(
                "{}: link {name} is missing after creation",
                node.name
            ))
        })
    };
    let underlay_idx = index_of(UNDERLAY)?;

    // The underlay address and the tunnel device.
    let mut reqs = vec![Request::new(
        address(underlay_idx, node.address, UNDERLAY_PREFIX),
        CREATE,
        format!("addr add {}/{UNDERLAY_PREFIX} dev {UNDERLAY}", node.address),
    )];
    if matches!(underlay, Underlay::Arrives) {
        reqs.push(Request::new(
            link_up(underlay_idx),
            CHANGE,
            "link set ens192 up",
        ));
    }
    if spec.uses_vxlan() {
        let msg = LinkVxlan::new(VXLAN_DEVICE, VXLAN_VNI)
            .dev(underlay_idx)
            .port(VXLAN_PORT)
            .local(node.address)
            .learning(false)
            .mtu(mtu)
            .address(node.vxlan_mac.to_vec())
            .up()
            .build();
        reqs.push(Request::new(
            RouteNetlinkMessage::NewLink(msg),
            CREATE,
            format!("link add {VXLAN_DEVICE} type vxlan id {VXLAN_VNI}"),
        ));
    }
    if spec.uses_ipip() {
        let tunl = index_of(crate::calico::IPIP_DEVICE)?;
        let msg = LinkUnspec::new_with_index(tunl).mtu(mtu).up().build();
        reqs.push(Request::new(
            RouteNetlinkMessage::SetLink(msg),
            CHANGE,
            "link set tunl0 up mtu 1480",
        ));
    }
    nl.batch(reqs)?;

    // Routes, the tunnel address, neighbours.
    let mut reqs = Vec::new();
    let tunnel_dev = if spec.uses_vxlan() {
        Some((nl.link_index(VXLAN_DEVICE)?, VXLAN_DEVICE))
    } else if spec.uses_ipip() {
        Some((
            index_of(crate::calico::IPIP_DEVICE)?,
            crate::calico::IPIP_DEVICE,
        ))
    } else {
        None
    };
    if let (Some((dev, name)), Some(tunnel)) = (tunnel_dev, node.tunnel) {
        reqs.push(Request::new(
            address(dev, tunnel, 32),
            CREATE,
            format!("addr add {tunnel}/32 dev {name}"),
        ));
    }
    for (p, _) in &pods {
        let cali = index_of(&p.host_end)?;
        let msg = route(host(p.ip))
            .output_interface(cali)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Boot)
            .build();
        reqs.push(Request::new(
            RouteNetlinkMessage::NewRoute(msg),
            CREATE,
            format!("route add {}/32 dev {} scope link", p.ip, p.host_end),
        ));
    }
    // The article's node routes everything else via 10.12.0.1 on ens192. Proxy ARP answers
    // only for addresses the node routes out of another interface: without this route nobody
    // answers the pods' ARP for 169.254.1.1. (10.12.0.1 exists in no namespace: traffic to it
    // goes nowhere, inside the lab.)
    let default = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(UNDERLAY_GATEWAY)
        .output_interface(underlay_idx)
        .protocol(RouteProtocol::Boot)
        .build();
    reqs.push(Request::new(
        RouteNetlinkMessage::NewRoute(default),
        CREATE,
        format!("route add default via {UNDERLAY_GATEWAY} dev {UNDERLAY}"),
    ));
    // Felix programs blackholes and remote routes itself in VXLAN mode (proto 80); with BGP
    // (none, IPIP) BIRD does (proto bird).
    let proto = if spec.uses_vxlan() {
        RouteProtocol::Other(PROTO_FELIX)
    } else {
        RouteProtocol::Bird
    };
    for b in &node.blocks {
        let msg = route(*b).kind(RouteType::BlackHole).protocol(proto).build();
        reqs.push(Request::new(
            RouteNetlinkMessage::NewRoute(msg),
            CREATE,
            format!("route add blackhole {b}"),
        ));
    }
    if let Some(r) = &remote {
        let same_subnet = true; // both nodes are in 10.12.0.0/16
        let mode = spec.encapsulation.between(same_subnet);
        for b in &r.blocks {
            let (msg, what) = match (mode, tunnel_dev, r.tunnel) {
                (Encapsulation::Vxlan, Some((dev, _)), Some(gw)) => (
                    route(*b)
                        .gateway(gw)
                        .output_interface(dev)
                        .onlink()
                        .protocol(proto)
                        .build(),
                    format!("route add {b} via {gw} dev {VXLAN_DEVICE} onlink"),
                ),
                (Encapsulation::Ipip, Some((dev, _)), _) => (
                    route(*b)
                        .gateway(r.address)
                        .output_interface(dev)
                        .onlink()
                        .protocol(proto)
                        .build(),
                    format!("route add {b} via {} dev tunl0 onlink", r.address),
                ),
                _ => (
                    route(*b)
                        .gateway(r.address)
                        .output_interface(underlay_idx)
                        .protocol(proto)
                        .build(),
                    format!("route add {b} via {} dev {UNDERLAY}", r.address),
                ),
            };
            reqs.push(Request::new(
                RouteNetlinkMessage::NewRoute(msg),
                CREATE,
                what,
            ));
        }
        if let (true, Some((dev, _)), Some(gw)) = (spec.uses_vxlan(), tunnel_dev, r.tunnel) {
            // Felix's VXLANFDB: an ARP entry (tunnel IP -> remote VTEP MAC) and an FDB entry
            // (remote VTEP MAC -> remote node IP), both permanent.
            let mac = r.vxlan_mac;
            reqs.push(Request::new(
                RouteNetlinkMessage::NewNeighbour(neighbour(dev, AddressFamily::Inet, gw, mac)),
                CREATE_OR_REPLACE,
                format!("neigh add {gw} lladdr {} dev {VXLAN_DEVICE}", mac_str(&mac)),
            ));
            let mut fdb = neighbour(dev, AddressFamily::Bridge, r.address, mac);
            fdb.header.kind = RouteType::Unspec;
            fdb.header.flags = NeighbourFlags::Own;
            reqs.push(Request::new(
                RouteNetlinkMessage::NewNeighbour(fdb),
                CREATE_OR_REPLACE,
                format!(
                    "bridge fdb add {} dev {VXLAN_DEVICE} dst {} self permanent",
                    mac_str(&mac),
                    r.address
                ),
            ));
        }
    }
    nl.batch(reqs)?;

    // Sysctls, written from this thread: /proc/sys/net is the opener's namespace. Per host
    // end, what Felix's endpoint manager writes (`configureInterface`): accept_ra=0, then
    // route_localnet=1, proxy_delay=0, proxy_arp=1, forwarding=1, and rp_filter = the
    // node's `conf/default/rp_filter` as Felix read it at start (NODE_RP_FILTER, pinned above).
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    // A kernel booted with IPv6 off has no /proc/sys/net/ipv6; Felix then skips accept_ra too.
    let ipv6 = Path::new("/proc/sys/net/ipv6").exists();
    for (p, _) in &pods {
        let c = &p.host_end;
        if ipv6 {
            write_sysctl(&format!("/proc/sys/net/ipv6/conf/{c}/accept_ra"), "0")?;
        }
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{c}/route_localnet"), "1")?;
        write_sysctl(&format!("/proc/sys/net/ipv4/neigh/{c}/proxy_delay"), "0")?;
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{c}/proxy_arp"), "1")?;
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{c}/forwarding"), "1")?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{c}/rp_filter"),
            NODE_RP_FILTER,
        )?;
    }
    Ok(())
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::io(format!("writing {value} to {path}"), e))
}

/// Configures every pod's side: one thread per slice of pods, which joins each pod's
/// namespace in turn and sends that pod's requests in one batch.
fn wire_pods(pods: &[PodPlan], pod_ns: &[File]) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let per = pods.len().div_ceil(threads).max(1);
    let mut work: Vec<(PodPlan, File)> = Vec::with_capacity(pods.len());
    for (p, f) in pods.iter().zip(pod_ns) {
        let f = f
            .try_clone()
            .map_err(|e| Error::io("duplicating a namespace descriptor", e))?;
        work.push((p.clone(), f));
    }
    let mut handles = Vec::new();
    while !work.is_empty() {
        let rest = work.split_off(per.min(work.len()));
        let slice = std::mem::replace(&mut work, rest);
        let h = std::thread::Builder::new()
            .name("lab pods".into())
            .spawn(move || -> Result<()> {
                for (p, ns) in slice {
                    wire_pod(&p, &ns)?;
                }
                Ok(())
            })
            .map_err(|e| Error::io("spawning a thread to wire pods", e))?;
        handles.push(h);
    }
    let mut first_error = None;
    for h in handles {
        let r = h
            .join()
            .map_err(|_| Error::Preflight("a lab pod thread panicked".into()))
            .and_then(|r| r);
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// On a thread of its own (which it moves between namespaces): lo up, eth0's /32, the
/// link-local gateway route and the default route.
fn wire_pod(p: &PodPlan, ns: &File) -> Result<()> {
    let place = format!("pod {POD_NAMESPACE}/{}", p.name);
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::Netns {
            netns: place.clone(),
            problem: format!("setns failed: {e}"),
        }
    })?;
    let mut nl = Rtnl::open_here(place)?;
    let eth0 = nl.link_index("eth0")?;
    let gw = host(LINK_LOCAL_GATEWAY);
    let reqs = vec![
        Request::new(link_up(1), CHANGE, "link set lo up"),
        Request::new(link_up(eth0), CHANGE, "link set eth0 up"),
        Request::new(
            address(eth0, p.ip, 32),
            CREATE,
            format!("addr add {}/32 dev eth0", p.ip),
        ),
        Request::new(
            RouteNetlinkMessage::NewRoute(
                route(gw)
                    .output_interface(eth0)
                    .scope(RouteScope::Link)
                    .protocol(RouteProtocol::Boot)
                    .build(),
            ),
            CREATE,
            "route add 169.254.1.1 dev eth0 scope link",
        ),
        Request::new(
            RouteNetlinkMessage::NewRoute(
                route(Ipv4Net::default())
                    .gateway(LINK_LOCAL_GATEWAY)
                    .output_interface(eth0)
                    .protocol(RouteProtocol::Boot)
                    .build(),
            ),
            CREATE,
            "route add default via 169.254.1.1 dev eth0",
        ),
    ];
    nl.batch(reqs)
}
