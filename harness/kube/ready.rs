//! Pod readiness: what "Ready" and "cannot be scheduled" mean for the suite's pods, and the
//! message a user sees when a pod never became Ready (phase, each container's state with its
//! reason and message, the latest events).

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

/// How many events a not-ready message shows.
pub const EVENTS_SHOWN: usize = 8;

fn condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Why the sweep leaves `node` out, or `None` when it is Ready and schedulable: `NotReady`
/// (its `Ready` condition is not `True`, or missing; with the condition's reason and message)
/// or `cordoned` (`spec.unschedulable`). Such a node is reported, not failed.
pub fn not_sweepable(node: &k8s_openapi::api::core::v1::Node) -> Option<String> {
    let ready = (node.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        None => return Some("NotReady: the node reports no Ready condition".into()),
        Some(c) if c.status != "True" => {
            let mut why = format!("NotReady (Ready={})", c.status);
            for part in [&c.reason, &c.message].into_iter().flatten() {
                why += &format!(": {part}");
            }
            return Some(why);
        }
        Some(_) => {}
    }
    let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    cordoned.then(|| "cordoned (spec.unschedulable)".into())
}

/// True when the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// The scheduler's message when the pod cannot be scheduled (`PodScheduled=False`,
/// reason `Unschedulable`), e.g. because no other node satisfies an anti-affinity.
pub fn unschedulable(pod: &Pod) -> Option<String> {
    let c = condition(pod, "PodScheduled")?;
    (c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
        .then(|| c.message.clone().unwrap_or_else(|| "Unschedulable".into()))
}

fn container_state(c: &ContainerStatus) -> String {
    let Some(state) = c.state.as_ref() else {
        return "no state reported".into();
    };
    let detail = |reason: Option<&String>, message: Option<&String>| {
        let mut s = String::new();
        if let Some(r) = reason {
            s += &format!(" {r}");
        }
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            s += &format!(": {m}");
        }
        s
    };
    if let Some(w) = &state.waiting {
        format!("waiting{}", detail(w.reason.as_ref(), w.message.as_ref()))
    } else if let Some(t) = &state.terminated {
        format!(
            "terminated with exit code {}{}",
            t.exit_code,
            detail(t.reason.as_ref(), t.message.as_ref())
        )
    } else if state.running.is_some() {
        format!("running, ready={}", c.ready)
    } else {
        "no state reported".into()
    }
}

/// When an event last happened (last timestamp, event time, first timestamp, creation).
pub fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The message for a pod that did not become Ready within `waited`: the pod, its phase and
/// node, unmet conditions, each container's state (reason and message), and the latest
/// [`EVENTS_SHOWN`] events of the pod, oldest first.
pub fn describe_not_ready(pod: &Pod, events: &[Event], waited: Duration) -> String {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("?");
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("unknown");
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("no node yet");
    let mut out = format!(
        "pod {ns}/{name} did not become Ready within {} s: phase {phase}, node {node}",
        waited.as_secs()
    );
    for c in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.status != "True")
    {
        out += &format!("\n  condition {}={}", c.type_, c.status);
        if let Some(r) = &c.reason {
            out += &format!(" {r}");
        }
        if let Some(m) = &c.message {
            out += &format!(": {m}");
        }
    }
    let statuses = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .collect::<Vec<_>>();
    if statuses.is_empty() {
        out += "\n  no container has a status yet";
    }
    for c in statuses {
        out += &format!(
            "\n  container {} ({}): {}",
            c.name,
            c.image,
            container_state(c)
        );
    }
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect();
    let mut sorted = mine.clone();
    sorted.sort_by_key(|e| event_time(e));
    let shown = &sorted[sorted.len().saturating_sub(EVENTS_SHOWN)..];
    if shown.is_empty() {
        out += "\n  no events";
    } else {
        out += &format!("\n  latest events ({} of {}):", shown.len(), mine.len());
    }
    for e in shown {
        let when = event_time(e)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into());
        out += &format!(
            "\n    {when} {} {}: {}",
            e.type_.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("-"),
            e.message.as_deref().unwrap_or("").trim()
        );
        if let Some(n) = e.count.filter(|n| *n > 1) {
            out += &format!(" (x{n})");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded node is Ready and schedulable; the same node NotReady (as the kubelet
    /// reports a node it stopped hearing from) or cordoned is left out, saying why.
    #[test]
    fn not_ready_and_cordoned_nodes_are_left_out_of_the_sweep_saying_why() {
        use k8s_openapi::api::core::v1::Node;
        let recorded = crate::kube::fake_api::recorded("kube/node-k8s-worker-1.json");
        let node: Node = serde_json::from_value(recorded).unwrap();
        assert_eq!(not_sweepable(&node), None);
        let mut down = node.clone();
        for c in down.status.as_mut().unwrap().conditions.as_mut().unwrap() {
            if c.type_ == "Ready" {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
            }
        }
        assert_eq!(
            not_sweepable(&down).as_deref(),
            Some(
                "NotReady (Ready=Unknown): NodeStatusUnknown: Kubelet stopped posting node status."
            )
        );
        let mut cordoned = node;
        cordoned.spec.get_or_insert_default().unschedulable = Some(true);
        assert_eq!(
            not_sweepable(&cordoned).as_deref(),
            Some("cordoned (spec.unschedulable)")
        );
    }

    fn read(path: &str) -> String {
        crate::fixtures::read_text(&format!("recorded/kube/{path}"))
    }

    #[test]
    fn an_image_pull_failure_is_described_with_reason_message_and_events() {
        let pod: Pod = serde_json::from_str(&read("pod-image-pull-failure.json")).unwrap();
        let list: serde_json::Value =
            serde_json::from_str(&read("events-image-pull-failure.json")).unwrap();
        let events: Vec<Event> = serde_json::from_value(list["items"].clone()).unwrap();
        assert!(!is_ready(&pod));
        assert_eq!(unschedulable(&pod), None);
        let text = describe_not_ready(&pod, &events, Duration::from_secs(180));
        println!("{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "pod default/badimage did not become Ready within 180 s: phase Pending, node k8s-worker-1"
        );
        assert!(text.contains(
            "container badimage (docker.io/nosuch/image:1): waiting ErrImagePull: rpc error: code = NotFound"
        ));
        assert!(text.contains("condition Ready=False ContainersNotReady"));
        assert!(text.contains("latest events (7 of 7):"));
        // Oldest first: the Scheduled event (eventTime only) leads, the BackOff errors end it.
        let scheduled = text.find("Normal Scheduled").unwrap();
        let failed = text.find("Warning Failed: Failed to pull image").unwrap();
        assert!(scheduled < failed);
        assert!(text.contains("Warning MissingClusterDNS") && text.contains("(x3)"));
        assert!(
            lines.last().unwrap().contains("ImagePullBackOff")
                || text.contains("Error: ImagePullBackOff")
        );
    }

    #[test]
    fn recorded_running_pods_are_ready() {
        let pod: Pod = serde_json::from_str(&read("pod-test-tools.json")).unwrap();
        assert!(is_ready(&pod));
    }

    #[test]
    fn an_anti_affinity_with_no_other_node_is_unschedulable() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "test-tools-remote", "namespace": "ns"},
            "status": {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/2 nodes are available: 1 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }."
            }]}
        }))
        .unwrap();
        let why = unschedulable(&pod).unwrap();
        assert!(why.contains("anti-affinity"), "{why}");
        let text = describe_not_ready(&pod, &[], Duration::from_secs(5));
        assert!(
            text.contains("no node yet") && text.contains("no events"),
            "{text}"
        );
    }
}
