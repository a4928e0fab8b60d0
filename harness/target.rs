//! Targets: where the places come from. A claim never knows which one it runs on.
//!
//! | `CALICO_TARGET`       | target                                                       |
//! |-----------------------|--------------------------------------------------------------|
//! | unset, `lab`          | the lab, once per encapsulation mode it can build (None, VXLAN) |
//! | `lab:none`, `lab:vxlan` | the lab in one mode                                        |
//! | `topology:<file>`     | namespaces someone else built, described by the file          |
//! | `kube`                | the current kubeconfig context                               |

use crate::error::{Error, Result};
use crate::facts::{Encapsulation, Facts};
use crate::kube::KubeTarget;
use crate::lab::{Lab, LabSpec};
use crate::place::Place;
use crate::topology::Topology;
use crate::traffic::HttpServer;
use std::path::PathBuf;

/// Which target to open.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    Lab(Encapsulation),
    /// The lab, dual stack (an IPv6 pool beside the IPv4 one; encapsulation None).
    LabDualStack(Encapsulation),
    Topology(PathBuf),
    Kube,
}

impl TargetKind {
    /// Short name used in test names and evidence paths: `lab_none`, `lab_vxlan`, `topology`,
    /// `kube`.
    pub fn short(&self) -> String {
        match self {
            TargetKind::Lab(e) => format!("lab_{}", e.as_str().to_lowercase()),
            TargetKind::LabDualStack(Encapsulation::None) => "lab_dualstack".into(),
            TargetKind::LabDualStack(e) => format!("lab_{}_dualstack", e.as_str().to_lowercase()),
            TargetKind::Topology(_) => "topology".into(),
            TargetKind::Kube => "kube".into(),
        }
    }
}

/// The targets `CALICO_TARGET` selects.
pub fn selected() -> Result<Vec<TargetKind>> {
    let value = std::env::var("CALICO_TARGET").unwrap_or_default();
    parse_selection(&value)
}

/// Parses a `CALICO_TARGET` value.
pub fn parse_selection(value: &str) -> Result<Vec<TargetKind>> {
    match value.trim() {
        "" | "lab" => Ok(vec![
            TargetKind::Lab(Encapsulation::None),
            TargetKind::Lab(Encapsulation::Vxlan),
            TargetKind::LabDualStack(Encapsulation::None),
            TargetKind::LabDualStack(Encapsulation::Vxlan),
        ]),
        "lab:dualstack" => Ok(vec![TargetKind::LabDualStack(Encapsulation::None)]),
        "lab:vxlan-dualstack" => Ok(vec![TargetKind::LabDualStack(Encapsulation::Vxlan)]),
        "lab:none" => Ok(vec![TargetKind::Lab(Encapsulation::None)]),
        "lab:vxlan" => Ok(vec![TargetKind::Lab(Encapsulation::Vxlan)]),
        "lab:ipip" => Ok(vec![TargetKind::Lab(Encapsulation::Ipip)]),
        "kube" => Ok(vec![TargetKind::Kube]),
        other => match other.strip_prefix("topology:") {
            Some(path) if !path.is_empty() => Ok(vec![TargetKind::Topology(PathBuf::from(path))]),
            _ => Err(Error::config(
                "CALICO_TARGET",
                other,
                "not a target: use lab, lab:none, lab:vxlan, lab:ipip, lab:dualstack, \
                 lab:vxlan-dualstack, topology:<file> or kube",
            )),
        },
    }
}

// One value per opened target: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Local {
        topology: Topology,
        /// Keeps the lab's namespaces alive; `None` for a topology file.
        lab: Option<Lab>,
        _servers: Vec<HttpServer>,
    },
    Kube(Box<KubeTarget>),
}

/// An opened target: its facts and its places.
pub struct Target {
    /// `lab_none`, `kube`, ...
    pub name: String,
    pub facts: Facts,
    backend: Backend,
    /// Claims that change shared state (flush a neighbour table) hold this exclusively; all
    /// others hold it shared, so parallel claims never see each other's changes.
    pub state_lock: tokio::sync::RwLock<()>,
    /// Keeps the interrupt cleanup registered while the target lives.
    _interrupt: Option<crate::lifecycle::Registration>,
}

pub use crate::calico::{CLIENT_POD, REMOTE_POD, SERVER_POD};

impl Target {
    /// Opens a target: builds the lab, reads the topology file, or deploys onto the cluster.
    pub async fn open(kind: &TargetKind) -> Result<Target> {
        match kind {
            TargetKind::Lab(enc) => Target::open_lab(&LabSpec::article(*enc), kind.short()).await,
            TargetKind::LabDualStack(enc) => {
                Target::open_lab(&LabSpec::dual_stack(*enc), kind.short()).await
            }
            TargetKind::Topology(path) => {
                let topology = Topology::load(path)?;
                let facts = topology.facts(format!("topology {}", path.display()));
                Target::local(kind.short(), facts, topology, None)
            }
            TargetKind::Kube => Target::open_kube(crate::kube::Scope::Article).await,
        }
    }

