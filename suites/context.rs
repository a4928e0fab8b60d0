//! A claim's context: its target and case, and the observations, captures and checks it makes
//! through [`Cx`], each of which keeps its own evidence. Also the recordings several claims
//! judge ([`Recording`]), made once per target and shared through [`Shared`].

use super::verdict::{Failure, Outcome, SEE_DEADLINE, TRAFFIC_DEADLINE};
use calico_conformance::capture::{Capture, CaptureResult};
use calico_conformance::evidence::Evidence;
use calico_conformance::expect::frames::{Frames, Match};
use calico_conformance::expect::{Check, Checks, link};
use calico_conformance::facts::{NodeFacts, PodFacts};
use calico_conformance::faults::Switches;
use calico_conformance::observe::ip::{Interface, Link, Neighbour, Route};
use calico_conformance::observe::packet::{Frame, Mac};
use calico_conformance::observe::sysctl::Sysctls;
use calico_conformance::observe::{self, Observed};
use calico_conformance::place::Place;
use calico_conformance::target::Target;
use calico_conformance::traffic::EchoReply;
use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// What a claim gets: its target, its case, its evidence and the checks it made.
pub struct Cx<'a> {
    pub target: &'a Target,
    /// The pod of a per-pod claim.
    pub pod: Option<&'a str>,
    pub evidence: Evidence,
    pub checks: Checks,
    shared: &'a Shared,
}

impl<'a> Cx<'a> {
    /// The context of one case.
    pub fn new(
        target: &'a Target,
        pod: Option<&'a str>,
        evidence: Evidence,
        shared: &'a Shared,
    ) -> Self {
        Cx {
            target,
            pod,
            evidence,
            checks: Checks::default(),
            shared,
        }
    }

    /// The fault switches of the target.
    pub fn switches(&self) -> &Switches {
        &self.shared.switches
    }

    /// Records `check`; a failed check fails the claim with it.
    pub fn expect(&self, check: Check) -> Outcome {
        Ok(self.checks.record(check)?)
    }

    /// The pod of a per-pod claim.
    pub fn pod_name(&self) -> Result<&'a str, Failure> {
        self.pod
            .ok_or_else(|| Failure::Harness("this claim runs per pod but has no pod".into()))
    }

    /// Facts of the claim's pod.
    pub fn pod_facts(&self) -> Result<&'a PodFacts, Failure> {
        Ok(self.target.pod_facts(self.pod_name()?)?)
    }

    /// The claim's pod, as a place.
    pub fn pod_place(&self) -> Result<Place, Failure> {
        Ok(self.target.pod(self.pod_name()?)?)
    }

    /// Facts of any pod; a missing pod is a harness failure naming it.
    pub fn facts_of(&self, pod: &str) -> Result<&'a PodFacts, Failure> {
        Ok(self.target.pod_facts(pod)?)
    }

    /// Facts of a node; a missing node is a harness failure naming it.
    pub fn node_facts(&self, node: &str) -> Result<&'a NodeFacts, Failure> {
        self.target
            .facts
            .node(node)
            .ok_or_else(|| Failure::Harness(format!("no facts for node {node}")))
    }

    fn keep<T>(&self, o: calico_conformance::Result<Observed<T>>) -> Result<Observed<T>, Failure> {
        let o = o?;
        self.evidence.observed(&o);
        Ok(o)
    }

    /// The links of `at` (`ip -d -j link`), kept as evidence.
    pub async fn links(&self, at: &Place) -> Result<Observed<Vec<Link>>, Failure> {
        self.keep(observe::links(at).await)
    }

    /// The interfaces of `at` with their addresses (`ip -d -j addr`), kept as evidence.
    pub async fn interfaces(&self, at: &Place) -> Result<Observed<Vec<Interface>>, Failure> {
        self.keep(observe::interfaces(at).await)
    }

    /// The IPv4 routes of `at` (`ip -j -4 route`), kept as evidence.
    pub async fn routes(&self, at: &Place) -> Result<Observed<Vec<Route>>, Failure> {
        self.keep(observe::routes(at, true).await)
    }

    /// The IPv6 routes of `at` (`ip -j -6 route`), kept as evidence.
    pub async fn routes6(&self, at: &Place) -> Result<Observed<Vec<Route>>, Failure> {
        self.keep(observe::routes(at, false).await)
    }

    /// The IPv6 neighbours of `at` (`ip -j -6 neigh`), kept as evidence.
    pub async fn neighbours6(&self, at: &Place) -> Result<Observed<Vec<Neighbour>>, Failure> {
        self.keep(observe::neighbours6(at).await)
    }

    /// The IPv4 neighbours of `at` (`ip -j -4 neigh`), kept as evidence.
    pub async fn neighbours(&self, at: &Place) -> Result<Observed<Vec<Neighbour>>, Failure> {
        self.keep(observe::neighbours(at).await)
    }

    /// The sysctl files `paths` in `at`, kept as evidence.
    pub async fn sysctls(
        &self,
        at: &Place,
        paths: &[String],
    ) -> Result<Observed<Sysctls>, Failure> {
        self.keep(observe::sysctls(at, paths).await)
    }

    /// Pings `to` `count` times from `from`; the replies, kept as evidence.
    pub async fn ping(
        &self,
        from: &Place,
        to: IpAddr,
        count: u16,
    ) -> Result<Vec<EchoReply>, Failure> {
        let replies = from.ping(to, count, TRAFFIC_DEADLINE).await?;
        let name = format!("ping {} to {to}.txt", from.label());
        self.evidence.add(name, format!("{replies:?}"));
        Ok(replies)
    }

    /// A pod's eth0 and the host end of its veth, observed.
    pub async fn veth_pair(&self, pod: &str) -> Result<VethPair, Failure> {
        let pod_place = self.target.pod(pod)?;
        let host_place = self.target.host_of(pod)?;
        let pod_ifs = self.interfaces(&pod_place).await?;
        let host_interfaces = self.interfaces(&host_place).await?;
        let eth0 = link::interface(&pod_ifs, "eth0")?.clone();
        let host_end = link::peer(&host_interfaces, &eth0.link).cloned();
        Ok(VethPair {
            pod_place,
            host_place,
            eth0,
            host_end,
            host_interfaces,
        })
    }

    /// Starts a capture (live on return).
    pub async fn capture(&self, place: &Place, iface: &str, bpf: &str) -> Result<Capture, Failure> {
        Ok(place.capture(iface, bpf).await?)
    }

    /// Waits until a capture shows what `seen` looks for (always false for a dead capture).
    pub async fn wait_for(&self, capture: &Capture, seen: impl Fn(&[Frame]) -> bool) -> bool {
        if self.switches().blind_captures.load(Ordering::SeqCst) {
            // A dead capture sees nothing: wait briefly so the traffic still happens.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return false;
        }
        capture.wait_for(SEE_DEADLINE, seen).await
    }

    /// Stops a capture, keeps its pcap as evidence (after the dead-capture switch), and returns
    /// the frames `keep` matches.
    pub async fn frames(&self, capture: Capture, keep: &Match) -> Frames {
        let mut result: CaptureResult = capture.stop().await;
        if self.switches().blind_captures.load(Ordering::SeqCst) {
            result.frames.clear();
        }
        self.evidence.capture(&result);
        Frames::kept(&result, keep)
    }

    /// The recording `R` of this target: made now by the first claim that asks, shared with
    /// the others. Its evidence and checks become this claim's too.
    pub async fn recorded<R: Recording>(&self) -> Result<Arc<R>, Failure> {
        let cell = self.shared.cell::<R>()?;
        let made = cell
            .get_or_init(|| async {
                let name = type_name::<R>().rsplit("::").next().unwrap_or("recording");
                let cx = Cx::new(
                    self.target,
                    None,
                    Evidence::new("recordings", name),
                    self.shared,
                );
                let result = R::record(&cx).await.map(Arc::new);
                Recorded {
                    result,
                    evidence: cx.evidence.items(),
                    checks: cx.checks.all(),
                }
            })
            .await;
        self.evidence.include(&made.evidence);
        self.checks.extend(&made.checks);
        made.result.clone()
    }
}

