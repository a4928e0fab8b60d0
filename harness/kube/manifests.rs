//! The exact objects a kube run sends: the run's namespace, the article's pods (changed only as
//! documented below) and the node probes.
//!
//! Changes made to the article's pods, and nothing else:
//! - `metadata.namespace` is the run's namespace;
//! - images are mapped through `CALICO_IMAGE_MAP` ([`ImageMap`]);
//! - `test-tools`' `nodeSelector` (`worker: no-1`, a label of the article's own cluster) is
//!   replaced by a required pod affinity to `app=c2c-network-demo` on `kubernetes.io/hostname`,
//!   so same-node placement is guaranteed rather than hoped for;
//! - `test-tools-remote` gets the matching required pod anti-affinity, so it lands on another node.
//!
//! All functions are pure; the snapshot test compares their JSON with committed files.

use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::{
    Affinity, Container, Namespace, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity, PodSpec,
    SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// The field manager of every server-side apply, and the `managed-by` label value.
pub const MANAGER: &str = "calico-conformance";
/// Label on everything a run creates: `app.kubernetes.io/managed-by=calico-conformance`.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label carrying the run id.
pub const RUN_ID_LABEL: &str = "calico-conformance/run-id";
/// Annotation carrying the namespace's creation time (RFC 3339), as the suite saw it.
pub const CREATED_ANNOTATION: &str = "calico-conformance/created-at";
/// Label naming the node a probe serves.
pub const PROBE_NODE_LABEL: &str = "calico-conformance/probe-node";
/// The default node probe image.
pub const DEFAULT_PROBE_IMAGE: &str = "nicolaka/netshoot:v0.13";
/// The article's server pod.
pub const C2C_POD: &str = crate::calico::SERVER_POD;
/// The article's client pod (same node as the server).
pub const TEST_TOOLS_POD: &str = crate::calico::CLIENT_POD;
/// The suite's extra client pod on another node (for the cross-node claims).
pub const REMOTE_POD: &str = crate::calico::REMOTE_POD;
/// The topology key that means "same node".
pub const HOSTNAME_TOPOLOGY_KEY: &str = "kubernetes.io/hostname";

/// The namespace of run `run_id`.
pub fn namespace_name(run_id: &str) -> String {
    format!("calico-conformance-{run_id}")
}

/// Image substitutions: `CALICO_IMAGE_MAP=python:2.7=mirror.local/python:2.7,yannxia/...=...`.
/// Keys match an image exactly as the manifest spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMap(pub BTreeMap<String, String>);

impl ImageMap {
    /// Parses `from=to[,from=to...]`; empty entries are ignored; anything else names the
    /// variable and the bad entry.
    pub fn parse(text: &str) -> Result<ImageMap> {
        let mut map = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((from, to)) = entry.split_once('=') else {
                return Err(Error::config(
                    "CALICO_IMAGE_MAP",
                    text,
                    format!("entry `{entry}` is not `image=replacement`"),
                ));
            };
            let (from, to) = (from.trim(), to.trim());
            if from.is_empty() || to.is_empty() {
                return Err(Error::config(
                    "CALICO_IMAGE_MAP",
                    text,
                    format!("entry `{entry}` has an empty side"),
                ));
            }
            map.insert(from.to_string(), to.to_string());
        }
        Ok(ImageMap(map))
    }

    /// From the environment (`CALICO_IMAGE_MAP`, empty when unset).
    pub fn from_env() -> Result<ImageMap> {
        ImageMap::parse(&std::env::var("CALICO_IMAGE_MAP").unwrap_or_default())
    }

    /// The image to use for `image`.
    pub fn map<'a>(&'a self, image: &'a str) -> &'a str {
        self.0.get(image).map(String::as_str).unwrap_or(image)
    }
}

