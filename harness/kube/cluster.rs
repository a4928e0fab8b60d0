//! Cluster facts from the API: Calico's own objects (ClusterInformation, IPPools,
//! BlockAffinities, the operator's Installation) and the Nodes, turned into
//! [`crate::facts::Facts`] by one pure function, [`facts_from_objects`], tested on JSON in the
//! shape Calico's CRDs define (`fixtures/kube/calico/`, provenance in its README).

use crate::error::{Error, Result};
use crate::facts::{Encapsulation, Facts, Ipv6Pool, NodeFacts, Pool};
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The operator's group.
pub const OPERATOR_GROUP: &str = "operator.tigera.io";
/// Node annotation: the node's address with its underlay prefix (`172.18.0.3/16`).
pub const ANNOTATION_IPV4_ADDRESS: &str = "projectcalico.org/IPv4Address";
/// Node annotation: the IPIP tunnel address (`tunl0`).
pub const ANNOTATION_IPIP_TUNNEL: &str = "projectcalico.org/IPv4IPIPTunnelAddr";
/// Node annotation: the VXLAN tunnel address (`vxlan.calico`).
pub const ANNOTATION_VXLAN_TUNNEL: &str = "projectcalico.org/IPv4VXLANTunnelAddr";
/// Calico's default IPv4 block size.
pub const DEFAULT_BLOCK_SIZE: u8 = 26;
/// Calico's default IPv6 block size.
pub const DEFAULT_IPV6_BLOCK_SIZE: u8 = 122;
/// Node annotation: the node's IPv6 address with its prefix (dual stack).
pub const ANNOTATION_IPV6_ADDRESS: &str = "projectcalico.org/IPv6Address";
/// Node annotation: the `vxlan-v6.calico` tunnel address.
pub const ANNOTATION_VXLAN_V6_TUNNEL: &str = "projectcalico.org/IPv6VXLANTunnelAddr";

/// Where a cluster serves Calico's resources.
///
/// `projectcalico.org/v3` is Calico's API: served by the aggregated Calico API server
/// (operator installs) or, since the native-v3 CRDs (tech preview in v3.32), by CRDs of that
/// group, in which case `crd.projectcalico.org/v1` may be absent or, after a migration, stale.
/// `crd.projectcalico.org/v1` is the storage the manifest install (the article's) and the API
/// server use. The kube target asks v3 first and falls back to v1 when v3 is not served, not
/// reachable (the API server down) or not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalicoApi {
    /// `projectcalico.org/v3`.
    V3,
    /// `crd.projectcalico.org/v1`.
    CrdV1,
}

impl CalicoApi {
    /// The order in which a run tries them.
    pub const PREFERENCE: [CalicoApi; 2] = [CalicoApi::V3, CalicoApi::CrdV1];

    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            CalicoApi::V3 => "projectcalico.org",
            CalicoApi::CrdV1 => "crd.projectcalico.org",
        }
    }

    /// The version.
    pub fn version(self) -> &'static str {
        match self {
            CalicoApi::V3 => "v3",
            CalicoApi::CrdV1 => "v1",
        }
    }

    /// A cluster-scoped Calico resource of this group and version.
    pub fn resource(self, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group(), self.version(), kind),
            plural,
        )
    }

    /// `<plural>.<group>/<version>`, for messages.
    pub fn describe(self, plural: &str) -> String {
        format!("{plural}.{}/{}", self.group(), self.version())
    }

    /// `clusterinformations`.
    pub fn cluster_information(self) -> ApiResource {
        self.resource("ClusterInformation", "clusterinformations")
    }

    /// `ippools`.
    pub fn ip_pool(self) -> ApiResource {
        self.resource("IPPool", "ippools")
    }

    /// `blockaffinities`.
    pub fn block_affinity(self) -> ApiResource {
        self.resource("BlockAffinity", "blockaffinities")
    }
}

/// `installations.operator.tigera.io/v1`.
pub fn installation_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(OPERATOR_GROUP, "v1", "Installation"),
        "installations",
    )
}

