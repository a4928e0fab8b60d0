//! The plan: what a lab is, computed from a [`LabSpec`] alone. Nodes and pods with their
//! names, addresses and blocks ([`Plan`]), and per network namespace the netlink requests and
//! sysctl writes that make it ([`Wiring`]), in the order they are sent. Nothing here touches
//! the system, so all of it is tested without root; [`super::wire`] carries a plan out.

use crate::calico::{
    HOST_END_MAC, IPIP_DEVICE, LINK_LOCAL_GATEWAY, VXLAN_DEVICE, VXLAN_PORT, VXLAN_V6_DEVICE,
    VXLAN_V6_VNI, VXLAN_VNI, host_end_name,
};
use crate::error::{Error, Result};
use crate::facts::Encapsulation;
use ipnet::{Ipv4Net, Ipv6Net};
use sha1::{Digest, Sha1};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod requests;
pub use requests::{
    Batch, Dev, Flags, Lookup, Op, PeerNs, Proto, Route, Route6, Step, Sysctl, Wiring,
};
use requests::{dev, step, sysctl, sysctl6};

/// The dual-stack lab's IPv6 pool (kind's and Calico's documentation use fd00:10:244::/64).
pub const IPV6_POOL_CIDR: Ipv6Net =
    match Ipv6Net::new(Ipv6Addr::new(0xfd00, 0x10, 0x244, 0, 0, 0, 0, 0), 64) {
        Ok(n) => n,
        Err(_) => panic!("constant IPv6 pool CIDR"),
    };
/// Calico's default IPv6 IPAM block size.
pub const IPV6_BLOCK_SIZE: u8 = 122;
/// The prefix length of the IPv6 underlay subnet (fd00:10:12::/64).
pub const UNDERLAY6_PREFIX: u8 = 64;
/// The IPv6 underlay's default gateway (exists in no namespace, like [`UNDERLAY_GATEWAY`]).
pub const UNDERLAY6_GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x12, 0, 0, 0, 0, 1);
/// The host end's IPv6 link-local address: EUI-64 of ee:ee:ee:ee:ee:ee, which the kernel
/// gives every host end (the pods' IPv6 gateway, Calico's CNI plugin reads it back).
pub const HOST_END_LINK_LOCAL: Ipv6Addr =
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

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

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// How the pool carries traffic between nodes: `None`, `Vxlan` (or `VxlanCrossSubnet`,
    /// which between these nodes of one subnet routes like `None` over a `vxlan.calico` that
    /// exists), `Ipip` (needs the ipip kernel module; the preflight says when it is missing).
    pub encapsulation: Encapsulation,
    /// Extra pods per node, `bench-<node>-0`, `bench-<node>-1`, ..., with further addresses from the
    /// node's /24 (in as many /26 blocks as they need). 0 for the article; the bench uses more.
    pub extra_pods_per_node: usize,
    /// 1 or 2 nodes (2 for the article; the bench uses 1). With one node, `ens192` is a veth
    /// whose other end (`ens192-wire`) stays in the same namespace.
    pub nodes: usize,
    /// The Kubernetes namespace of every pod: [`POD_NAMESPACE`], unless a test serves the lab
    /// as another namespace's pods. It names the host ends (`cali` + sha1("<ns>.<pod>")[:11]).
    pub pod_namespace: String,
    /// Dual stack: an IPv6 pool ([`IPV6_POOL_CIDR`], /122 blocks) beside the IPv4 one, every
    /// pod with an IPv6 /128 too, wired as Calico's CNI plugin wires the IPv6 half of a veth.
    pub dual_stack: bool,
    /// A pod `calico-pinger-<node>` ([`crate::calico::pinger_name`]) on each node without an
    /// article pod, as a sweep of a cluster deploys one there (the fake cluster serves it).
    pub pingers: bool,
}

impl LabSpec {
    /// The article's cluster: two nodes, its three pods, no extra pods.
    pub fn article(encapsulation: Encapsulation) -> Self {
        LabSpec {
            encapsulation,
            extra_pods_per_node: 0,
            nodes: 2,
            pod_namespace: POD_NAMESPACE.to_string(),
            dual_stack: false,
            pingers: false,
        }
    }

    /// The article's cluster, dual stack (IPv4 and IPv6 pools).
    pub fn dual_stack(encapsulation: Encapsulation) -> Self {
        LabSpec {
            dual_stack: true,
            ..LabSpec::article(encapsulation)
        }
    }

    /// The pod MTU for this spec: Felix's `determinePodMTU`, the smallest MTU of the enabled
    /// encapsulations (dual stack over VXLAN: `vxlan-v6.calico`'s, 70 bytes of overhead).
    pub fn pod_mtu(&self) -> u32 {
        match self.uses_vxlan6() {
            true => UNDERLAY_MTU - Encapsulation::Vxlan.overhead6(),
            false => self.encapsulation.pod_mtu(UNDERLAY_MTU),
        }
    }

