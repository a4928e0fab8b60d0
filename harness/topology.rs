//! The topology file: the attach contract between the suite and namespaces someone else built.
//! The lab writes one for what it built, so lab and topology runs share one code path after
//! construction.
//!
//! ```json
//! {
//!   "pools":  [{"cidr": "192.168.0.0/16", "blockSize": 26, "encapsulation": "None"}],
//!   "nodes":  [{"name": "k8s-worker-1", "netns": "/run/netns/w1", "address": "10.12.22.2",
//!               "underlay": "ens192", "blocks": ["192.168.1.0/26"]}],
//!   "pods":   [{"namespace": "default", "name": "c2c-network-demo", "node": "k8s-worker-1",
//!               "netns": "/run/netns/p1", "ip": "192.168.1.10"}]
//! }
//! ```
//!
//! Dual stack: a second pool with an IPv6 `cidr` (`{"cidr": "fd00:10:244::/64", "blockSize":
//! 122, "encapsulation": "None"}`), and on nodes `ipv6Address`, `ipv6Blocks` (and
//! `vxlanV6TunnelAddress` for a VXLAN IPv6 pool), on pods `ipv6`.

use crate::calico::REMOTE_POD;
use crate::error::{Error, Result};
use crate::facts::{Encapsulation, Facts, Ipv6Pool, NodeFacts, PodFacts, Pool, Workload};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub pools: Vec<TopologyPool>,
    pub nodes: Vec<TopologyNode>,
    pub pods: Vec<TopologyPod>,
    /// The file lists every workload (every pod Calico networks) on its nodes, not only the
    /// article's: REC-1..3 compare the nodes' links and routes with `pods`. Without it those
    /// claims are not applicable. The lab's own file says `true`.
    #[serde(
        rename = "listsEveryWorkload",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub lists_every_workload: bool,
}

/// An IP pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyPool {
    /// An IPv4 pool, or (dual stack) an IPv6 one.
    pub cidr: IpNet,
    #[serde(rename = "blockSize")]
    pub block_size: u8,
    /// `None`, `IPIP`, `VXLAN` (or the CrossSubnet forms).
    pub encapsulation: Encapsulation,
}

/// A node: its network namespace and underlay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyNode {
    pub name: String,
    /// Any path `nsenter --net=` accepts.
    pub netns: PathBuf,
    /// The underlay address.
    pub address: Ipv4Addr,
    /// The underlay interface name inside `netns`.
    pub underlay: String,
    /// IPAM blocks affine to the node.
    pub blocks: Vec<Ipv4Net>,
    /// The node's VXLAN tunnel address (VXLAN pools).
    #[serde(
        rename = "vxlanTunnelAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_address: Option<Ipv4Addr>,
    /// The node's IPv6 underlay address (dual stack).
    #[serde(
        rename = "ipv6Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<Ipv6Addr>,
    /// IPv6 IPAM blocks affine to the node (dual stack).
    #[serde(rename = "ipv6Blocks", default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_blocks: Vec<Ipv6Net>,
    /// The node's `vxlan-v6.calico` address (VXLAN IPv6 pools).
    #[serde(
        rename = "vxlanV6TunnelAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_v6_tunnel_address: Option<Ipv6Addr>,
}

/// A pod: its network namespace, and optionally one namespace path per container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyPod {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub netns: PathBuf,
    pub ip: Ipv4Addr,
    /// The pod's IPv6 address (dual stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// Container name -> the netns path of a process of that container (`/proc/PID/ns/net`).
    /// Needed by C2C-1; without it C2C-1 is reported not applicable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, PathBuf>,
}