/// Everything read from the API that the facts come from.
#[derive(Debug, Clone, Default)]
pub struct CalicoObjects {
    /// Where Calico's objects were read (`None` in tests that build the objects by hand).
    pub api: Option<CalicoApi>,
    /// `ClusterInformation` `default`.
    pub cluster_information: Option<DynamicObject>,
    /// All IP pools.
    pub ip_pools: Vec<DynamicObject>,
    /// All block affinities.
    pub block_affinities: Vec<DynamicObject>,
    /// `Installation` `default`, when the operator installed Calico.
    pub installation: Option<DynamicObject>,
    /// All nodes.
    pub nodes: Vec<Node>,
}

fn spec(o: &DynamicObject) -> &Value {
    o.data.get("spec").unwrap_or(&Value::Null)
}

fn name_of(o: &DynamicObject) -> &str {
    o.metadata.name.as_deref().unwrap_or("<unnamed>")
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Calico's `ipipMode`/`vxlanMode` pair as one [`Encapsulation`]. Missing modes are `Never`.
pub fn encapsulation_of(
    ipip_mode: Option<&str>,
    vxlan_mode: Option<&str>,
) -> Result<Encapsulation> {
    let norm = |m: Option<&str>| m.filter(|s| !s.is_empty()).unwrap_or("Never").to_string();
    let (ipip, vxlan) = (norm(ipip_mode), norm(vxlan_mode));
    match (ipip.as_str(), vxlan.as_str()) {
        ("Never", "Never") => Ok(Encapsulation::None),
        ("Always", "Never") => Ok(Encapsulation::Ipip),
        ("CrossSubnet", "Never") => Ok(Encapsulation::IpipCrossSubnet),
        ("Never", "Always") => Ok(Encapsulation::Vxlan),
        ("Never", "CrossSubnet") => Ok(Encapsulation::VxlanCrossSubnet),
        (i, v) => Err(Error::Kube(format!(
            "unsupported IP pool modes ipipMode={i} vxlanMode={v} (Calico allows at most one of them, \
             each Always, CrossSubnet or Never)"
        ))),
    }
}

/// The enabled IPv4 pools (IPv6 pools and `disabled: true` pools are left out).
pub fn pools_from(objects: &[DynamicObject]) -> Result<Vec<Pool>> {
    let mut out = Vec::new();
    for o in objects {
        let s = spec(o);
        let name = name_of(o);
        if s.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let cidr = str_at(s, &["cidr"])
            .ok_or_else(|| Error::Kube(format!("IPPool {name}: spec.cidr is missing")))?;
        if cidr.contains(':') {
            continue;
        }
        let cidr: Ipv4Net = cidr
            .parse()
            .map_err(|e| Error::Kube(format!("IPPool {name}: spec.cidr `{cidr}`: {e}")))?;
        let block_size = block_size_of(s, name, DEFAULT_BLOCK_SIZE, 32)?;
        let encapsulation = encapsulation_of(str_at(s, &["ipipMode"]), str_at(s, &["vxlanMode"]))
            .map_err(|e| Error::Kube(format!("IPPool {name}: {e}")))?;
        out.push(Pool {
            cidr: cidr.trunc(),
            block_size,
            encapsulation,
        });
    }
    Ok(out)
}

/// An IPPool's `spec.blockSize`: `default` when unset, else 0..=`max` (32 for IPv4, 128 for
/// IPv6).
fn block_size_of(s: &Value, name: &str, default: u8, max: u8) -> Result<u8> {
    match s.get("blockSize") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|b| u8::try_from(b).ok())
            .filter(|b| *b <= max)
            .ok_or_else(|| {
                Error::Kube(format!("IPPool {name}: spec.blockSize {v} is not 0-{max}"))
            }),
    }
}

