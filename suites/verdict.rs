//! What a claim comes to (an outcome, or the failure and whether the dataplane or the
//! observation is at fault) and how long its observations may wait. Shared by the claim
//! context and the runner, below both.

use calico_conformance::expect::Check;
use std::time::Duration;

/// How long one claim may take, whatever it waits for (Calico's e2e rule for conformance
/// tests is 15 s; the lab takes milliseconds).
pub const CLAIM_DEADLINE: Duration = Duration::from_secs(30);
/// How long a capture waits for frames it expects.
pub const SEE_DEADLINE: Duration = Duration::from_secs(5);
/// How long an HTTP GET or ping may take.
pub const TRAFFIC_DEADLINE: Duration = Duration::from_secs(5);

/// Why a claim failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The dataplane is not as claimed: the check that failed.
    Claim(Box<Check>),
    /// The observation could not be made (a command failed, a pod is missing).
    Harness(String),
}

impl From<calico_conformance::Error> for Failure {
    fn from(e: calico_conformance::Error) -> Self {
        Failure::Harness(e.to_string())
    }
}

impl From<Box<Check>> for Failure {
    fn from(check: Box<Check>) -> Self {
        Failure::Claim(check)
    }
}

/// The result of a claim: every check held, or the failure.
pub type Outcome = Result<(), Failure>;