impl Topology {
    /// Reads and checks a topology file. Errors name the file and the field at fault.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::File {
            path: path.to_path_buf(),
            problem: format!("cannot read: {e}"),
        })?;
        let topo: Topology = serde_json::from_str(&text).map_err(|e| Error::File {
            path: path.to_path_buf(),
            problem: format!("not a topology file: {e}"),
        })?;
        topo.validate().map_err(|problem| Error::File {
            path: path.to_path_buf(),
            problem,
        })?;
        Ok(topo)
    }

    /// Writes the file (the lab does this for what it built).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::parse(path.display().to_string(), e.to_string()))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Consistency checks that serde cannot make.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !self.pools.iter().any(|p| p.cidr.addr().is_ipv4()) {
            return Err("field `pools`: at least one IPv4 pool is needed".into());
        }
        for (i, p) in self.pools.iter().enumerate() {
            let (prefix, max) = (p.cidr.prefix_len(), p.cidr.max_prefix_len());
            if p.block_size > max || p.block_size < prefix {
                return Err(format!(
                    "field `pools[{i}].blockSize`: {} does not fit pool {} (a block is a \
                     /{prefix}../{max} inside it)",
                    p.block_size, p.cidr
                ));
            }
        }
        if self.nodes.is_empty() {
            return Err("field `nodes`: at least one node is needed".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.name.is_empty() {
                return Err(format!("field `nodes[{i}].name` is empty"));
            }
            if self.nodes.iter().filter(|m| m.name == n.name).count() > 1 {
                return Err(format!(
                    "field `nodes[{i}].name`: node `{}` is listed twice",
                    n.name
                ));
            }
        }
        for (i, p) in self.pods.iter().enumerate() {
            if !self.nodes.iter().any(|n| n.name == p.node) {
                return Err(format!(
                    "field `pods[{i}].node`: pod `{}` names node `{}`, which is not in `nodes`",
                    p.name, p.node
                ));
            }
            if !self
                .pools
                .iter()
                .any(|pool| pool.cidr.contains(&IpAddr::V4(p.ip)))
            {
                return Err(format!(
                    "field `pods[{i}].ip`: {} of pod `{}` is in no pool",
                    p.ip, p.name
                ));
            }
            if let Some(v6) = p.ipv6 {
                self.validate_pod_ipv6(i, &p.name, &p.node, v6)?;
            }
            if self
                .pods
                .iter()
                .filter(|q| q.name == p.name && q.namespace == p.namespace)
                .count()
                > 1
            {
                return Err(format!(
                    "field `pods[{i}].name`: pod `{}/{}` is listed twice",
                    p.namespace, p.name
                ));
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for (j, b) in n.ipv6_blocks.iter().enumerate() {
                let field = format!("field `nodes[{i}].ipv6Blocks[{j}]`");
                let Some(pool) = self.ipv6_pools().find(|p| p.cidr.contains(b)) else {
                    return Err(format!(
                        "{field}: {b} of node `{}` is in no IPv6 pool",
                        n.name
                    ));
                };
                if b.prefix_len() != pool.block_size {
                    return Err(format!(
                        "{field}: {b} is a /{} but pool {} has blockSize {}",
                        b.prefix_len(),
                        pool.cidr,
                        pool.block_size
                    ));
                }
            }
        }
        Ok(())
    }

    /// A pod's IPv6 address is in an IPv6 pool, and in one of its node's IPv6 blocks when the
    /// node lists them.
    fn validate_pod_ipv6(
        &self,
        i: usize,
        pod: &str,
        node: &str,
        ip: Ipv6Addr,
    ) -> std::result::Result<(), String> {
        if !self.ipv6_pools().any(|pool| pool.cidr.contains(&ip)) {
            return Err(format!(
                "field `pods[{i}].ipv6`: {ip} of pod `{pod}` is in no IPv6 pool"
            ));
        }
        let blocks = (self.nodes.iter().find(|n| n.name == node))
            .map(|n| n.ipv6_blocks.as_slice())
            .unwrap_or_default();
        if !blocks.is_empty() && !blocks.iter().any(|b| b.contains(&ip)) {
            return Err(format!(
                "field `pods[{i}].ipv6`: {ip} of pod `{pod}` is in none of node `{node}`'s \
                 ipv6Blocks"
            ));
        }
        Ok(())
    }

    /// The IPv6 pools.
    pub fn ipv6_pools(&self) -> impl Iterator<Item = Ipv6Pool> + '_ {
        self.pools.iter().filter_map(|p| match p.cidr {
            IpNet::V6(cidr) => Some(Ipv6Pool {
                cidr,
                block_size: p.block_size,
                encapsulation: p.encapsulation,
            }),
            IpNet::V4(_) => None,
        })
    }

    /// The facts this topology states (what the lab built, or what the file's author says).
    pub fn facts(&self, target: impl Into<String>) -> Facts {
        Facts {
            target: target.into(),
            calico_version: None,
            cluster_type: None,
            dataplane: None,
            configured_mtu: None,
            ipip_module: None,
            kubernetes_version: None,
            install: None,
            pools: self
                .pools
                .iter()
                .filter_map(|p| match p.cidr {
                    IpNet::V4(cidr) => Some(Pool {
                        cidr,
                        block_size: p.block_size,
                        encapsulation: p.encapsulation,
                    }),
                    IpNet::V6(_) => None,
                })
                .collect(),
            ipv6_pools: self.ipv6_pools().collect(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeFacts {
                    name: n.name.clone(),
                    address: n.address,
                    underlay: Some(n.underlay.clone()),
                    underlay_prefix: None,
                    blocks: n.blocks.clone(),
                    vxlan_tunnel_address: n.vxlan_tunnel_address,
                    ipip_tunnel_address: None,
                    ipv6_address: n.ipv6_address,
                    ipv6_blocks: n.ipv6_blocks.clone(),
                    vxlan_v6_tunnel_address: n.vxlan_v6_tunnel_address,
                })
                .collect(),
            pods: self
                .pods
                .iter()
                .map(|p| PodFacts {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    node: p.node.clone(),
                    ip: p.ip,
                    ipv6: p.ipv6,
                    containers: p.containers.keys().cloned().collect(),
                })
                .collect(),
            absent_pods: self
                .pods
                .iter()
                .all(|p| p.name != REMOTE_POD)
                .then(|| {
                    (
                        REMOTE_POD.to_string(),
                        format!("the topology file lists no pod {REMOTE_POD} (a dataplane with one node)"),
                    )
                })
                .into_iter()
                .collect(),
            workloads: self.lists_every_workload.then(|| {
                self.pods
                    .iter()
                    .map(|p| Workload {
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                        node: p.node.clone(),
                        ip: p.ip,
                        ipv6: p.ipv6,
                    })
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod rec_tests {
    use super::*;

    const FILE: &str = r#"{
      "pools": [{"cidr": "192.168.0.0/16", "blockSize": 26, "encapsulation": "None"}],
      "nodes": [{"name": "w1", "netns": "/run/netns/w1", "address": "10.12.22.2",
                 "underlay": "ens192", "blocks": ["192.168.1.0/26"]}],
      "pods": [{"namespace": "default", "name": "test-tools", "node": "w1",
                "netns": "/run/netns/p1", "ip": "192.168.1.12"}]LISTS
    }"#;

    /// `listsEveryWorkload: true` makes the file's pods the datastore's workloads (REC-*);
    /// without it the target lists none, and writing the file back keeps the field as it was.
    #[test]
    fn lists_every_workload_decides_whether_the_pods_are_the_workloads() {
        let without: Topology = serde_json::from_str(&FILE.replace("LISTS", "")).unwrap();
        assert_eq!(without.facts("t").workloads, None);
        assert!(
            !serde_json::to_string(&without)
                .unwrap()
                .contains("listsEveryWorkload")
        );
        let with = FILE.replace("LISTS", r#", "listsEveryWorkload": true"#);
        let with: Topology = serde_json::from_str(&with).unwrap();
        let workloads = with.facts("t").workloads.unwrap();
        assert_eq!(workloads.len(), 1);
        assert_eq!(workloads[0].id(), "default/test-tools");
        assert!(
            serde_json::to_string(&with)
                .unwrap()
                .contains(r#""listsEveryWorkload":true"#)
        );
    }
}

#[cfg(test)]
mod ipv6_tests {
    use super::*;

    const FILE: &str = r#"{
      "pools": [{"cidr": "192.168.0.0/16", "blockSize": 26, "encapsulation": "None"},
                {"cidr": "fd00:10:244::/64", "blockSize": BS, "encapsulation": "None"}],
      "nodes": [{"name": "w1", "netns": "/run/netns/w1", "address": "10.12.22.2",
                 "ipv6Address": "fd00:10:12::2", "underlay": "ens192",
                 "blocks": ["192.168.1.0/26"], "ipv6Blocks": ["fd00:10:244::1:0/122"]}],
      "pods": [{"namespace": "default", "name": "test-tools", "node": "w1",
                "netns": "/run/netns/p1", "ip": "192.168.1.12", "ipv6": "V6"}]
    }"#;

    fn load(block_size: &str, v6: &str) -> std::result::Result<Topology, String> {
        let text = FILE.replace("BS", block_size).replace("V6", v6);
        let topo: Topology = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        topo.validate()?;
        Ok(topo)
    }

    /// A dual-stack file: the IPv6 pool goes to the facts' `ipv6_pools`, the pod's and node's
    /// IPv6 facts are carried, and the IPv4 pools stay IPv4 only.
    #[test]
    fn a_dual_stack_file_states_its_ipv6_facts() {
        let facts = load("122", "fd00:10:244::1:c").unwrap().facts("t");
        assert_eq!(facts.pools.len(), 1);
        assert_eq!(facts.ipv6_pools.len(), 1);
        assert_eq!(facts.ipv6_pools[0].block_size, 122);
        assert!(facts.dual_stack());
        assert_eq!(
            facts.pods[0].ipv6,
            Some("fd00:10:244::1:c".parse().unwrap())
        );
        assert_eq!(
            facts.nodes[0].ipv6_address,
            Some("fd00:10:12::2".parse().unwrap())
        );
        assert_eq!(facts.nodes[0].ipv6_blocks.len(), 1);
    }

    /// An IPv6 pod address outside every IPv6 pool, or outside its node's IPv6 blocks, and an
    /// IPv6 pool whose block size its node's blocks do not have, fail naming the field.
    #[test]
    fn bad_ipv6_facts_name_the_field() {
        let err = load("122", "fd00:99::1").unwrap_err();
        assert_eq!(
            err,
            "field `pods[0].ipv6`: fd00:99::1 of pod `test-tools` is in no IPv6 pool"
        );
        let err = load("122", "fd00:10:244::2:c").unwrap_err();
        assert!(
            err.starts_with("field `pods[0].ipv6`: fd00:10:244::2:c of pod `test-tools` is in none of node `w1`'s"),
            "{err}"
        );
        let err = load("120", "fd00:10:244::1:c").unwrap_err();
        assert_eq!(
            err,
            "field `nodes[0].ipv6Blocks[0]`: fd00:10:244::1:0/122 is a /122 but pool \
             fd00:10:244::/64 has blockSize 120"
        );
        let err = load("48", "fd00:10:244::1:c").unwrap_err();
        assert!(
            err.starts_with("field `pools[1].blockSize`: 48 does not fit pool fd00:10:244::/64"),
            "{err}"
        );
    }
}