/// The enabled IPv6 pools (dual stack). Calico encapsulates IPv6 in VXLAN only: an IPv6
/// pool's `ipipMode` is ignored, as Calico ignores it.
pub fn ipv6_pools_from(objects: &[DynamicObject]) -> Result<Vec<Ipv6Pool>> {
    let mut out = Vec::new();
    for o in objects {
        let s = spec(o);
        let name = name_of(o);
        let Some(cidr) = str_at(s, &["cidr"]).filter(|c| c.contains(':')) else {
            continue;
        };
        if s.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let cidr: Ipv6Net = cidr
            .parse()
            .map_err(|e| Error::Kube(format!("IPPool {name}: spec.cidr `{cidr}`: {e}")))?;
        let block_size = block_size_of(s, name, DEFAULT_IPV6_BLOCK_SIZE, 128)?;
        let encapsulation = encapsulation_of(None, str_at(s, &["vxlanMode"]))
            .map_err(|e| Error::Kube(format!("IPPool {name}: {e}")))?;
        out.push(Ipv6Pool {
            cidr: cidr.trunc(),
            block_size,
            encapsulation,
        });
    }
    Ok(out)
}

/// The confirmed IPv6 blocks per node name.
pub fn ipv6_blocks_by_node(objects: &[DynamicObject]) -> Result<BTreeMap<String, Vec<Ipv6Net>>> {
    affine_blocks(objects, true)
}

/// Whether a block affinity counts: state `confirmed` and not marked deleted (`deleted` is the
/// string `"false"` in the v1 CRD and a boolean in `projectcalico.org/v3`).
fn affinity_counts(s: &Value) -> bool {
    let deleted = match s.get("deleted") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(t)) => t.eq_ignore_ascii_case("true"),
        _ => false,
    };
    str_at(s, &["state"]) == Some("confirmed") && !deleted
}

/// The confirmed IPv4 blocks per node name.
pub fn blocks_by_node(objects: &[DynamicObject]) -> Result<BTreeMap<String, Vec<Ipv4Net>>> {
    affine_blocks(objects, false)
}

/// The confirmed blocks of one family (IPv6 when `v6`) per node name, each once, sorted. A
/// confirmed affinity without `spec.node` or `spec.cidr` is an error naming it.
fn affine_blocks<N>(objects: &[DynamicObject], v6: bool) -> Result<BTreeMap<String, Vec<N>>>
where
    N: std::str::FromStr + Ord,
    N::Err: std::fmt::Display,
{
    let mut out: BTreeMap<String, Vec<N>> = BTreeMap::new();
    for o in objects {
        let s = spec(o);
        if !affinity_counts(s) {
            continue;
        }
        let name = name_of(o);
        let (Some(node), Some(cidr)) = (str_at(s, &["node"]), str_at(s, &["cidr"])) else {
            return Err(Error::Kube(format!(
                "BlockAffinity {name}: spec.node or spec.cidr is missing"
            )));
        };
        if cidr.contains(':') != v6 {
            continue;
        }
        let cidr: N = cidr
            .parse()
            .map_err(|e| Error::Kube(format!("BlockAffinity {name}: spec.cidr `{cidr}`: {e}")))?;
        let blocks = out.entry(node.to_string()).or_default();
        if !blocks.contains(&cidr) {
            blocks.push(cidr);
        }
    }
    for blocks in out.values_mut() {
        blocks.sort();
    }
    Ok(out)
}

