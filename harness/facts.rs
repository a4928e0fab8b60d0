//! Cluster facts: read before the claims run, never asserted, written into every report.
//! Claims choose their expected values from these (encapsulation, MTU, blocks), never from a
//! hard-coded mode.

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How an IP pool carries traffic between nodes (Calico's `ipipMode`/`vxlanMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encapsulation {
    /// No encapsulation: plain pod IPs on the underlay.
    None,
    /// IP-in-IP (`ipipMode: Always`).
    #[serde(rename = "IPIP")]
    Ipip,
    /// IP-in-IP only between nodes of different subnets.
    #[serde(rename = "IPIPCrossSubnet")]
    IpipCrossSubnet,
    /// VXLAN (`vxlanMode: Always`).
    #[serde(rename = "VXLAN")]
    Vxlan,
    /// VXLAN only between nodes of different subnets.
    #[serde(rename = "VXLANCrossSubnet")]
    VxlanCrossSubnet,
}

impl Encapsulation {
    /// Calico's pod MTU for this encapsulation over an underlay of `underlay_mtu`
    /// (IPIP: 20 bytes of overhead, VXLAN: 50, none: 0).
    pub fn pod_mtu(self, underlay_mtu: u32) -> u32 {
        underlay_mtu.saturating_sub(self.overhead())
    }

    /// Bytes of encapsulation overhead per packet.
    pub fn overhead(self) -> u32 {
        match self {
            Encapsulation::None => 0,
            Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => 20,
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => 50,
        }
    }

    /// Bytes of overhead per packet when this encapsulation carries an IPv6 pool: VXLAN over
    /// IPv6 (`vxlan-v6.calico`) 70 (Felix's `vxlanV6MTUOverhead`), none 0; Calico has no IPIP
    /// for IPv6.
    pub fn overhead6(self) -> u32 {
        match self {
            Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => 70,
            _ => 0,
        }
    }

    /// The encapsulation actually used between two nodes, given whether they share a subnet.
    pub fn between(self, same_subnet: bool) -> Encapsulation {
        match (self, same_subnet) {
            (Encapsulation::IpipCrossSubnet | Encapsulation::VxlanCrossSubnet, true) => {
                Encapsulation::None
            }
            (Encapsulation::IpipCrossSubnet, false) => Encapsulation::Ipip,
            (Encapsulation::VxlanCrossSubnet, false) => Encapsulation::Vxlan,
            (m, _) => m,
        }
    }

    /// The name used in topology files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Encapsulation::None => "None",
            Encapsulation::Ipip => "IPIP",
            Encapsulation::IpipCrossSubnet => "IPIPCrossSubnet",
            Encapsulation::Vxlan => "VXLAN",
            Encapsulation::VxlanCrossSubnet => "VXLANCrossSubnet",
        }
    }
}

/// One IP pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub cidr: Ipv4Net,
    #[serde(rename = "blockSize")]
    pub block_size: u8,
    pub encapsulation: Encapsulation,
}

/// One IPv6 pool (a dual-stack cluster's second pool: `spec.cidr` of the IPv6 family).
/// Calico encapsulates IPv6 only in VXLAN (`vxlanMode`; over `vxlan-v6.calico`), never IPIP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ipv6Pool {
    pub cidr: Ipv6Net,
    /// Calico's default for IPv6 is 122.
    #[serde(rename = "blockSize")]
    pub block_size: u8,
    pub encapsulation: Encapsulation,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub name: String,
    /// The node's underlay address (Kubernetes InternalIP).
    pub address: Ipv4Addr,
    /// The underlay interface, when known (`ens192`, `eth0`).
    pub underlay: Option<String>,
    /// The prefix length of the underlay subnet, when known (decides CrossSubnet).
    pub underlay_prefix: Option<u8>,
    /// IPAM blocks affine to this node.
    pub blocks: Vec<Ipv4Net>,
    /// The node's VXLAN tunnel address, when VXLAN is in use.
    pub vxlan_tunnel_address: Option<Ipv4Addr>,
    /// The node's IPIP tunnel address, when IPIP is in use.
    pub ipip_tunnel_address: Option<Ipv4Addr>,
    /// The node's IPv6 underlay address (an IPv6 InternalIP), on a dual-stack cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<Ipv6Addr>,
    /// IPv6 IPAM blocks affine to this node (/122 by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_blocks: Vec<Ipv6Net>,
    /// The node's `vxlan-v6.calico` tunnel address, when an IPv6 pool uses VXLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_v6_tunnel_address: Option<Ipv6Addr>,
}

impl NodeFacts {
    /// The node's blocks of both families (its IPv6 ones only with `ipv6`: where IPv6 routes
    /// were read).
    pub fn blocks_of(&self, ipv6: bool) -> Vec<ipnet::IpNet> {
        let v6 = self
            .ipv6_blocks
            .iter()
            .filter(|_| ipv6)
            .map(|b| ipnet::IpNet::V6(*b));
        self.blocks
            .iter()
            .map(|b| ipnet::IpNet::V4(*b))
            .chain(v6)
            .collect()
    }