    /// Dual stack over VXLAN: the IPv6 pool is carried by `vxlan-v6.calico`.
    pub(crate) fn uses_vxlan6(&self) -> bool {
        self.dual_stack && self.uses_vxlan()
    }

    pub(crate) fn uses_vxlan(&self) -> bool {
        matches!(
            self.encapsulation,
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet
        )
    }

    pub(crate) fn uses_ipip(&self) -> bool {
        matches!(
            self.encapsulation,
            Encapsulation::Ipip | Encapsulation::IpipCrossSubnet
        )
    }

    /// The node's tunnel device, when the pool is encapsulated.
    fn tunnel_device(&self) -> Option<&'static str> {
        if self.uses_vxlan() {
            Some(VXLAN_DEVICE)
        } else if self.uses_ipip() {
            Some(IPIP_DEVICE)
        } else {
            None
        }
    }

    /// The protocol of blackhole and remote-block routes: Felix programs them itself in VXLAN
    /// mode (proto 80); with BGP (none, IPIP) BIRD does (proto bird).
    fn block_route_proto(&self) -> Proto {
        if self.uses_vxlan() {
            Proto::Felix
        } else {
            Proto::Bird
        }
    }
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec::article(Encapsulation::None)
    }
}

/// One node as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// `k8s-worker-1`.
    pub name: String,
    /// The underlay address (10.12.22.2).
    pub address: Ipv4Addr,
    /// The node's affine /26 blocks: the first of its /24, and every one a pod landed in.
    pub blocks: Vec<Ipv4Net>,
    /// The tunnel address (first address of the node's /24), when the pool is encapsulated.
    pub tunnel: Option<Ipv4Addr>,
    /// The MAC of the node's `vxlan.calico` ([`felix_vxlan_mac`]).
    pub vxlan_mac: [u8; 6],
    /// Dual stack: the node's IPv6 underlay address (fd00:10:12::2).
    pub ipv6: Option<Ipv6Addr>,
    /// Dual stack: the node's affine /122 IPv6 blocks (the same grouping as its /26s).
    pub ipv6_blocks: Vec<Ipv6Net>,
    /// Dual stack over VXLAN: the `vxlan-v6.calico` tunnel address ([`ipv6_of`] the IPv4
    /// tunnel address: the first address of the node's first IPv6 block).
    pub tunnel6: Option<Ipv6Addr>,
    /// The MAC of the node's `vxlan-v6.calico` (the lab's own choice, [`felix_vxlan_mac`] of
    /// `<name>-v6`: no claim reads it).
    pub vxlan6_mac: [u8; 6],
}

/// One pod as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    /// `test-tools`.
    pub name: String,
    /// Its Kubernetes namespace ([`LabSpec::pod_namespace`]).
    pub namespace: String,
    /// Index of its node in [`Plan::nodes`].
    pub node: usize,
    /// The pod IP.
    pub ip: Ipv4Addr,
    /// Dual stack: the pod's IPv6 address ([`ipv6_of`] its IPv4 one).
    pub ipv6: Option<Ipv6Addr>,
    /// The host end's name, `cali` + sha1("<namespace>.<pod>")[:11].
    pub host_end: String,
    /// Its containers, each a process of its own in the pod's namespace.
    pub containers: Vec<&'static str>,
}

/// Felix's VXLAN MAC for a node without a configured one: `0x66` ('f') + sha1(name)[0..5].
pub fn felix_vxlan_mac(node: &str) -> [u8; 6] {
    let sha = Sha1::digest(node.as_bytes());
    [b'f', sha[0], sha[1], sha[2], sha[3], sha[4]]
}

/// The dual-stack lab's IPv6 address for the IPv4 pod address 192.168.<n>.<k>:
/// fd00:10:244::<n>:<k>, so node n's addresses share its /112 as its IPv4 ones share its /24.
pub fn ipv6_of(ip: Ipv4Addr) -> Ipv6Addr {
    let [_, _, third, last] = ip.octets();
    Ipv6Addr::new(
        0xfd00,
        0x10,
        0x244,
        0,
        0,
        0,
        u16::from(third),
        u16::from(last),
    )
}

