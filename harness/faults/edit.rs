//! The edits faults make, as small helpers: a command line run in a place (`ip ...`, `tc ...`,
//! `nft ...`), a sysctl written in a local place's namespace, and the lab's names and
//! addresses they need.

use crate::calico::host_end_name;
use crate::error::{Error, Result};
use crate::place::Place;
use crate::target::Target;
use ipnet::Ipv4Net;

/// A pod's host end, `cali` + sha1("<its namespace>.<pod>")[:11].
pub(super) fn cali(t: &Target, pod: &str) -> Result<String> {
    let p = t.pod_facts(pod)?;
    Ok(host_end_name(&p.namespace, &p.name))
}

/// A pod's IP, as text.
pub(super) fn pod_ip(t: &Target, pod: &str) -> Result<String> {
    Ok(t.pod_facts(pod)?.ip.to_string())
}

/// The first block of the node `pod` runs on, and that node's name.
pub(super) fn first_block_of(t: &Target, pod: &str) -> Result<(String, Ipv4Net)> {
    let node = t.pod_facts(pod)?.node.clone();
    let block = t
        .facts
        .node(&node)
        .and_then(|n| n.blocks.first().copied())
        .ok_or_else(|| Error::NotFound(format!("{node} has no block")))?;
    Ok((node, block))
}

/// Runs `line` in `place`, split at whitespace into the command and its arguments (no
/// argument a fault passes holds a space).
pub(super) async fn run(place: &Place, line: &str) -> Result<()> {
    let argv: Vec<&str> = line.split_whitespace().collect();
    place.run_ok(&argv).await.map(|_| ())
}

/// `ip <args>` in `place`: the edit most faults make.
pub(super) async fn ip(place: &Place, args: &str) -> Result<()> {
    run(place, &format!("ip {args}")).await
}

/// Writes a sysctl inside a local place's namespace; `path` has `{}` where the interface goes.
fn write_sysctl(place: &Place, path: &'static str, iface: &str, value: &'static str) -> Result<()> {
    let netns = place
        .netns()
        .ok_or_else(|| Error::Preflight("faults apply to local namespaces only".into()))?
        .to_path_buf();
    let path = path.replace("{}", iface);
    crate::netns::in_netns(&netns, move || {
        std::fs::write(&path, value).map_err(|e| Error::io(format!("writing {path}"), e))
    })
}

/// The IPv6 sysctl `leaf` of `iface` (`all` for the node-wide one) in a local `place`.
pub(super) fn set_ipv6_conf(
    place: &Place,
    iface: &str,
    leaf: &str,
    value: &'static str,
) -> Result<()> {
    let netns = place
        .netns()
        .ok_or_else(|| Error::Preflight("faults apply to local namespaces only".into()))?
        .to_path_buf();
    let path = format!("/proc/sys/net/ipv6/conf/{iface}/{leaf}");
    crate::netns::in_netns(&netns, move || {
        std::fs::write(&path, value).map_err(|e| Error::io(format!("writing {path}"), e))
    })
}

/// A pod's IPv6 address, as text (the dual-stack lab gives every pod one).
pub(super) fn pod_ipv6(t: &Target, pod: &str) -> Result<String> {
    (t.pod_facts(pod)?.ipv6)
        .map(|ip| ip.to_string())
        .ok_or_else(|| Error::NotFound(format!("pod {pod} has no IPv6 address (not dual stack)")))
}

/// `proxy_arp` of `iface` in `place`.
pub(super) fn set_proxy_arp(place: &Place, iface: &str, value: &'static str) -> Result<()> {
    write_sysctl(place, "/proc/sys/net/ipv4/conf/{}/proxy_arp", iface, value)
}

/// Masquerades packets matching `selector` (nft words) as they leave the node (nftables NAT).
pub(super) async fn masquerade(host: &Place, selector: &str) -> Result<()> {
    run(host, "nft add table ip cc").await?;
    run(
        host,
        "nft add chain ip cc post { type nat hook postrouting priority 100 ; }",
    )
    .await?;
    run(
        host,
        &format!("nft add rule ip cc post {selector} masquerade"),
    )
    .await
}