    /// Opens `kind` for a sweep: as [`Target::open`], but on a cluster with a probe on every
    /// Ready, schedulable node (the others are [`Target::skipped_nodes`]).
    pub async fn open_every_node(kind: &TargetKind) -> Result<Target> {
        match kind {
            TargetKind::Kube => Target::open_kube(crate::kube::Scope::EveryNode).await,
            _ => Target::open(kind).await,
        }
    }

    /// Nodes a sweep leaves out, and why (NotReady, cordoned): only a cluster has them.
    pub fn skipped_nodes(&self) -> &[(String, String)] {
        match &self.backend {
            Backend::Local { .. } => &[],
            Backend::Kube(k) => k.skipped(),
        }
    }

    /// Why a sweep's pinger on `node` (a cluster's node without an article pod) is not there,
    /// when it did not start: then XN-1 from and to that node fails, saying so.
    pub fn pinger_failure(&self, node: &str) -> Option<&str> {
        match &self.backend {
            Backend::Local { .. } => None,
            Backend::Kube(k) => k.pinger_failure(node),
        }
    }

    async fn open_kube(scope: crate::kube::Scope) -> Result<Target> {
        // Ctrl-C during setup or the claims still deletes this run's namespace.
        let interrupt = crate::lifecycle::on_interrupt(Box::new(|| {
            Box::pin(async {
                if let Err(e) = crate::kube::delete_run_namespace(crate::run::run_id()).await {
                    eprintln!("calico-conformance: {e}; run `cargo run -- cleanup`");
                }
            })
        }));
        let run_id = crate::run::run_id();
        let kube = match scope {
            crate::kube::Scope::Article => crate::kube::open(run_id).await?,
            crate::kube::Scope::EveryNode => crate::kube::shared::open_every_node(run_id).await?,
        };
        Ok(Target {
            _interrupt: Some(interrupt),
            name: TargetKind::Kube.short(),
            facts: kube.facts().clone(),
            backend: Backend::Kube(Box::new(kube)),
            state_lock: tokio::sync::RwLock::new(()),
        })
    }

    /// Opens the kube target on a connection already made (a fake API server's, in tests),
    /// for run `run_id`; without the Ctrl-C cleanup [`Target::open`] registers.
    pub async fn open_kube_on(conn: &crate::kube::Connection, run_id: &str) -> Result<Target> {
        Target::open_kube_scoped_on(conn, run_id, crate::kube::Scope::Article).await
    }

    /// [`Target::open_kube_on`] with the probes `scope` asks for.
    pub async fn open_kube_scoped_on(
        conn: &crate::kube::Connection,
        run_id: &str,
        scope: crate::kube::Scope,
    ) -> Result<Target> {
        let kube = KubeTarget::setup_scoped(conn, run_id, scope).await?;
        Ok(Target {
            _interrupt: None,
            name: TargetKind::Kube.short(),
            facts: kube.facts().clone(),
            backend: Backend::Kube(Box::new(kube)),
            state_lock: tokio::sync::RwLock::new(()),
        })
    }

    /// Builds the lab `spec` asks for (the article's, or one with extra pods per node, as the
    /// REC claims' scale test does) and opens it as a target named `name`.
    pub async fn open_lab(spec: &LabSpec, name: String) -> Result<Target> {
        crate::lab::preflight::check_lab(spec)?;
        let lab = Lab::build(spec, crate::run::run_id()).await?;
        let topology = lab.topology.clone();
        let stack = if spec.dual_stack { ", dual stack" } else { "" };
        let facts = topology.facts(format!("lab ({}{stack})", spec.encapsulation.as_str()));
        Target::local(name, facts, topology, Some(lab))
    }

    /// A local target: starts the article's server in the server pod, as the article's
    /// container does on a cluster.
    fn local(name: String, facts: Facts, topology: Topology, lab: Option<Lab>) -> Result<Target> {
        let mut servers = Vec::new();
        if let Some(pod) = topology.pods.iter().find(|p| p.name == SERVER_POD) {
            servers.push(HttpServer::start(
                &pod.netns,
                crate::calico::HTTP_PORT,
                crate::calico::article_body(&pod.name),
            )?);
        }
        Ok(Target {
            name,
            facts,
            backend: Backend::Local {
                topology,
                lab,
                _servers: servers,
            },
            state_lock: tokio::sync::RwLock::new(()),
            _interrupt: None,
        })
    }

    /// How long the parts of opening took, where the target knows (a cluster: deploy and
    /// readiness, facts and discovery).
    pub fn setup_phases(&self) -> Vec<(&'static str, std::time::Duration)> {
        match &self.backend {
            Backend::Local { .. } => Vec::new(),
            Backend::Kube(k) => k.phases().to_vec(),
        }
    }

    /// The topology of a local target (a lab's or a topology file's).
    pub fn topology(&self) -> Option<&Topology> {
        match &self.backend {
            Backend::Local { topology, .. } => Some(topology),
            Backend::Kube(_) => None,
        }
    }