/// A node's facts from its Node object: InternalIP (IPv4), Calico's annotations for the
/// underlay prefix and the tunnel addresses. `blocks` are filled by the caller.
pub fn node_facts(node: &Node) -> Result<NodeFacts> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let annotations = node.metadata.annotations.clone().unwrap_or_default();
    let calico_address: Option<Ipv4Net> = annotations
        .get(ANNOTATION_IPV4_ADDRESS)
        .and_then(|a| a.parse().ok());
    let internal_ip = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok());
    let address = internal_ip
        .or(calico_address.map(|a| a.addr()))
        .ok_or_else(|| {
            Error::Kube(format!(
                "node {name} has no IPv4 InternalIP and no {ANNOTATION_IPV4_ADDRESS} annotation"
            ))
        })?;
    let underlay_prefix = calico_address
        .filter(|a| a.addr() == address)
        .map(|a| a.prefix_len());
    let tunnel = |key: &str| {
        annotations
            .get(key)
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
    };
    let internal_v6 = (node.status.as_ref())
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv6Addr>().ok());
    let annotated_v6 = (annotations.get(ANNOTATION_IPV6_ADDRESS))
        .and_then(|a| a.parse::<Ipv6Net>().ok())
        .map(|a| a.addr());
    Ok(NodeFacts {
        name,
        address,
        underlay: None,
        underlay_prefix,
        blocks: Vec::new(),
        vxlan_tunnel_address: tunnel(ANNOTATION_VXLAN_TUNNEL),
        ipip_tunnel_address: tunnel(ANNOTATION_IPIP_TUNNEL),
        ipv6_address: internal_v6.or(annotated_v6),
        ipv6_blocks: Vec::new(),
        vxlan_v6_tunnel_address: (annotations.get(ANNOTATION_VXLAN_V6_TUNNEL))
            .and_then(|a| a.parse::<Ipv6Addr>().ok()),
    })
}

/// The facts a kube run starts from (no pods yet): Calico version and cluster type, dataplane
/// and MTU from the Installation, the enabled IPv4 pools, and every node that has a confirmed
/// block (plus the nodes named in `also_nodes`, such as nodes hosting the suite's pods).
/// `target` is the report's target line (`kube kind-calico`).
pub fn facts_from_objects(
    target: &str,
    objects: &CalicoObjects,
    also_nodes: &[&str],
) -> Result<Facts> {
    let served_by = |plural: &str| {
        objects
            .api
            .map(|a| format!(" ({})", a.describe(plural)))
            .unwrap_or_default()
    };
    let info = objects.cluster_information.as_ref().ok_or_else(|| {
        Error::Kube(format!(
            "Calico is not installed: ClusterInformation `default`{} does not exist",
            served_by("clusterinformations")
        ))
    })?;
    let info_spec = spec(info);
    let pools = pools_from(&objects.ip_pools)?;
    if pools.is_empty() {
        return Err(Error::Kube(format!(
            "Calico has no enabled IPv4 IPPool{}",
            served_by("ippools")
        )));
    }
    let ipv6_pools = ipv6_pools_from(&objects.ip_pools)?;
    let blocks = blocks_by_node(&objects.block_affinities)?;
    let ipv6_blocks = ipv6_blocks_by_node(&objects.block_affinities)?;
    let mut nodes = Vec::new();
    for node in &objects.nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let node_blocks = blocks.get(name);
        if node_blocks.is_none() && !also_nodes.contains(&name) {
            continue;
        }
        let mut facts = node_facts(node)?;
        facts.blocks = node_blocks.cloned().unwrap_or_default();
        facts.ipv6_blocks = ipv6_blocks.get(name).cloned().unwrap_or_default();
        nodes.push(facts);
    }
    let (dataplane, configured_mtu) = match &objects.installation {
        Some(inst) => {
            let s = spec(inst);
            let dataplane = str_at(s, &["calicoNetwork", "linuxDataplane"])
                .map(str::to_string)
                .or_else(|| Some("Iptables".to_string()));
            let mtu = s
                .get("calicoNetwork")
                .and_then(|n| n.get("mtu"))
                .and_then(Value::as_u64)
                .or_else(|| {
                    inst.data
                        .get("status")
                        .and_then(|st| st.get("mtu"))
                        .and_then(Value::as_u64)
                })
                .and_then(|m| u32::try_from(m).ok())
                .filter(|m| *m > 0);
            (dataplane, mtu)
        }
        None => (None, None),
    };
    Ok(Facts {
        target: target.to_string(),
        calico_version: str_at(info_spec, &["calicoVersion"]).map(str::to_string),
        cluster_type: str_at(info_spec, &["clusterType"]).map(str::to_string),
        dataplane,
        configured_mtu,
        ipip_module: None,
        // Read from the API server by `connect`; the setup carries it in.
        kubernetes_version: None,
        install: Some(
            if objects.installation.is_some() {
                "operator"
            } else {
                "manifest"
            }
            .to_string(),
        ),
        pools,
        ipv6_pools,
        nodes,
        pods: Vec::new(),
        absent_pods: BTreeMap::new(),
        // Filled by the setup from the API's pods on the run's nodes.
        workloads: None,
    })
}