/// `ee:ee:ee:ee:ee:ee`, as `ip` writes a MAC.
pub fn mac_str(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The article's pods: name, node index, address, containers.
type ArticlePod = (&'static str, usize, Ipv4Addr, &'static [&'static str]);
const ARTICLE_PODS: [ArticlePod; 3] = [
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

/// A lab as planned: its nodes and pods (nodes first, in the order their namespaces are made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What was asked for.
    pub spec: LabSpec,
    /// `k8s-worker-1`, `k8s-worker-2`.
    pub nodes: Vec<NodePlan>,
    /// Per node in turn: the article's pods on it, then its extra pods.
    pub pods: Vec<PodPlan>,
}

impl Plan {
    /// Plans the lab `spec` asks for; refuses a spec the lab cannot build (node count, more
    /// extra pods than one /24 holds).
    pub fn new(spec: &LabSpec) -> Result<Plan> {
        if !(1..=MAX_NODES).contains(&spec.nodes) {
            return Err(Error::Preflight(format!(
                "the lab builds 1 to {MAX_NODES} nodes (one /24 of pod addresses and one \
                 underlay address each), not {}",
                spec.nodes
            )));
        }
        if spec.dual_stack && spec.uses_ipip() {
            return Err(Error::Preflight(format!(
                "the dual-stack lab builds encapsulation None or VXLAN, not {}: Calico has no \
                 IPIP for IPv6",
                spec.encapsulation.as_str()
            )));
        }
        let mut plan = Plan {
            spec: spec.clone(),
            nodes: Vec::new(),
            pods: Vec::new(),
        };
        for n in 0..spec.nodes {
            let (node, pods) = plan_node(spec, n)?;
            plan.nodes.push(node);
            plan.pods.extend(pods);
        }
        Ok(plan)
    }

    /// The pods of node `node`, with their indices in [`Plan::pods`].
    pub fn pods_of(&self, node: usize) -> impl Iterator<Item = (usize, &PodPlan)> {
        self.pods
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.node == node)
    }

    /// The other node, when there are two (the first other node of more).
    pub fn remote_of(&self, node: usize) -> Option<&NodePlan> {
        self.remotes_of(node).next()
    }

    /// Every other node.
    pub fn remotes_of(&self, node: usize) -> impl Iterator<Item = &NodePlan> {
        (self.nodes.iter().enumerate())
            .filter(move |(j, _)| *j != node)
            .map(|(_, n)| n)
    }

    /// More than two nodes meet on a switch: a bridge in a namespace of its own, one veth per
    /// node whose other end is the node's `ens192` ([`Plan::switch_wiring`]).
    pub fn uses_switch(&self) -> bool {
        self.nodes.len() > 2
    }

    /// Whether node `i`'s `ens192` arrives from elsewhere (the first node of two, or the
    /// switch) and must be set up here.
    fn underlay_arrives(&self, i: usize) -> bool {
        self.uses_switch() || (self.nodes.len() == 2 && i == 1)
    }

    /// The switch of a lab of more than two nodes: the bridge `br0`, UP, and one port `n<i>`
    /// per node, whose peer `ens192` is created in node `i`'s namespace.
    pub fn switch_wiring(&self) -> Wiring {
        let mut create = vec![step(
            Op::Bridge {
                name: SWITCH_BRIDGE.into(),
            },
            Flags::Create,
            format!("link add {SWITCH_BRIDGE} type bridge"),
        )];
        let mut attach = Vec::new();
        for i in 0..self.nodes.len() {
            let port = format!("n{i}");
            let op = Op::Veth {
                name: port.clone(),
                mac: None,
                mtu: UNDERLAY_MTU,
                peer: UNDERLAY.into(),
                peer_ns: PeerNs::Node(i),
            };
            let what = format!("link add {port} type veth peer {UNDERLAY} (node {i})");
            create.push(step(op, Flags::Create, what));
            let op = Op::Master {
                dev: dev(&port),
                master: dev(SWITCH_BRIDGE),
            };
            let what = format!("link set {port} master {SWITCH_BRIDGE} up");
            attach.push(step(op, Flags::Change, what));
        }
        Wiring {
            place: "switch".into(),
            before: Vec::new(),
            batches: vec![
                Batch {
                    lookup: Lookup::Nothing,
                    steps: create,
                },
                Batch {
                    lookup: Lookup::Dump,
                    steps: attach,
                },
            ],
            after: Vec::new(),
        }
    }

    /// `pod default/<name>`: a pod's place in errors.
    pub fn pod_place(&self, pod: usize) -> String {
        match self.pods.get(pod) {
            Some(p) => format!("pod {}/{}", p.namespace, p.name),
            None => "pod ?".to_string(),
        }
    }
}

/// Node `n` (0-based) and its pods: the article's pods on it, then the extra pods in the free
/// addresses of its /24.
fn plan_node(spec: &LabSpec, n: usize) -> Result<(NodePlan, Vec<PodPlan>)> {
    let third = (n + 1) as u8;
    let name = format!("k8s-worker-{}", n + 1);
    let tunnelled = spec.tunnel_device().is_some();
    let mut pods: Vec<PodPlan> = ARTICLE_PODS
        .iter()
        .filter(|(_, node, _, _)| *node == n)
        .map(|(pod, _, ip, containers)| pod_plan(spec, pod.to_string(), n, *ip, containers))
        .collect();
    // Last octets taken: the tunnel address, the article's pods.
    let mut used: BTreeSet<u8> = pods.iter().map(|p| p.ip.octets()[3]).collect();
    if tunnelled {
        used.insert(0);
    }
    if spec.pingers && pods.is_empty() {
        let last = (1..=255u8).find(|o| !used.contains(o)).unwrap_or(1);
        used.insert(last);
        let ip = Ipv4Addr::new(192, 168, third, last);
        let name = crate::calico::pinger_name(&name);
        pods.push(pod_plan(spec, name, n, ip, &[]));
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
        let ip = Ipv4Addr::new(192, 168, third, *last);
        // Unique across the cluster, as pod names in one namespace are: bench-<node>-<i>.
        pods.push(pod_plan(spec, format!("bench-{}-{i}", n + 1), n, ip, &[]));
    }
    let blocks = blocks(third, &used);
    let node = NodePlan {
        vxlan_mac: felix_vxlan_mac(&name),
        vxlan6_mac: felix_vxlan_mac(&format!("{name}-v6")),
        tunnel6: (spec.uses_vxlan6()).then(|| ipv6_of(Ipv4Addr::new(192, 168, third, 0))),
        name,
        address: Ipv4Addr::new(10, 12, 22, (n + 2) as u8),
        tunnel: tunnelled.then_some(Ipv4Addr::new(192, 168, third, 0)),
        ipv6: (spec.dual_stack)
            .then(|| Ipv6Addr::new(0xfd00, 0x10, 0x12, 0, 0, 0, 0, (n + 2) as u16)),
        ipv6_blocks: match spec.dual_stack {
            true => blocks.iter().filter_map(|b| ipv6_block(*b)).collect(),
            false => Vec::new(),
        },
        blocks,
    };
    Ok((node, pods))
}

fn pod_plan(
    spec: &LabSpec,
    name: String,
    node: usize,
    ip: Ipv4Addr,
    containers: &[&'static str],
) -> PodPlan {
    PodPlan {
        host_end: host_end_name(&spec.pod_namespace, &name),
        namespace: spec.pod_namespace.clone(),
        name,
        node,
        ip,
        ipv6: spec.dual_stack.then(|| ipv6_of(ip)),
        containers: containers.to_vec(),
    }
}

/// Felix's VXLANFDB for one remote VTEP on `device`: a neighbour entry (its tunnel address ->
/// its VTEP MAC) and an FDB entry (that MAC -> its node address), both permanent.
fn vxlan_neighbours(device: &'static str, tunnel: IpAddr, mac: [u8; 6], node: IpAddr) -> Vec<Step> {
    let m = mac_str(&mac);
    let neighbour = Op::Neighbour {
        dev: dev(device),
        ip: tunnel,
        mac,
    };
    let fdb = Op::Fdb {
        dev: dev(device),
        mac,
        dst: node,
    };
    vec![
        step(
            neighbour,
            Flags::CreateOrReplace,
            format!("neigh add {tunnel} lladdr {m} dev {device}"),
        ),
        step(
            fdb,
            Flags::CreateOrReplace,
            format!("bridge fdb add {m} dev {device} dst {node} self permanent"),
        ),
    ]
}

/// The /122 IPv6 block that holds the IPv6 addresses of an IPv4 /26 block's addresses.
fn ipv6_block(block: Ipv4Net) -> Option<Ipv6Net> {
    Ipv6Net::new(ipv6_of(block.network()), IPV6_BLOCK_SIZE).ok()
}

/// The blocks of the node whose /24 is `192.168.<third>.0/24`: its first /26, and every /26
/// holding one of the `used` last octets.
fn blocks(third: u8, used: &BTreeSet<u8>) -> Vec<Ipv4Net> {
    let mut bases: BTreeSet<u8> = BTreeSet::from([0]);
    bases.extend(used.iter().map(|o| o & 0xc0));
    bases
        .into_iter()
        .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(192, 168, third, b), BLOCK_SIZE).ok())
        .collect()
}

/// The far end of `ens192` on a lab of one node, which stays in the node's namespace.
const UNDERLAY_WIRE: &str = "ens192-wire";
/// The bridge of a lab of more than two nodes, in the switch's namespace.
pub const SWITCH_BRIDGE: &str = "br0";
/// The most nodes a lab builds: node n has the underlay address 10.12.22.<n + 2> and the pod
/// addresses 192.168.<n + 1>.0/24.
pub const MAX_NODES: usize = 250;

impl Plan {
    /// Node `i`'s wiring, run from a thread inside its namespace: the node's rp_filter; then
    /// its links (lo, the underlay, one veth per pod with the peer straight in the pod's
    /// namespace); its addresses and tunnel device; its routes, tunnel address and
    /// neighbours; then the host ends' sysctls.
    pub fn node_wiring(&self, i: usize) -> Wiring {
        // A new namespace copies the machine's IPv4 defaults (net.core.devconf_inherit_init_net
        // 0): pin the node's rp_filter before any link exists, so the lab behaves the same on
        // every machine (see NODE_RP_FILTER).
        let before = ["all", "default"]
            .iter()
            .map(|c| {
                sysctl(
                    format!("/proc/sys/net/ipv4/conf/{c}/rp_filter"),
                    NODE_RP_FILTER,
                )
            })
            .chain(self.node_ipv6_defaults(i))
            .collect();
        let mut routes = self.node_host_routes(i);
        routes.extend(self.node_block_routes(i));
        routes.extend(self.node_vxlan_neighbours(i));
        routes.extend(self.node_ipv6_routes(i));
        Wiring {
            place: self.nodes[i].name.clone(),
            before,
            batches: vec![
                Batch {
                    lookup: Lookup::Nothing,
                    steps: self.node_links(i),
                },
                Batch {
                    lookup: Lookup::Dump,
                    steps: self.node_devices(i),
                },
                Batch {
                    lookup: Lookup::EachMissing,
                    steps: routes,
                },
            ],
            after: self.node_sysctls(i),
        }
    }

    /// Dual stack: what Felix and the node's IPv6 setup give a node before any pod: IPv6 on,
    /// `all/forwarding=1` (Felix), and DAD off by default so every host end's link-local
    /// address (the pods' gateway) is usable at once, as the CNI plugin's `disableDAD` makes
    /// it.
    ///
    /// The second node's `ens192` arrived from the first before this runs, with the kernel's
    /// DAD default: it gets DAD off here, before it is set up (its link-local address would
    /// stay tentative for a second, and the node could not resolve its neighbours).
    fn node_ipv6_defaults(&self, i: usize) -> Vec<Sysctl> {
        if !self.spec.dual_stack {
            return Vec::new();
        }
        let conf =
            |c: &str, leaf: &str, v| sysctl6(format!("/proc/sys/net/ipv6/conf/{c}/{leaf}"), v);
        let mut out = vec![
            conf("all", "disable_ipv6", "0"),
            conf("default", "disable_ipv6", "0"),
            conf("default", "accept_dad", "0"),
            conf("all", "forwarding", "1"),
        ];
        if self.underlay_arrives(i) {
            out.push(conf(UNDERLAY, "accept_dad", "0"));
        }
        out
    }

    /// Dual stack: the node's IPv6 underlay address, a /128 per pod to its host end, the IPv6
    /// default route, a blackhole per own IPv6 block, a route per remote IPv6 block via the
    /// other node's IPv6 address (encapsulation None; BIRD's routes).
    fn node_ipv6_routes(&self, i: usize) -> Vec<Step> {
        let node = &self.nodes[i];
        let Some(address) = node.ipv6 else {
            return Vec::new();
        };
        let route = |dst, gateway, dev: Option<Dev>, proto| Route6 {
            dst,
            blackhole: false,
            gateway,
            dev,
            proto,
            onlink: false,
        };
        let address_op = Op::Address6 {
            dev: dev(UNDERLAY),
            ip: address,
            prefix: UNDERLAY6_PREFIX,
        };
        let what = format!("addr add {address}/{UNDERLAY6_PREFIX} dev {UNDERLAY} nodad");
        let mut steps = vec![step(address_op, Flags::Create, what)];
        if let Some(tunnel) = node.tunnel6 {
            let op = Op::Address6 {
                dev: dev(VXLAN_V6_DEVICE),
                ip: tunnel,
                prefix: 128,
            };
            let what = format!("addr add {tunnel}/128 dev {VXLAN_V6_DEVICE}");
            steps.push(step(op, Flags::Create, what));
        }
        for (_, p) in self.pods_of(i) {
            let Some(ip) = p.ipv6 else { continue };
            let r = route(
                Some(Ipv6Net::from(ip)),
                None,
                Some(dev(&p.host_end)),
                Proto::Boot,
            );
            let what = format!("route add {ip}/128 dev {}", p.host_end);
            steps.push(step(Op::Route6(r), Flags::Create, what));
        }
        let default = route(
            None,
            Some(UNDERLAY6_GATEWAY),
            Some(dev(UNDERLAY)),
            Proto::Boot,
        );
        let what = format!("route add default via {UNDERLAY6_GATEWAY} dev {UNDERLAY}");
        steps.push(step(Op::Route6(default), Flags::Create, what));
        for b in &node.ipv6_blocks {
            let r = Route6 {
                blackhole: true,
                ..route(Some(*b), None, None, self.spec.block_route_proto())
            };
            steps.push(step(
                Op::Route6(r),
                Flags::Create,
                format!("route add blackhole {b}"),
            ));
        }
        for (r, gw) in self.remotes_of(i).filter_map(|r| Some((r, r.ipv6?))) {
            // Over vxlan-v6.calico via the other node's IPv6 tunnel address (onlink, as Felix's
            // routetable programs every VXLAN route), or via its IPv6 address on the underlay.
            let same_subnet = true; // both nodes are in fd00:10:12::/64
            let mode = self.spec.encapsulation.between(same_subnet);
            let (gateway, device, onlink) = match (mode, r.tunnel6) {
                (Encapsulation::Vxlan, Some(t)) => (t, VXLAN_V6_DEVICE, true),
                _ => (gw, UNDERLAY, false),
            };
            for b in &r.ipv6_blocks {
                let op = Route6 {
                    onlink,
                    ..route(
                        Some(*b),
                        Some(gateway),
                        Some(dev(device)),
                        self.spec.block_route_proto(),
                    )
                };
                let onlink = if onlink { " onlink" } else { "" };
                let what = format!("route add {b} via {gateway} dev {device}{onlink}");
                steps.push(step(Op::Route6(op), Flags::Create, what));
            }
            if let (Encapsulation::Vxlan, Some(t)) = (mode, r.tunnel6) {
                steps.extend(vxlan_neighbours(
                    VXLAN_V6_DEVICE,
                    t.into(),
                    r.vxlan6_mac,
                    gw.into(),
                ));
            }
        }
        steps
    }

    /// lo up, the underlay veth (made by the first node of two, or alone), one veth per pod.
    fn node_links(&self, i: usize) -> Vec<Step> {
        let mtu = self.spec.pod_mtu();
        let mut steps = vec![step(Op::LinkUp(Dev::Lo), Flags::Change, "link set lo up")];
        let underlay = |peer: &str, peer_ns: PeerNs, what: String| {
            let op = Op::Veth {
                name: UNDERLAY.into(),
                mac: None,
                mtu: UNDERLAY_MTU,
                peer: peer.into(),
                peer_ns,
            };
            step(op, Flags::Create, what)
        };
        match (self.nodes.len(), i) {
            (1, _) => steps.push(underlay(
                UNDERLAY_WIRE,
                PeerNs::Here,
                format!("link add {UNDERLAY} type veth peer {UNDERLAY_WIRE}"),
            )),
            (2, 0) => steps.push(underlay(
                UNDERLAY,
                PeerNs::Node(1),
                format!("link add {UNDERLAY} type veth peer {UNDERLAY} (other node)"),
            )),
            // The second node's end arrives from the first; with more, every node's from the
            // switch.
            _ => {}
        }
        for (k, p) in self.pods_of(i) {
            let op = Op::Veth {
                name: p.host_end.clone(),
                mac: Some(HOST_END_MAC),
                mtu,
                peer: "eth0".into(),
                peer_ns: PeerNs::Pod(k),
            };
            let what = format!(
                "link add {} type veth peer eth0 (pod {})",
                p.host_end, p.name
            );
            steps.push(step(op, Flags::Create, what));
        }
        steps
    }

    /// The underlay address (and the underlay up, on the node it arrived at), the tunnel
    /// device.
    fn node_devices(&self, i: usize) -> Vec<Step> {
        let node = &self.nodes[i];
        let mtu = self.spec.pod_mtu();
        let address = Op::Address {
            dev: dev(UNDERLAY),
            ip: node.address,
            prefix: UNDERLAY_PREFIX,
        };
        let mut steps = vec![step(
            address,
            Flags::Create,
            format!("addr add {}/{UNDERLAY_PREFIX} dev {UNDERLAY}", node.address),
        )];
        if self.underlay_arrives(i) {
            let what = format!("link set {UNDERLAY} up");
            steps.push(step(Op::LinkUp(dev(UNDERLAY)), Flags::Change, what));
        }
        if self.spec.uses_vxlan() {
            // Felix's VXLANMTU: the pods' MTU, except beside vxlan-v6.calico, whose larger
            // overhead sets the pods' (determinePodMTU takes the smallest).
            let op = Op::Vxlan {
                name: VXLAN_DEVICE,
                vni: VXLAN_VNI,
                port: VXLAN_PORT,
                underlay: dev(UNDERLAY),
                local: node.address.into(),
                mtu: self.spec.encapsulation.pod_mtu(UNDERLAY_MTU),
                mac: node.vxlan_mac,
            };
            let what = format!("link add {VXLAN_DEVICE} type vxlan id {VXLAN_VNI}");
            steps.push(step(op, Flags::Create, what));
        }
        if let (true, Some(local)) = (self.spec.uses_vxlan6(), node.ipv6) {
            // Felix's vxlan-v6.calico: the same VNI and port, over the node's IPv6 address.
            let op = Op::Vxlan {
                name: VXLAN_V6_DEVICE,
                vni: VXLAN_V6_VNI,
                port: VXLAN_PORT,
                underlay: dev(UNDERLAY),
                local: local.into(),
                mtu: UNDERLAY_MTU - Encapsulation::Vxlan.overhead6(),
                mac: node.vxlan6_mac,
            };
            let what =
                format!("link add {VXLAN_V6_DEVICE} type vxlan id {VXLAN_V6_VNI} local {local}");
            steps.push(step(op, Flags::Create, what));
        }
        if self.spec.uses_ipip() {
            let op = Op::LinkUpMtu {
                dev: dev(IPIP_DEVICE),
                mtu,
            };
            let what = format!("link set {IPIP_DEVICE} up mtu {mtu}");
            steps.push(step(op, Flags::Change, what));
        }
        steps
    }

    /// The tunnel address, a /32 per pod to its host end, and the default route.
    fn node_host_routes(&self, i: usize) -> Vec<Step> {
        let node = &self.nodes[i];
        let mut steps = Vec::new();
        if let (Some(tunnel_dev), Some(tunnel)) = (self.spec.tunnel_device(), node.tunnel) {
            let op = Op::Address {
                dev: dev(tunnel_dev),
                ip: tunnel,
                prefix: 32,
            };
            let what = format!("addr add {tunnel}/32 dev {tunnel_dev}");
            steps.push(step(op, Flags::Create, what));
        }
        for (_, p) in self.pods_of(i) {
            let route = Route::link_scope(Ipv4Net::from(p.ip), dev(&p.host_end));
            let what = format!("route add {}/32 dev {} scope link", p.ip, p.host_end);
            steps.push(step(Op::Route(route), Flags::Create, what));
        }
        // The article's node routes everything else via 10.12.0.1 on ens192. Proxy ARP
        // answers only for addresses the node routes out of another interface: without this
        // route nobody answers the pods' ARP for 169.254.1.1. (10.12.0.1 exists in no
        // namespace: traffic to it goes nowhere, inside the lab.)
        let default = Route::via(None, UNDERLAY_GATEWAY, dev(UNDERLAY), Proto::Boot);
        let what = format!("route add default via {UNDERLAY_GATEWAY} dev {UNDERLAY}");
        steps.push(step(Op::Route(default), Flags::Create, what));
        steps
    }

    /// A blackhole per own block, a route per remote block (over the tunnel or the underlay).
    fn node_block_routes(&self, i: usize) -> Vec<Step> {
        let proto = self.spec.block_route_proto();
        let mut steps = Vec::new();
        for b in &self.nodes[i].blocks {
            let route = Route {
                blackhole: true,
                ..Route::to(Some(*b), proto)
            };
            steps.push(step(
                Op::Route(route),
                Flags::Create,
                format!("route add blackhole {b}"),
            ));
        }
        let same_subnet = true; // every node is in 10.12.0.0/16
        let mode = self.spec.encapsulation.between(same_subnet);
        for (r, b) in self
            .remotes_of(i)
            .flat_map(|r| r.blocks.iter().map(move |b| (r, b)))
        {
            let (gateway, device, onlink) = match (mode, r.tunnel) {
                (Encapsulation::Vxlan, Some(gw)) => (gw, VXLAN_DEVICE, true),
                (Encapsulation::Ipip, _) => (r.address, IPIP_DEVICE, true),
                _ => (r.address, UNDERLAY, false),
            };
            let route = Route {
                onlink,
                ..Route::via(Some(*b), gateway, dev(device), proto)
            };
            let onlink = if onlink { " onlink" } else { "" };
            let what = format!("route add {b} via {gateway} dev {device}{onlink}");
            steps.push(step(Op::Route(route), Flags::Create, what));
        }
        steps
    }

    /// Felix's VXLANFDB for every remote node: an ARP entry (tunnel IP -> remote VTEP MAC) and
    /// an FDB entry (remote VTEP MAC -> remote node IP), both permanent.
    fn node_vxlan_neighbours(&self, i: usize) -> Vec<Step> {
        if !self.spec.uses_vxlan() {
            return Vec::new();
        }
        (self.remotes_of(i))
            .filter_map(|r| Some((r, r.tunnel?)))
            .flat_map(|(r, gw)| {
                vxlan_neighbours(VXLAN_DEVICE, gw.into(), r.vxlan_mac, r.address.into())
            })
            .collect()
    }

    /// `ip_forward=1`, then per host end what Felix's endpoint manager writes
    /// (`configureInterface`): accept_ra=0, route_localnet=1, proxy_delay=0, proxy_arp=1,
    /// forwarding=1, and rp_filter = the node's `conf/default/rp_filter` as Felix read it at
    /// start (NODE_RP_FILTER, pinned first).
    fn node_sysctls(&self, i: usize) -> Vec<Sysctl> {
        let mut out = vec![sysctl("/proc/sys/net/ipv4/ip_forward", "1")];
        for (_, p) in self.pods_of(i) {
            let c = &p.host_end;
            out.push(Sysctl {
                ipv6: true,
                ..sysctl(format!("/proc/sys/net/ipv6/conf/{c}/accept_ra"), "0")
            });
            out.extend([
                sysctl(format!("/proc/sys/net/ipv4/conf/{c}/route_localnet"), "1"),
                sysctl(format!("/proc/sys/net/ipv4/neigh/{c}/proxy_delay"), "0"),
                sysctl(format!("/proc/sys/net/ipv4/conf/{c}/proxy_arp"), "1"),
                sysctl(format!("/proc/sys/net/ipv4/conf/{c}/forwarding"), "1"),
                sysctl(
                    format!("/proc/sys/net/ipv4/conf/{c}/rp_filter"),
                    NODE_RP_FILTER,
                ),
            ]);
            if p.ipv6.is_some() {
                // The CNI plugin's `configureSysctls` for IPv6 (and `disableDAD`).
                let conf =
                    |leaf: &str, v| sysctl6(format!("/proc/sys/net/ipv6/conf/{c}/{leaf}"), v);
                out.extend([
                    conf("disable_ipv6", "0"),
                    conf("proxy_ndp", "1"),
                    conf("forwarding", "1"),
                    conf("accept_dad", "0"),
                ]);
            }
        }
        out
    }

    /// Pod `k`'s wiring, run from a thread that joined its namespace: lo and eth0 up, eth0's
    /// /32, the link-local gateway route and the default route.
    pub fn pod_wiring(&self, k: usize) -> Wiring {
        let ip = self.pods[k].ip;
        let eth0 = || dev("eth0");
        let gateway = Route::link_scope(Ipv4Net::from(LINK_LOCAL_GATEWAY), eth0());
        let default = Route::via(
            Some(Ipv4Net::default()),
            LINK_LOCAL_GATEWAY,
            eth0(),
            Proto::Boot,
        );
        let address = Op::Address {
            dev: eth0(),
            ip,
            prefix: 32,
        };
        let mut steps = vec![
            step(Op::LinkUp(Dev::Lo), Flags::Change, "link set lo up"),
            step(Op::LinkUp(eth0()), Flags::Change, "link set eth0 up"),
            step(address, Flags::Create, format!("addr add {ip}/32 dev eth0")),
            step(
                Op::Route(gateway),
                Flags::Create,
                format!("route add {LINK_LOCAL_GATEWAY} dev eth0 scope link"),
            ),
            step(
                Op::Route(default),
                Flags::Create,
                format!("route add default via {LINK_LOCAL_GATEWAY} dev eth0"),
            ),
        ];
        let mut before = Vec::new();
        if let Some(ip6) = self.pods[k].ipv6 {
            // The CNI plugin in the pod: IPv6 on, DAD off on eth0 before it is up, forwarding
            // off (`allowIPForwarding` false); the /128, and every IPv6 route via the host
            // end's link-local address.
            let conf =
                |c: &str, leaf: &str, v| sysctl6(format!("/proc/sys/net/ipv6/conf/{c}/{leaf}"), v);
            before = vec![
                conf("all", "disable_ipv6", "0"),
                conf("default", "disable_ipv6", "0"),
                conf("lo", "disable_ipv6", "0"),
                conf("eth0", "accept_dad", "0"),
                conf("all", "forwarding", "0"),
            ];
            let address = Op::Address6 {
                dev: eth0(),
                ip: ip6,
                prefix: 128,
            };
            steps.push(step(
                address,
                Flags::Create,
                format!("addr add {ip6}/128 dev eth0"),
            ));
            let default = Route6 {
                dst: None,
                blackhole: false,
                gateway: Some(HOST_END_LINK_LOCAL),
                dev: Some(eth0()),
                proto: Proto::Boot,
                onlink: false,
            };
            let what = format!("route add default via {HOST_END_LINK_LOCAL} dev eth0");
            steps.push(step(Op::Route6(default), Flags::Create, what));
        }
        Wiring {
            place: self.pod_place(k),
            before,
            batches: vec![Batch {
                lookup: Lookup::EachMissing,
                steps,
            }],
            after: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
