//! Places on a cluster: exec in the node probe pod.

use crate::error::{Error, Result};
use crate::place::CmdOutput;
use std::net::Ipv4Addr;
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

    /// Starts `tcpdump` on `iface` in the place (work in progress).
    pub async fn capture(&self, iface: &str, _bpf: &str) -> Result<crate::capture::Capture> {
        Err(Error::Kube(format!("not implemented: capture on {iface}")))
    }

    /// `GET /` with curl (work in progress).
    pub async fn http_get(
        &self,
        ip: Ipv4Addr,
        port: u16,
        _src_port: u16,
        _deadline: Duration,
    ) -> Result<Vec<u8>> {
        Err(Error::Kube(format!("not implemented: GET {ip}:{port}")))
    }

    /// Ping returning TTLs (work in progress).
    pub async fn ping(&self, ip: Ipv4Addr, _count: u16, _deadline: Duration) -> Result<Vec<u8>> {
        Err(Error::Kube(format!("not implemented: ping {ip}")))
    }
}