    /// Whether `other` shares this node's underlay subnet (CrossSubnet decides by this): the
    /// prefix either node states, else only the same address.
    pub fn same_subnet(&self, other: &NodeFacts) -> bool {
        let prefix = self.underlay_prefix.or(other.underlay_prefix).unwrap_or(32);
        Ipv4Net::new(self.address, prefix)
            .map(|n| n.contains(&other.address))
            .unwrap_or(false)
    }
}

/// One pod the suite deployed (or the topology file names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
    /// The pod's IPv6 address (`status.podIPs`), on a dual-stack cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// Container names, where the target knows them.
    pub containers: Vec<String>,
}

/// A pod the datastore says Calico networks (REC-*): on a node the run uses, not
/// `hostNetwork`, its IP in an IP pool. Any namespace, not only the suite's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
    /// Its IPv6 address in an IPv6 pool, on a dual-stack cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
}

impl Workload {
    /// `<namespace>/<name>`, as messages name a pod.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Everything read about the cluster before the claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// `lab (None)`, `topology /path`, `kube kind-calico`.
    pub target: String,
    /// `ClusterInformation.spec.calicoVersion`; `None` off a real cluster.
    pub calico_version: Option<String>,
    /// `ClusterInformation.spec.clusterType`.
    pub cluster_type: Option<String>,
    /// The Kubernetes API server's version (its `gitVersion`); `None` off a real cluster.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// How Calico was installed: `operator` (an `Installation` `default` was read) or `manifest`;
    /// `None` off a real cluster.
    #[serde(default)]
    pub install: Option<String>,
    /// `Installation.spec.calicoNetwork.linuxDataplane`, when the operator installed Calico.
    pub dataplane: Option<String>,
    /// The MTU Calico was configured with, when the cluster says so.
    pub configured_mtu: Option<u32>,
    /// Whether the node kernel has the ipip module (decides whether `tunl0` exists).
    pub ipip_module: Option<bool>,
    pub pools: Vec<Pool>,
    /// The enabled IPv6 pools; empty on an IPv4-only cluster (the IP6 claims are then not
    /// applicable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_pools: Vec<Ipv6Pool>,
    pub nodes: Vec<NodeFacts>,
    pub pods: Vec<PodFacts>,
    /// Pods of the article that do not run on this target, with why (`test-tools-remote` on a
    /// cluster with one schedulable node). Their per-pod claims are not applicable.
    #[serde(default)]
    pub absent_pods: BTreeMap<String, String>,
    /// Every pod the datastore says Calico networks on the nodes the run uses (REC-1..3
    /// compare them with the nodes' links and routes): the API's pods on a cluster, the lab's
    /// own, a topology file's when it says it lists every workload. `None` when the target
    /// does not know them all (the REC claims are then not applicable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<Workload>>,
}

impl Facts {
    /// A one-node lab's facts with no pods, for tests that need a whole `Facts`.
    #[cfg(test)]
    pub(crate) fn one_node_for_tests(target: &str) -> Facts {
        Facts {
            target: target.into(),
            calico_version: None,
            kubernetes_version: None,
            install: None,
            cluster_type: None,
            dataplane: None,
            configured_mtu: Some(1500),
            ipip_module: Some(false),
            pools: vec![Pool {
                cidr: "192.168.0.0/16".parse().unwrap(),
                block_size: 26,
                encapsulation: Encapsulation::None,
            }],
            nodes: vec![NodeFacts {
                name: "k8s-worker-1".into(),
                address: "10.12.22.2".parse().unwrap(),
                underlay: Some("ens192".into()),
                underlay_prefix: Some(16),
                blocks: vec!["192.168.1.0/26".parse().unwrap()],
                vxlan_tunnel_address: None,
                ipip_tunnel_address: None,
                ipv6_address: None,
                ipv6_blocks: Vec::new(),
                vxlan_v6_tunnel_address: None,
            }],
            ipv6_pools: Vec::new(),
            pods: Vec::new(),
            absent_pods: BTreeMap::new(),
            workloads: None,
        }
    }

    /// A pod by name.
    pub fn pod(&self, name: &str) -> Option<&PodFacts> {
        self.pods.iter().find(|p| p.name == name)
    }

    /// Why pod `name` does not run on this target, when the target says it does not.
    pub fn absence(&self, name: &str) -> Option<&str> {
        self.absent_pods.get(name).map(String::as_str)
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeFacts> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The pool that holds `ip`.
    pub fn pool_of(&self, ip: Ipv4Addr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.cidr.contains(&ip))
    }