/// Until every one of `wanted` is among the frames.
pub fn all_seen(wanted: &[Match]) -> impl Fn(&[Frame]) -> bool + '_ {
    |frames| wanted.iter().all(|m| frames.iter().any(|f| m.matches(f)))
}

/// Until `n` frames match `m` (a connection's handshake, request and answer: 4).
pub fn at_least_frames(n: usize, m: &Match) -> impl Fn(&[Frame]) -> bool + '_ {
    move |frames| frames.iter().filter(|f| m.matches(f)).count() >= n
}

/// Traffic and captures that several claims judge (one HTTP exchange for P2P-3, -4 and -5):
/// recorded once per target by [`Cx::recorded`].
pub trait Recording: Sized + Send + Sync + 'static {
    /// Makes the traffic and captures; observes and checks through `cx` as a claim does.
    fn record(cx: &Cx<'_>) -> impl Future<Output = Result<Self, Failure>> + Send;
}

/// A recording as made: the recording or why it could not be made, its evidence and checks.
struct Recorded<R> {
    result: Result<Arc<R>, Failure>,
    evidence: Vec<(String, Vec<u8>)>,
    checks: Vec<Check>,
}

/// What the cases of one opened target share: the fault switches and the recordings.
#[derive(Default)]
pub struct Shared {
    pub switches: Switches,
    /// By recording type: an `Arc<OnceCell<Recorded<R>>>`.
    recordings: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Shared {
    fn cell<R: Recording>(&self) -> Result<Arc<OnceCell<Recorded<R>>>, Failure> {
        let any = {
            let mut cells = self.recordings.lock().unwrap_or_else(|p| p.into_inner());
            let new = || -> Arc<dyn Any + Send + Sync> { Arc::new(OnceCell::<Recorded<R>>::new()) };
            cells.entry(TypeId::of::<R>()).or_insert_with(new).clone()
        };
        any.downcast().map_err(|_| {
            Failure::Harness(format!("the recording {} is mistyped", type_name::<R>()))
        })
    }
}

/// A pod's `eth0` and the host end of its veth, as observed (VETH-1 is the claim that they
/// pair up; other claims use this to find the host end without trusting its name).
pub struct VethPair {
    pub pod_place: Place,
    pub host_place: Place,
    pub eth0: Interface,
    /// The host link whose ifindex is eth0's iflink, or the check that found none.
    host_end: Result<Interface, Box<Check>>,
    /// Every interface of the host, as observed.
    pub host_interfaces: Observed<Vec<Interface>>,
}

impl VethPair {
    /// The host end, or the failed check saying it is missing.
    pub fn host_end(&self) -> Result<&Interface, Box<Check>> {
        self.host_end.as_ref().map_err(Clone::clone)
    }

    /// The host end's name.
    pub fn host_end_name(&self) -> Result<&str, Box<Check>> {
        Ok(&self.host_end()?.link.ifname)
    }

    /// The MAC of the pod's eth0.
    pub fn eth0_mac(&self) -> Result<Mac, Failure> {
        self.eth0
            .link
            .mac()
            .ok_or_else(|| Failure::Harness(format!("{}: eth0 has no MAC", self.pod_place.label())))
    }
}
