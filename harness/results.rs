//! What one claim case concluded, as data: the record a run keeps per case and a
//! machine-readable report is written from (`serde`).

use crate::expect::Check;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;
use std::time::Duration;

/// A case's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every check held.
    Passed,
    /// A check failed, or the observation could not be made (then `reason` says why).
    Failed,
    /// The claim does not apply to this case; `reason` says why.
    NotApplicable,
}

/// One claim case: which claim, where, its status and why, every check it made (each with its
/// expected and observed text and value, and the evidence it judged), the evidence kept, and how
/// long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The claim's ID: `POD-R1`.
    pub claim: String,
    /// The claim's sentence.
    pub sentence: String,
    /// The target's name: `lab_none`.
    pub target: String,
    /// The pod of a per-pod claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub status: Status,
    /// Why the claim does not apply, or why it could not be observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The checks made, in order; for a claim failure the last is the one that failed.
    pub checks: Vec<Check>,
    /// The folder the evidence was written to (failures, and every case with
    /// `CALICO_EVIDENCE=always`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_dir: Option<PathBuf>,
    /// The evidence files kept (names in `evidence_dir`).
    pub evidence: Vec<String>,
    /// How long the case took, locks and all.
    #[serde(
        rename = "duration_ms",
        serialize_with = "millis",
        deserialize_with = "from_millis"
    )]
    pub duration: Duration,
    /// The failure message as printed: ID and sentence, expected, observed, evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn from_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = f64::deserialize(d)?;
    Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
}

impl CaseResult {
    /// A case of `claim` (ID and sentence) on `target`, for `pod`, not yet concluded.
    pub fn new(claim: (&str, &str), target: &str, pod: Option<&str>) -> CaseResult {
        CaseResult {
            claim: claim.0.to_string(),
            sentence: claim.1.to_string(),
            target: target.to_string(),
            pod: pod.map(str::to_string),
            status: Status::Passed,
            reason: None,
            checks: Vec::new(),
            evidence_dir: None,
            evidence: Vec::new(),
            duration: Duration::ZERO,
            message: None,
        }
    }

    /// The case does not apply, because `reason`.
    pub fn not_applicable(mut self, reason: impl Into<String>) -> CaseResult {
        self.status = Status::NotApplicable;
        self.reason = Some(reason.into());
        self
    }

    /// The check that failed, for a claim failure.
    pub fn failed_check(&self) -> Option<&Check> {
        self.checks.iter().rev().find(|c| !c.passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{Value, eq};

    #[test]
    fn a_result_serializes_with_structured_values() {
        let mut r = CaseResult::new(("POD-I3", "The pod MTU"), "lab_none", Some("test-tools"));
        r.status = Status::Failed;
        r.checks
            .push(eq("eth0 MTU", Value::Mtu(1500), Value::Mtu(1400)).judging("ip.out"));
        r.duration = Duration::from_micros(1500);
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(json["status"], "failed");
        assert_eq!(json["duration_ms"], 1.5);
        assert_eq!(json["checks"][0]["expected"]["value"]["mtu"], 1500);
        assert_eq!(json["checks"][0]["observed"]["text"], "eth0 MTU: 1400");
        assert_eq!(json["checks"][0]["evidence"][0], "ip.out");
        assert_eq!(r.failed_check().map(|c| c.what.as_str()), Some("eth0 MTU"));
        let na = CaseResult::new(("XN-1", "s"), "kube", None).not_applicable("one node");
        let json = serde_json::to_value(&na).expect("serializes");
        assert_eq!(json["status"], "not_applicable");
        assert_eq!(json["reason"], "one node");
        assert!(json.get("pod").is_none());
    }
}
