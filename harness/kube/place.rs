//! Places on a cluster: exec in the node probe pod.

use crate::error::{Error, Result};
use crate::place::CmdOutput;
use std::time::Duration;

/// A place on a cluster: the node probe (host) or, through it, a pod's namespace.
#[derive(Clone)]
pub struct KubePlace {
    label: String,
}

impl KubePlace {
    /// Human name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `argv` in the place.
    pub async fn run(&self, argv: &[&str], _deadline: Duration) -> Result<CmdOutput> {
        Err(Error::Kube(format!("not implemented: {}", argv.join(" "))))
    }
}