    /// The topology of a local target (faults change it).
    pub fn topology_mut(&mut self) -> Option<&mut Topology> {
        match &mut self.backend {
            Backend::Local { topology, .. } => Some(topology),
            Backend::Kube(_) => None,
        }
    }

    /// The lab behind this target, when it is one (faults change it).
    pub fn lab(&self) -> Option<&Lab> {
        match &self.backend {
            Backend::Local { lab, .. } => lab.as_ref(),
            Backend::Kube(_) => None,
        }
    }

    /// The network namespace of node `node`.
    pub fn host(&self, node: &str) -> Result<Place> {
        match &self.backend {
            Backend::Local { topology, .. } => topology
                .nodes
                .iter()
                .find(|n| n.name == node)
                .map(|n| crate::local::LocalPlace::place(format!("host {node}"), n.netns.clone()))
                .ok_or_else(|| Error::NotFound(format!("{}: no node named {node}", self.name))),
            Backend::Kube(k) => k.host_place(node),
        }
    }

    /// The network namespace of pod `pod` (shared by all its containers).
    pub fn pod(&self, pod: &str) -> Result<Place> {
        match &self.backend {
            Backend::Local { topology, .. } => topology
                .pods
                .iter()
                .find(|p| p.name == pod)
                .map(|p| {
                    crate::local::LocalPlace::place(
                        format!("pod {}/{}", p.namespace, p.name),
                        p.netns.clone(),
                    )
                })
                .ok_or_else(|| Error::NotFound(format!("{}: no pod named {pod}", self.name))),
            Backend::Kube(k) => k.pod_place(pod),
        }
    }

    /// On a cluster, what finds a pod again as it is now (a container restarted, a pod made
    /// again); `None` on a local target, whose pods are where the target was opened.
    pub fn pod_finder(&self) -> Option<crate::kube::PodFinder> {
        match &self.backend {
            Backend::Local { .. } => None,
            Backend::Kube(k) => Some(k.pod_finder()),
        }
    }

    /// The node a pod runs on, as a place.
    pub fn host_of(&self, pod: &str) -> Result<Place> {
        let node = self.pod_facts(pod)?.node.clone();
        self.host(&node)
    }

    /// The facts of one pod.
    pub fn pod_facts(&self, pod: &str) -> Result<&crate::facts::PodFacts> {
        self.facts
            .pod(pod)
            .ok_or_else(|| Error::NotFound(format!("{}: no pod named {pod}", self.name)))
    }

    /// One place per container of `pod`, each entered through that container's own process.
    /// Empty when the target cannot tell containers apart (a topology file without them).
    pub fn containers(&self, pod: &str) -> Result<Vec<(String, Place)>> {
        match &self.backend {
            Backend::Local { topology, .. } => {
                let p = topology
                    .pods
                    .iter()
                    .find(|p| p.name == pod)
                    .ok_or_else(|| Error::NotFound(format!("{}: no pod named {pod}", self.name)))?;
                Ok(p.containers
                    .iter()
                    .map(|(c, netns)| {
                        (
                            c.clone(),
                            crate::local::LocalPlace::place(
                                format!("container {}/{}/{c}", p.namespace, p.name),
                                netns.clone(),
                            ),
                        )
                    })
                    .collect())
            }
            Backend::Kube(k) => k.container_places(pod),
        }
    }

    /// Ends the target: the lab's namespaces go with their holders, the cluster namespace is
    /// deleted.
    pub async fn close(self) -> Result<()> {
        match self.backend {
            Backend::Local { lab, .. } => {
                if let Some(lab) = lab {
                    lab.teardown().await?;
                }
                Ok(())
            }
            Backend::Kube(k) => {
                if crate::run::shared_with_other_processes() {
                    // Other test processes of this nextest run still use the namespace; the
                    // run's last step (`cargo run -- cleanup`) deletes it.
                    tracing::info!(
                        "leaving namespace calico-conformance-{} to the other processes of this nextest run",
                        crate::run::run_id()
                    );
                    return Ok(());
                }
                k.teardown().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_target_values() {
        assert_eq!(parse_selection("").map(|v| v.len()).ok(), Some(4));
        assert_eq!(
            parse_selection("lab:dualstack").ok(),
            Some(vec![TargetKind::LabDualStack(Encapsulation::None)])
        );
        assert_eq!(
            parse_selection("lab:vxlan-dualstack").ok(),
            Some(vec![TargetKind::LabDualStack(Encapsulation::Vxlan)])
        );
        assert_eq!(
            parse_selection("topology:/tmp/t.json").ok(),
            Some(vec![TargetKind::Topology(PathBuf::from("/tmp/t.json"))])
        );
        assert_eq!(parse_selection("kube").ok(), Some(vec![TargetKind::Kube]));
        let err = parse_selection("minikube")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("CALICO_TARGET=\"minikube\""), "{err}");
        assert!(parse_selection("topology:").is_err());
    }
}
