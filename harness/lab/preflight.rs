//! Preflight: one clear line when the lab cannot run here, before anything is built.

use super::plan::LabSpec;
use crate::error::{Error, Result};
use crate::facts::Encapsulation;
use std::path::Path;

/// The line for a missing root / capabilities.
pub const NOT_ROOT: &str = "the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces): run as root, e.g. sudo -E cargo test";

/// The line for IPIP without the ipip module.
pub const IPIP_MISSING: &str = "IPIP needs the ipip kernel module, which this kernel does not have loaded (/sys/module/ipip is absent): run `sudo modprobe ipip` (it creates tunl0 in every network namespace, the host's included) or use encapsulation None or VXLAN";

/// Tools the suite runs, with the Debian package that provides each.
const TOOLS: [(&str, &str); 2] = [("ip", "iproute2"), ("cat", "coreutils")];

/// Checks that the lab described by `spec` can be built here: privileges, tools, and the
/// kernel feature its encapsulation needs. Returns [`Error::Preflight`] with one line.
pub fn check_lab(spec: &LabSpec) -> Result<()> {
    check_privileges()?;
    for (tool, package) in TOOLS {
        if find_in_path(tool).is_none() {
            return Err(Error::Preflight(format!(
                "`{tool}` is not on PATH: install the Debian package {package} (apt-get install {package})"
            )));
        }
    }
    if spec.dual_stack && !Path::new("/proc/sys/net/ipv6").exists() {
        return Err(Error::Preflight(
            "the dual-stack lab needs IPv6: this kernel has none (/proc/sys/net/ipv6 is absent; \
             booted with ipv6.disable=1?)"
                .into(),
        ));
    }
    match spec.encapsulation {
        Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet => check_vxlan(),
        Encapsulation::Ipip | Encapsulation::IpipCrossSubnet => check_ipip_module(spec),
        Encapsulation::None => Ok(()),
    }
}

/// The one check the lab's build makes itself: an IPIP lab needs the ipip module
/// ([`IPIP_MISSING`] when it is absent).
pub fn check_ipip_module(spec: &LabSpec) -> Result<()> {
    if spec.uses_ipip() && !Path::new("/sys/module/ipip").exists() {
        return Err(Error::Preflight(IPIP_MISSING.into()));
    }
    Ok(())
}

/// Effective capabilities from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

fn check_privileges() -> Result<()> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let caps = effective_caps().unwrap_or(0);
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if has(CAP_NET_ADMIN) && has(CAP_SYS_ADMIN) {
        Ok(())
    } else {
        Err(Error::Preflight(NOT_ROOT.into()))
    }
}

fn find_in_path(tool: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Creates a VXLAN device in a throw-away namespace (held by a holder process that is killed
/// at once), never in this process's own.
fn check_vxlan() -> Result<()> {
    use super::holder::{self, HolderSpec, Ns};
    use super::netlink::{CREATE, Request, Rtnl};
    use rtnetlink::LinkVxlan;
    use rtnetlink::packet_route::RouteNetlinkMessage;

    let mut holders = holder::spawn_all(vec![HolderSpec {
        label: format!("calico-lab:preflight-{}:vxlan", std::process::id()),
        ns: Ns::New,
    }])?;
    let result = match holders.first() {
        Some(h) => crate::netns::in_netns(&h.netns(), || {
            let mut nl = Rtnl::open_here("preflight")?;
            let msg = LinkVxlan::new("vxlan-check", crate::calico::VXLAN_VNI)
                .port(crate::calico::VXLAN_PORT)
                .learning(false)
                .build();
            nl.batch(vec![Request::new(
                RouteNetlinkMessage::NewLink(msg),
                CREATE,
                "link add vxlan-check type vxlan id 4096 dstport 4789",
            )])
        }),
        None => Err(Error::Preflight("no preflight holder".into())),
    };
    for h in &mut holders {
        let _ = h.kill_and_reap();
    }
    result.map_err(|e| {
        Error::Preflight(format!(
            "the kernel cannot create VXLAN devices (is the vxlan module available? `modprobe vxlan`): {e}"
        ))
    })
}
