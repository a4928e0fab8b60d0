//! The datastore's workloads on a cluster (REC-1..3): every pod the API says runs on a node the
//! run uses, in any namespace (the suite only reads them), that Calico networks — the rules of
//! Calico's own pod-to-endpoint conversion (libcalico-go `k8s/conversion`: `IsFinished`,
//! `IsHostNetworked`, `getPodIPs`): not `hostNetwork`; not finished (phase `Succeeded`,
//! `Failed` or `Completed`, or being deleted after Calico's CNI emptied its
//! `cni.projectcalico.org/podIP` annotation); its IPv4 address (`status.podIPs`, `status.podIP`,
//! else Calico's `podIPs`/`podIP` annotations) in an IP pool (a disabled one too: its pods keep
//! their addresses). One list per node
//! (`fieldSelector=spec.nodeName=<node>`, as the kubelet asks), never one request per pod.

use crate::error::{Error, Result};
use crate::facts::Workload;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::DynamicObject;
use kube::api::{Api, ListParams};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Calico's CNI plugin's annotations: the pod's addresses, emptied when it tears down.
const ANNOTATION_POD_IP: &str = "cni.projectcalico.org/podIP";
const ANNOTATION_POD_IPS: &str = "cni.projectcalico.org/podIPs";

/// The IPv4 addresses of a pod: `status.podIPs` and `status.podIP`, else Calico's annotations
/// (`<ip>/32`, comma-separated).
fn ipv4s(pod: &Pod) -> Vec<Ipv4Addr> {
    addresses(pod)
        .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
        .collect()
}

/// The pod's IPv6 address on a dual-stack cluster: the first IPv6 of `status.podIPs` (else
/// of Calico's annotations).
pub fn ipv6_of(pod: &Pod) -> Option<Ipv6Addr> {
    addresses(pod).find_map(|ip| ip.parse::<Ipv6Addr>().ok())
}

/// Every address the pod's status and Calico's annotations list, as text.
fn addresses(pod: &Pod) -> impl Iterator<Item = &str> + '_ {
    let annotations = pod.metadata.annotations.as_ref();
    let annotated = [ANNOTATION_POD_IPS, ANNOTATION_POD_IP]
        .iter()
        .filter_map(move |k| annotations.and_then(|a| a.get(*k)))
        .flat_map(|v| v.split(','))
        .map(|ip| ip.trim().split('/').next().unwrap_or_default());
    let status = pod.status.as_ref();
    let listed = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .map(|p| p.ip.as_str());
    let single = status.and_then(|s| s.pod_ip.as_deref());
    listed.chain(single).chain(annotated)
}

/// The CIDR of every IPv4 IP pool, disabled ones included: a pod keeps an address of a pool
/// disabled after it was allocated (a pool migration), and Calico still networks it.
pub fn every_pool_cidr(ip_pools: &[DynamicObject]) -> Vec<Ipv4Net> {
    ip_pools
        .iter()
        .filter_map(|o| o.data.get("spec")?.get("cidr")?.as_str()?.parse().ok())
        .map(|n: Ipv4Net| n.trunc())
        .collect()
}

/// Calico's `IsFinished`: phase `Succeeded`, `Failed` or `Completed`, or being deleted after
/// Calico's CNI emptied the pod's address annotation.
fn finished(pod: &Pod) -> bool {
    let released = pod.metadata.deletion_timestamp.is_some()
        && pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_POD_IP))
            .is_some_and(String::is_empty);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    released || matches!(phase, Some("Succeeded" | "Failed" | "Completed"))
}