/// The run's namespace: managed-by and run-id labels, the creation time, and PodSecurity
/// `enforce=privileged` (the node probes are privileged).
pub fn namespace(run_id: &str, created_at: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace_name(run_id)),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
                (RUN_ID_LABEL.to_string(), run_id.to_string()),
                (
                    "pod-security.kubernetes.io/enforce".to_string(),
                    "privileged".to_string(),
                ),
            ])),
            annotations: Some(BTreeMap::from([(
                CREATED_ANNOTATION.to_string(),
                created_at.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn app_selector(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
        ..LabelSelector::default()
    }
}

fn same_node_as(app: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(app_selector(app)),
        topology_key: HOSTNAME_TOPOLOGY_KEY.to_string(),
        ..PodAffinityTerm::default()
    }
}

fn map_images(containers: &mut [Container], images: &ImageMap) {
    for c in containers {
        if let Some(image) = c.image.as_mut() {
            *image = images.map(image).to_string();
        }
    }
}

/// One of the suite's pods, made ready to send: namespace set, images mapped, and placement by
/// name: `test-tools` next to `c2c-network-demo`, `test-tools-remote` away from it. Fails on a
/// pod without a name or spec (naming the pod).
pub fn prepare_pod(mut pod: Pod, namespace: &str, images: &ImageMap) -> Result<Pod> {
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or_else(|| Error::Kube("a fixture pod has no metadata.name".into()))?;
    pod.metadata.namespace = Some(namespace.to_string());
    let spec = pod
        .spec
        .as_mut()
        .ok_or_else(|| Error::Kube(format!("fixture pod {name} has no spec")))?;
    map_images(&mut spec.containers, images);
    if let Some(init) = spec.init_containers.as_mut() {
        map_images(init, images);
    }
    match name.as_str() {
        TEST_TOOLS_POD => {
            spec.node_selector = None;
            let affinity = spec.affinity.get_or_insert_with(Affinity::default);
            affinity.pod_affinity = Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![same_node_as(
                    C2C_POD,
                )]),
                ..PodAffinity::default()
            });
        }
        REMOTE_POD => {
            let affinity = spec.affinity.get_or_insert_with(Affinity::default);
            affinity.pod_anti_affinity = Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![same_node_as(
                    C2C_POD,
                )]),
                ..PodAntiAffinity::default()
            });
        }
        _ => {}
    }
    Ok(pod)
}

/// The probe pod's name for `node`.
pub fn probe_name(node: &str) -> String {
    let name = format!("calico-probe-{node}");
    // Pod names are DNS subdomains (253 characters); node names are too, so only the prefix
    // can overflow.
    name.chars().take(253).collect()
}

/// The node probe for `node`: privileged, host network and host PID, pinned to the node by
/// `nodeName`, tolerating every taint, sleeping until deleted.
pub fn probe_pod(node: &str, namespace: &str, image: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(probe_name(node)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
                (PROBE_NODE_LABEL.to_string(), node.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.to_string()),
            host_network: Some(true),
            host_pid: Some(true),
            automount_service_account_token: Some(false),
            termination_grace_period_seconds: Some(1),
            tolerations: Some(vec![Toleration {
                operator: Some("Exists".to_string()),
                ..Toleration::default()
            }]),
            containers: vec![Container {
                name: crate::kube::place::PROBE_CONTAINER.to_string(),
                image: Some(image.to_string()),
                command: Some(vec!["sleep".to_string(), "infinity".to_string()]),
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    ..SecurityContext::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// The sweep's pinger for `node` ([`crate::calico::pinger_name`]): an ordinary pod Calico
/// networks, pinned to the node by `nodeName`, tolerating every taint, sleeping until deleted;
/// the probe's image (already on the node), nothing privileged. The suite enters its network
/// namespace from the node's probe, as it enters the article's pods; it never runs in it.
pub fn pinger_pod(node: &str, namespace: &str, image: &str) -> Pod {
    let mut pod = probe_pod(node, namespace, image);
    pod.metadata.name = Some(crate::calico::pinger_name(node));
    if let Some(spec) = pod.spec.as_mut() {
        spec.host_network = None;
        spec.host_pid = None;
        for c in &mut spec.containers {
            c.name = "pinger".to_string();
            c.security_context = None;
        }
    }
    pod
}

/// The probe image: `CALICO_PROBE_IMAGE` or [`DEFAULT_PROBE_IMAGE`], then through the image map.
pub fn probe_image(from_env: Option<&str>, images: &ImageMap) -> String {
    let image = from_env
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_PROBE_IMAGE);
    images.map(image).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_maps_parse_and_name_bad_entries() {
        let m = ImageMap::parse(
            "python:2.7=mirror.local/python:2.7, yannxia/ubuntu-with-tcpdump=mirror.local/utt,",
        )
        .unwrap();
        assert_eq!(m.map("python:2.7"), "mirror.local/python:2.7");
        assert_eq!(m.map("yannxia/ubuntu-with-tcpdump"), "mirror.local/utt");
        assert_eq!(m.map("busybox"), "busybox");
        let err = ImageMap::parse("python:2.7").unwrap_err().to_string();
        assert!(
            err.contains("CALICO_IMAGE_MAP") && err.contains("python:2.7"),
            "{err}"
        );
        assert!(ImageMap::parse("=x").is_err());
        assert_eq!(ImageMap::parse("").unwrap(), ImageMap::default());
    }

    #[test]
    fn the_probe_image_is_configurable_and_mapped() {
        let m = ImageMap::parse("nicolaka/netshoot:v0.13=mirror/netshoot").unwrap();
        assert_eq!(probe_image(None, &m), "mirror/netshoot");
        assert_eq!(
            probe_image(Some(""), &ImageMap::default()),
            DEFAULT_PROBE_IMAGE
        );
        assert_eq!(probe_image(Some("x/y:1"), &m), "x/y:1");
    }
}