    /// The IPv6 pool that holds `ip`.
    pub fn ipv6_pool_of(&self, ip: Ipv6Addr) -> Option<&Ipv6Pool> {
        self.ipv6_pools.iter().find(|p| p.cidr.contains(&ip))
    }

    /// The IP pools' CIDRs, both families.
    pub fn pool_cidrs(&self) -> Vec<ipnet::IpNet> {
        let v4 = self.pools.iter().map(|p| ipnet::IpNet::V4(p.cidr));
        v4.chain(self.ipv6_pools.iter().map(|p| ipnet::IpNet::V6(p.cidr)))
            .collect()
    }

    /// The tunnel devices the pools' encapsulations call for, each with its bytes of
    /// overhead: the IPv4 pools' `tunl0` / `vxlan.calico`, an IPv6 pool's `vxlan-v6.calico`.
    pub fn tunnel_devices(&self) -> Vec<(&'static str, u32)> {
        use crate::calico::{IPIP_DEVICE, VXLAN_DEVICE, VXLAN_V6_DEVICE};
        let mut out = Vec::new();
        let v4 = self.pools.iter().map(|p| (p.encapsulation, false));
        let v6 = self.ipv6_pools.iter().map(|p| (p.encapsulation, true));
        for (mode, ipv6) in v4.chain(v6) {
            let device = match (mode, ipv6) {
                (Encapsulation::None, _) => continue,
                (Encapsulation::Ipip | Encapsulation::IpipCrossSubnet, true) => continue,
                (Encapsulation::Ipip | Encapsulation::IpipCrossSubnet, false) => {
                    (IPIP_DEVICE, mode.overhead())
                }
                (_, false) => (VXLAN_DEVICE, mode.overhead()),
                (_, true) => (VXLAN_V6_DEVICE, mode.overhead6()),
            };
            if !out.contains(&device) {
                out.push(device);
            }
        }
        out
    }

    /// The encapsulation of the pool (of either family) holding `block`.
    pub fn block_encapsulation(&self, block: ipnet::IpNet) -> Option<Encapsulation> {
        match block {
            ipnet::IpNet::V4(b) => self.pool_of(b.network()).map(|p| p.encapsulation),
            ipnet::IpNet::V6(b) => self.ipv6_pool_of(b.network()).map(|p| p.encapsulation),
        }
    }

    /// Whether the cluster has an IPv6 pool (dual stack): the IP6 claims apply.
    pub fn dual_stack(&self) -> bool {
        !self.ipv6_pools.is_empty()
    }

    /// The workloads the datastore puts on `node` (none when it lists none).
    pub fn workloads_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Workload> + 'a {
        self.workloads
            .iter()
            .flatten()
            .filter(move |w| w.node == node)
    }

    /// Pods on `node`.
    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a PodFacts> + 'a {
        self.pods.iter().filter(move |p| p.node == node)
    }

    /// A short multi-line summary for reports.
    pub fn summary(&self) -> String {
        let mut s = format!("target: {}\n", self.target);
        let how: Vec<&str> = [&self.cluster_type, &self.install]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        s += &format!(
            "calico: {} ({}), dataplane: {}{}\n",
            self.calico_version
                .as_deref()
                .unwrap_or("no version (not a cluster: nothing to read it from)"),
            if how.is_empty() {
                "-".to_string()
            } else {
                how.join(", ")
            },
            self.dataplane.as_deref().unwrap_or("-"),
            self.kubernetes_version
                .as_deref()
                .map(|v| format!(", kubernetes {v}"))
                .unwrap_or_default(),
        );
        for p in &self.pools {
            s += &format!(
                "pool {} /{} blocks, encapsulation {}\n",
                p.cidr,
                p.block_size,
                p.encapsulation.as_str()
            );
        }
        for p in &self.ipv6_pools {
            s += &format!(
                "IPv6 pool {} /{} blocks, encapsulation {}\n",
                p.cidr,
                p.block_size,
                p.encapsulation.as_str()
            );
        }
        for n in &self.nodes {
            let blocks: Vec<String> = (n.blocks.iter().map(ToString::to_string))
                .chain(n.ipv6_blocks.iter().map(ToString::to_string))
                .collect();
            let v6 = n.ipv6_address.map(|a| format!(" {a}")).unwrap_or_default();
            s += &format!(
                "node {} {}{v6} underlay {} blocks [{}]\n",
                n.name,
                n.address,
                n.underlay.as_deref().unwrap_or("?"),
                blocks.join(", ")
            );
        }
        for p in &self.pods {
            let v6 = p.ipv6.map(|a| format!(" {a}")).unwrap_or_default();
            s += &format!(
                "pod {}/{} {}{v6} on {}\n",
                p.namespace, p.name, p.ip, p.node
            );
        }
        for (pod, why) in &self.absent_pods {
            s += &format!("pod {pod} not running: {why}\n");
        }
        s
    }
}