/// The underlay interface and prefix on a node: the interface of `ip -j -4 addr` output that
/// holds `address`.
pub fn underlay_from_ip_addr(json: &str, address: Ipv4Addr) -> Option<(String, u8)> {
    let value: Value = serde_json::from_str(json).ok()?;
    value.as_array()?.iter().find_map(|link| {
        let name = link.get("ifname")?.as_str()?;
        link.get("addr_info")?.as_array()?.iter().find_map(|a| {
            let local: Ipv4Addr = a.get("local")?.as_str()?.parse().ok()?;
            let prefix = u8::try_from(a.get("prefixlen")?.as_u64()?).ok()?;
            (local == address).then(|| (name.to_string(), prefix))
        })
    })
}

/// Reads a `kubectl get -o json` list (`{"items": [...]}`) or a single object into
/// [`DynamicObject`]s.
pub fn dynamic_objects_from_json(text: &str, source: &str) -> Result<Vec<DynamicObject>> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Error::parse(source, format!("not JSON: {e}")))?;
    let items = match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![value],
    };
    items
        .into_iter()
        .map(|i| serde_json::from_value(i).map_err(|e| Error::parse(source, e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> String {
        crate::fixtures::read_text(path)
    }

    fn objects(path: &str) -> Vec<DynamicObject> {
        dynamic_objects_from_json(&read(path), path).unwrap()
    }

    fn kind_objects(pools: &str, installation: bool) -> CalicoObjects {
        let list: Value = serde_json::from_str(&read("kube/calico/nodes-kind.json")).unwrap();
        let nodes: Vec<Node> = serde_json::from_value(list["items"].clone()).unwrap();
        CalicoObjects {
            api: None,
            cluster_information: objects("kube/calico/clusterinformation-default.json").pop(),
            ip_pools: objects(pools),
            block_affinities: objects("kube/calico/blockaffinities.json"),
            installation: installation
                .then(|| objects("kube/calico/installation-default.json").pop())
                .flatten(),
            nodes,
        }
    }

    #[test]
    fn calico_api_is_v3_first_then_the_crd_storage() {
        assert_eq!(CalicoApi::PREFERENCE, [CalicoApi::V3, CalicoApi::CrdV1]);
        let ar = CalicoApi::V3.ip_pool();
        assert_eq!(
            (
                ar.group.as_str(),
                ar.version.as_str(),
                ar.kind.as_str(),
                ar.plural.as_str()
            ),
            ("projectcalico.org", "v3", "IPPool", "ippools")
        );
        assert_eq!(ar.api_version, "projectcalico.org/v3");
        let ar = CalicoApi::CrdV1.block_affinity();
        assert_eq!(ar.api_version, "crd.projectcalico.org/v1");
        assert_eq!(ar.plural, "blockaffinities");
        assert_eq!(
            CalicoApi::CrdV1.describe("clusterinformations"),
            "clusterinformations.crd.projectcalico.org/v1"
        );
    }

    #[test]
    fn v3_affinities_give_the_same_blocks_as_v1() {
        let v1 = blocks_by_node(&objects("kube/calico/blockaffinities.json")).unwrap();
        let v3 = blocks_by_node(&objects("kube/calico/blockaffinities-v3.json")).unwrap();
        assert_eq!(v1, v3);
        assert!(!v3.is_empty());
    }

    #[test]
    fn missing_objects_name_the_api_they_were_read_from() {
        let mut objects = kind_objects("kube/calico/ippools-ipip.json", false);
        objects.api = Some(CalicoApi::V3);
        objects.ip_pools.clear();
        let e = facts_from_objects("kube t", &objects, &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no enabled IPv4 IPPool (ippools.projectcalico.org/v3)"),
            "{e}"
        );
        objects.cluster_information = None;
        let e = facts_from_objects("kube t", &objects, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ClusterInformation `default` (clusterinformations.projectcalico.org/v3) does not exist"), "{e}");
    }

    #[test]
    fn modes_map_to_encapsulations() {
        use Encapsulation as E;
        let cases = [
            (Some("Always"), Some("Never"), E::Ipip),
            (Some("CrossSubnet"), None, E::IpipCrossSubnet),
            (None, Some("Always"), E::Vxlan),
            (Some("Never"), Some("CrossSubnet"), E::VxlanCrossSubnet),
            (None, None, E::None),
            (Some(""), Some("Never"), E::None),
        ];
        for (i, v, want) in cases {
            assert_eq!(encapsulation_of(i, v).unwrap(), want, "{i:?} {v:?}");
        }
        assert!(encapsulation_of(Some("Always"), Some("Always")).is_err());
        assert!(encapsulation_of(Some("Sometimes"), None).is_err());
    }

    #[test]
    fn facts_of_a_manifest_install_with_ipip() {
        let f = facts_from_objects(
            "kube kind-calico",
            &kind_objects("kube/calico/ippools-ipip.json", false),
            &[],
        )
        .unwrap();
        assert_eq!(f.calico_version.as_deref(), Some("v3.30.0"));
        assert_eq!(f.cluster_type.as_deref(), Some("k8s,bgp,kubeadm,kdd"));
        assert_eq!(f.dataplane, None);
        assert_eq!(f.install.as_deref(), Some("manifest"));
        assert_eq!(
            f.pools,
            vec![Pool {
                cidr: "192.168.0.0/16".parse().unwrap(),
                block_size: 26,
                encapsulation: Encapsulation::Ipip
            }]
        );
        // The control plane, worker and worker2 each have a confirmed block; a pending one and
        // a deleted one are ignored; the IPv6 block is left out.
        let names: Vec<&str> = f.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["kind-control-plane", "kind-worker", "kind-worker2"]);
        let w = f.node("kind-worker").unwrap();
        assert_eq!(w.address, Ipv4Addr::new(172, 18, 0, 3));
        assert_eq!(w.underlay_prefix, Some(16));
        assert_eq!(
            w.blocks,
            vec!["192.168.110.128/26".parse::<Ipv4Net>().unwrap()]
        );
        assert_eq!(
            w.ipip_tunnel_address,
            Some(Ipv4Addr::new(192, 168, 110, 128))
        );
        assert_eq!(w.vxlan_tunnel_address, None);
    }

    #[test]
    fn facts_of_an_operator_install_with_vxlan_cross_subnet() {
        let f = facts_from_objects(
            "kube kind-calico",
            &kind_objects("kube/calico/ippools-vxlan-crosssubnet.json", true),
            &[],
        )
        .unwrap();
        assert_eq!(
            f.pools.len(),
            1,
            "the disabled pool and the IPv6 pool are left out"
        );
        assert_eq!(f.pools[0].encapsulation, Encapsulation::VxlanCrossSubnet);
        assert_eq!(f.pools[0].block_size, 26);
        assert_eq!(f.dataplane.as_deref(), Some("Iptables"));
        assert_eq!(f.configured_mtu, Some(1450));
        assert_eq!(f.install.as_deref(), Some("operator"));
    }

    /// A kube run's report, its facts read from recorded objects (operator install, VXLAN
    /// CrossSubnet, one pod unscheduled): it validates against the published schema, and the
    /// facts say which Kubernetes and how Calico was installed.
    #[test]
    fn a_kube_runs_report_validates_against_the_schema() {
        use crate::expect::{Value as Compared, eq};
        use crate::facts::PodFacts;
        use crate::report::{Part, Phases, TargetReport};
        use crate::results::{CaseResult, Status};
        use std::time::Duration;
        let objects = kind_objects("kube/calico/ippools-vxlan-crosssubnet.json", true);
        let mut facts = facts_from_objects("kube kind-calico", &objects, &[]).unwrap();
        facts.kubernetes_version = Some("v1.36.2".into());
        facts.ipip_module = Some(true);
        facts.pods.push(PodFacts {
            namespace: "calico-conformance-nx-1".into(),
            name: "test-tools".into(),
            node: "kind-worker".into(),
            ip: "192.168.110.130".parse().unwrap(),
            ipv6: None,
            containers: vec!["curl-client".into()],
        });
        facts
            .absent_pods
            .insert("test-tools-remote".into(), "0/1 nodes are available".into());
        facts.workloads = Some(vec![crate::facts::Workload {
            namespace: "kube-system".into(),
            name: "coredns-7db6d8ff4d-lb2kx".into(),
            node: "kind-worker".into(),
            ip: "192.168.110.131".parse().unwrap(),
            ipv6: None,
        }]);
        let mut passed = CaseResult::new(("POD-I3", "MTU"), "kube", Some("test-tools"));
        passed
            .checks
            .push(eq("eth0 MTU", Compared::Mtu(1450), Compared::Mtu(1450)));
        let mut failed = CaseResult::new(("VETH-3", "peer"), "kube", Some("test-tools"));
        failed.status = Status::Failed;
        failed.reason = Some("exec in calico-probe-kind-worker: timed out".into());
        failed.message = Some("VETH-3 peer [kube/test-tools]".into());
        let absent = CaseResult::new(("XN-1", "across"), "kube", None)
            .not_applicable("0/1 nodes are available");
        let part = Part {
            started: crate::report::now(),
            ended: crate::report::now(),
            targets: vec![TargetReport {
                name: "kube".into(),
                facts,
                phases: Phases::one(
                    Duration::from_millis(3500),
                    vec![
                        ("deploy and readiness".into(), Duration::from_millis(2900)),
                        ("facts and discovery".into(), Duration::from_millis(500)),
                    ],
                    Some(Duration::from_secs(18)),
                    Some(Duration::from_millis(3100)),
                ),
            }],
            cases: vec![passed, failed, absent],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = crate::report::add(dir.path(), "nx-1", &part).unwrap();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(crate::report::schema_errors(&json), Vec::<String>::new());
        let facts = &json["targets"][0]["facts"];
        assert_eq!(facts["kubernetes_version"], "v1.36.2");
        assert_eq!(facts["install"], "operator");
        assert_eq!(facts["pools"][0]["encapsulation"], "VXLANCrossSubnet");
        assert_eq!(facts["workloads"][0]["name"], "coredns-7db6d8ff4d-lb2kx");
        assert_eq!(json["cases"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn no_cluster_information_is_one_clear_error() {
        let mut o = kind_objects("kube/calico/ippools-ipip.json", false);
        o.cluster_information = None;
        let e = facts_from_objects("kube x", &o, &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Calico is not installed") && e.contains("ClusterInformation"),
            "{e}"
        );
    }

    #[test]
    fn nodes_hosting_our_pods_are_kept_even_without_blocks() {
        let mut o = kind_objects("kube/calico/ippools-ipip.json", false);
        o.block_affinities.clear();
        let f = facts_from_objects("kube x", &o, &["kind-worker2"]).unwrap();
        let names: Vec<&str> = f.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["kind-worker2"]);
        assert!(f.nodes[0].blocks.is_empty());
    }

    #[test]
    fn the_recorded_node_and_its_underlay() {
        let node: Node =
            serde_json::from_str(&read("recorded/kube/node-k8s-worker-1.json")).unwrap();
        let n = node_facts(&node).unwrap();
        assert_eq!(n.address, Ipv4Addr::new(10, 12, 22, 2));
        assert_eq!(
            n.underlay_prefix, None,
            "no Calico annotations on the recorded node"
        );
        assert_eq!(
            underlay_from_ip_addr(&read("recorded/node/ip-j-addr.json"), n.address),
            Some(("eth0".to_string(), 16))
        );
        assert_eq!(underlay_from_ip_addr("not json", n.address), None);
    }
}

#[cfg(test)]
mod ipv6_tests {
    use super::*;

    /// Hand-written objects in the shape of Calico's CRDs (no dual-stack API server is
    /// recorded): an IPv4 and an IPv6 pool, and one block affinity of each family.
    #[test]
    fn ipv6_pools_and_blocks_are_read_beside_the_ipv4_ones() {
        let pools = r#"{"items": [
          {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "v4"},
           "spec": {"cidr": "192.168.0.0/16", "ipipMode": "Never", "vxlanMode": "Never"}},
          {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "v6"},
           "spec": {"cidr": "fd00:10:244::/64", "vxlanMode": "Always"}}]}"#;
        let pools = dynamic_objects_from_json(pools, "pools").unwrap();
        assert_eq!(pools_from(&pools).unwrap().len(), 1);
        let v6 = ipv6_pools_from(&pools).unwrap();
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].cidr.to_string(), "fd00:10:244::/64");
        assert_eq!(v6[0].block_size, DEFAULT_IPV6_BLOCK_SIZE);
        assert_eq!(v6[0].encapsulation, Encapsulation::Vxlan);
        let affinities = r#"{"items": [
          {"apiVersion": "crd.projectcalico.org/v1", "kind": "BlockAffinity", "metadata": {"name": "a"},
           "spec": {"node": "w1", "cidr": "192.168.1.0/26", "state": "confirmed", "deleted": "false"}},
          {"apiVersion": "crd.projectcalico.org/v1", "kind": "BlockAffinity", "metadata": {"name": "b"},
           "spec": {"node": "w1", "cidr": "fd00:10:244:0:1::/122", "state": "confirmed", "deleted": "false"}}]}"#;
        let affinities = dynamic_objects_from_json(affinities, "affinities").unwrap();
        assert_eq!(blocks_by_node(&affinities).unwrap()["w1"].len(), 1);
        let v6 = ipv6_blocks_by_node(&affinities).unwrap();
        assert_eq!(v6["w1"][0].to_string(), "fd00:10:244:0:1::/122");
    }

    /// The recorded Node (IPv4 only) with one field added, as a dual-stack node would carry it
    /// (not recorded): an IPv6 InternalIP, else Calico's `projectcalico.org/IPv6Address`; the
    /// IPv6 VXLAN tunnel annotation. The recorded node itself has no IPv6 address.
    #[test]
    fn a_nodes_ipv6_address_is_its_ipv6_internal_ip_else_calicos_annotation() {
        let recorded = || -> serde_json::Value {
            serde_json::from_str(&crate::fixtures::read_text(
                "recorded/kube/node-k8s-worker-1.json",
            ))
            .unwrap()
        };
        let facts = |v: serde_json::Value| node_facts(&serde_json::from_value(v).unwrap()).unwrap();
        let plain = facts(recorded());
        assert_eq!(plain.ipv6_address, None);
        assert_eq!(plain.vxlan_v6_tunnel_address, None);
        let mut internal = recorded();
        let addresses = internal["status"]["addresses"].as_array_mut().unwrap();
        addresses.push(serde_json::json!({"type": "InternalIP", "address": "fd00:10:12::2"}));
        let f = facts(internal);
        assert_eq!(
            f.address, plain.address,
            "the IPv4 InternalIP stays the address"
        );
        assert_eq!(f.ipv6_address, Some("fd00:10:12::2".parse().unwrap()));
        let mut annotated = recorded();
        let annotations = annotated["metadata"]["annotations"]
            .as_object_mut()
            .unwrap();
        annotations.insert(ANNOTATION_IPV6_ADDRESS.into(), "fd00:10:12::7/64".into());
        annotations.insert(ANNOTATION_VXLAN_V6_TUNNEL.into(), "fd00:10:244::1:0".into());
        let f = facts(annotated);
        assert_eq!(f.ipv6_address, Some("fd00:10:12::7".parse().unwrap()));
        assert_eq!(
            f.vxlan_v6_tunnel_address,
            Some("fd00:10:244::1:0".parse().unwrap())
        );
    }
}
