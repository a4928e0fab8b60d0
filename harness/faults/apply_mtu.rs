//! The MTU faults of the catalogue (MTU along the path): one function per fault, named after
//! it. Kept apart from `apply.rs` so the MTU section reads, and merges, as one block.

use super::Switches;
use super::edit::{cali, ip, run};
use crate::error::Result;
use crate::target::{CLIENT_POD, REMOTE_POD, SERVER_POD, Target};

/// The wire between the nodes in the lab: `ens192` at both ends.
const UNDERLAY: &str = "ens192";

/// The cluster's MTU set to 1400 (an Installation MTU): k8s-worker-1's pods and host ends
/// have it, its `vxlan.calico` keeps the 1450 computed from the underlay. (The kernel refuses
/// a VXLAN MTU above its lower device's less 50, so the tunnel cannot be raised instead.)
pub(super) async fn vxlan_device_mtu_above_cali(t: &mut Target, _: &Switches) -> Result<()> {
    t.facts.configured_mtu = Some(1400);
    let host = t.host_of(CLIENT_POD)?;
    for pod in [CLIENT_POD, SERVER_POD] {
        ip(&t.pod(pod)?, "link set dev eth0 mtu 1400").await?;
        ip(&host, &format!("link set dev {} mtu 1400", cali(t, pod)?)).await?;
    }
    Ok(())
}

pub(super) async fn underlay_mtu_below_vxlan(t: &mut Target, _: &Switches) -> Result<()> {
    for pod in [CLIENT_POD, REMOTE_POD] {
        ip(
            &t.host_of(pod)?,
            &format!("link set dev {UNDERLAY} mtu 1450"),
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn underlay_path_black_hole(t: &mut Target, _: &Switches) -> Result<()> {
    ip(
        &t.host_of(REMOTE_POD)?,
        &format!("link set dev {UNDERLAY} mtu 1400"),
    )
    .await
}

pub(super) async fn cali_mtu_below_eth0(t: &mut Target, _: &Switches) -> Result<()> {
    let dev = cali(t, CLIENT_POD)?;
    ip(
        &t.host_of(CLIENT_POD)?,
        &format!("link set dev {dev} mtu 1400"),
    )
    .await
}

/// An nftables rule in test-tools' own namespace that rewrites the MSS of every SYN it sends.
pub(super) async fn mss_clamped_in_pod(t: &mut Target, _: &Switches) -> Result<()> {
    let pod = t.pod(CLIENT_POD)?;
    run(&pod, "nft add table ip mssclamp").await?;
    run(
        &pod,
        "nft add chain ip mssclamp out { type filter hook output priority mangle ; }",
    )
    .await?;
    run(
        &pod,
        "nft add rule ip mssclamp out tcp flags syn tcp option maxseg size set 1200",
    )
    .await
}