/// The workloads among `pods` on `nodes`: not `hostNetwork`, not finished, an IPv4 address in
/// one of `pools`. Sorted by node, namespace and name.
pub fn workloads_from_pods(pods: &[Pod], nodes: &[String], pools: &[Ipv4Net]) -> Vec<Workload> {
    let mut out: Vec<Workload> = pods
        .iter()
        .filter_map(|pod| {
            let spec = pod.spec.as_ref()?;
            let node = spec.node_name.as_ref().filter(|n| nodes.contains(n))?;
            if spec.host_network == Some(true) {
                return None;
            }
            if finished(pod) {
                return None;
            }
            let ip = ipv4s(pod)
                .into_iter()
                .find(|ip| pools.iter().any(|p| p.contains(ip)))?;
            Some(Workload {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                node: node.clone(),
                ip,
                ipv6: ipv6_of(pod),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.node, &a.namespace, &a.name).cmp(&(&b.node, &b.namespace, &b.name)));
    out.dedup();
    out
}

/// Lists the pods of each of `nodes` (all namespaces; read only) and keeps the workloads.
pub async fn read_workloads(
    client: &Client,
    nodes: &[String],
    pools: &[Ipv4Net],
) -> Result<Vec<Workload>> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut pods = Vec::new();
    for node in nodes {
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let list = api.list(&params).await.map_err(|e| {
            Error::api(
                format!("listing the pods of node {node} (all namespaces)"),
                e,
            )
        })?;
        pods.extend(list.items);
    }
    Ok(workloads_from_pods(&pods, nodes, pools))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fake_api::*;

    fn pools() -> Vec<Ipv4Net> {
        vec!["192.168.0.0/16".parse().unwrap()]
    }

    /// Every pool counts, a disabled one too; IPv6 pools are left out.
    #[test]
    fn every_pool_cidr_includes_disabled_pools() {
        let objects: Vec<DynamicObject> = serde_json::from_value(serde_json::json!([
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
             "metadata": {"name": "old"}, "spec": {"cidr": "10.244.0.0/16", "disabled": true}},
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
             "metadata": {"name": "new"}, "spec": {"cidr": "192.168.0.0/16"}},
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
             "metadata": {"name": "v6"}, "spec": {"cidr": "fd00::/48"}}
        ]))
        .unwrap();
        let cidrs: Vec<String> = every_pool_cidr(&objects)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(cidrs, ["10.244.0.0/16", "192.168.0.0/16"]);
    }

    /// The recorded pods: the article's two (Running on k8s-worker-1), a Pending one whose
    /// image cannot be pulled (it has its sandbox and address: Calico networks it), and an
    /// Unschedulable one (no node, no address).
    fn recorded_pods() -> Vec<serde_json::Value> {
        vec![
            recorded("kube/pod-c2c-network-demo.json"),
            recorded("kube/pod-test-tools.json"),
            recorded("kube/pod-image-pull-failure.json"),
            recorded("kube-api/pod-pending-unschedulable.json"),
        ]
    }

    fn names(w: &[Workload]) -> Vec<String> {
        w.iter()
            .map(|w| format!("{} {} {}", w.node, w.id(), w.ip))
            .collect()
    }

    /// One list per node, with the node's field selector, all namespaces; the recorded pods
    /// parse into the workloads of the node.
    #[tokio::test]
    async fn the_recorded_pods_of_a_node_are_its_workloads() {
        let list = api_list_of("PodList", recorded_pods());
        let (client, _, uris) = fake_api_with_uris(vec![("GET /api/v1/pods", 200, list)]);
        let nodes = vec!["k8s-worker-1".to_string(), "k8s-worker-2".to_string()];
        let w = read_workloads(&client, &nodes, &pools()).await.unwrap();
        assert_eq!(
            names(&w),
            [
                "k8s-worker-1 default/badimage 192.168.1.1",
                "k8s-worker-1 default/c2c-network-demo 192.168.1.2",
                "k8s-worker-1 default/test-tools 192.168.1.1",
            ]
        );
        let uris = uris.lock().unwrap().clone();
        assert_eq!(uris.len(), 2, "{uris:?}");
        assert!(
            uris[0].contains("/api/v1/pods?")
                && uris[0].contains("fieldSelector=spec.nodeName%3Dk8s-worker-1"),
            "{uris:?}"
        );
    }

    /// Not recorded (a recorded object with one field changed): host-network pods, finished
    /// pods (by phase, or deleted after Calico's CNI released the address), pods of other nodes
    /// and addresses outside every pool are no workloads; a pod being deleted that still holds
    /// its address is one, and so is a pod whose only address is Calico's annotation.
    #[test]
    fn host_network_finished_foreign_and_unpooled_pods_are_left_out() {
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut p = recorded("kube/pod-test-tools.json");
            f(&mut p);
            serde_json::from_value::<Pod>(p).unwrap()
        };
        let pods = vec![
            edit(&|p| p["spec"]["hostNetwork"] = true.into()),
            edit(&|p| p["status"]["phase"] = "Succeeded".into()),
            edit(&|p| {
                p["metadata"]["deletionTimestamp"] = "2026-12-01T16:00:00Z".into();
                p["metadata"]["annotations"] =
                    serde_json::json!({"cni.projectcalico.org/podIP": ""});
            }),
            edit(&|p| p["spec"]["nodeName"] = "k8s-worker-9".into()),
            edit(&|p| {
                p["status"]["podIP"] = "10.12.22.2".into();
                p["status"]["podIPs"] = serde_json::json!([{"ip": "10.12.22.2"}]);
            }),
        ];
        let nodes = vec!["k8s-worker-1".to_string()];
        assert_eq!(workloads_from_pods(&pods, &nodes, &pools()), Vec::new());
        let kept = edit(&|_| {});
        assert_eq!(workloads_from_pods(&[kept], &nodes, &pools()).len(), 1);
        // Being deleted but still holding its address; only Calico's annotation gives one.
        let kept = [
            edit(&|p| p["metadata"]["deletionTimestamp"] = "2026-12-01T16:00:00Z".into()),
            edit(&|p| {
                p["metadata"]["name"] = "test-tools-annotated".into();
                p["status"]["podIP"] = serde_json::Value::Null;
                p["status"]["podIPs"] = serde_json::Value::Null;
                p["metadata"]["annotations"] =
                    serde_json::json!({"cni.projectcalico.org/podIPs": "192.168.1.1/32"});
            }),
        ];
        let w = workloads_from_pods(&kept, &nodes, &pools());
        assert_eq!(w.len(), 2, "{w:?}");
    }

    /// Not recorded (the recorded pod with an IPv6 entry added, as a dual-stack cluster lists
    /// it): a pod's IPv6 is the IPv6 of `status.podIPs`, else of Calico's `podIPs` annotation;
    /// its IPv4 stays the workload's address. The recorded pod itself has none.
    #[test]
    fn a_pods_ipv6_is_read_from_pod_ips_else_calicos_annotation() {
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut p = recorded("kube/pod-test-tools.json");
            f(&mut p);
            serde_json::from_value::<Pod>(p).unwrap()
        };
        assert_eq!(ipv6_of(&edit(&|_| {})), None);
        let listed = edit(&|p| {
            p["status"]["podIPs"] =
                serde_json::json!([{"ip": "192.168.1.1"}, {"ip": "fd00:10:244::1:1"}]);
        });
        assert_eq!(ipv6_of(&listed), Some("fd00:10:244::1:1".parse().unwrap()));
        let annotated = edit(&|p| {
            p["metadata"]["annotations"] = serde_json::json!(
                {"cni.projectcalico.org/podIPs": "192.168.1.1/32,fd00:10:244::1:2/128"}
            );
        });
        assert_eq!(
            ipv6_of(&annotated),
            Some("fd00:10:244::1:2".parse().unwrap())
        );
        let nodes = vec!["k8s-worker-1".to_string()];
        let w = workloads_from_pods(&[listed], &nodes, &pools());
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].ip.to_string(), "192.168.1.1");
        assert_eq!(w[0].ipv6, Some("fd00:10:244::1:1".parse().unwrap()));
    }

    /// A workload list made from recorded pods agrees with the recorded node's links and
    /// routes (same node, same time): REC-1 and REC-2 pass on real data.
    #[test]
    fn the_recorded_pods_agree_with_the_recorded_node() {
        use crate::expect::reconcile::{NodeState, every_pod_wired, no_orphans};
        use crate::observe::Observed;
        use crate::observe::ip::{parse_links, parse_routes};
        let pods: Vec<Pod> = recorded_pods()[..2]
            .iter()
            .map(|p| serde_json::from_value(p.clone()).unwrap())
            .collect();
        let nodes = vec!["k8s-worker-1".to_string()];
        let w = workloads_from_pods(&pods, &nodes, &pools());
        let text = |f: &str| crate::fixtures::read_text(&format!("recorded/node/{f}"));
        let observed = |value, raw: String| Observed {
            value,
            raw: raw.into_bytes(),
            command: "ip".into(),
            place: "host k8s-worker-1".into(),
        };
        let (links, routes) = (text("ip-d-j-link.json"), text("ip-j-route.json"));
        let state = NodeState {
            node: "k8s-worker-1".into(),
            links: observed(parse_links("l", links.as_bytes()).unwrap(), links.clone()),
            routes: Observed {
                value: parse_routes("r", routes.as_bytes()).unwrap(),
                raw: routes.into_bytes(),
                command: "ip".into(),
                place: "host k8s-worker-1".into(),
            },
            routes6: None,
        };
        let states = [state];
        assert!(every_pod_wired(&states, &w).passed);
        let pools: Vec<ipnet::IpNet> = pools().into_iter().map(ipnet::IpNet::V4).collect();
        assert!(no_orphans(&states, &w, &pools).passed);
    }
}
