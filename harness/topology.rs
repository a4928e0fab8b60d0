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

use crate::calico::REMOTE_POD;
use crate::error::{Error, Result};
use crate::facts::{Encapsulation, Facts, NodeFacts, PodFacts, Pool, Workload};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
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
    pub cidr: Ipv4Net,
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
        if self.pools.is_empty() {
            return Err("field `pools`: at least one pool is needed".into());
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
            if !self.pools.iter().any(|pool| pool.cidr.contains(&p.ip)) {
                return Err(format!(
                    "field `pods[{i}].ip`: {} of pod `{}` is in no pool",
                    p.ip, p.name
                ));
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
        Ok(())
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
                .map(|p| Pool {
                    cidr: p.cidr,
                    block_size: p.block_size,
                    encapsulation: p.encapsulation,
                })
                .collect(),
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
