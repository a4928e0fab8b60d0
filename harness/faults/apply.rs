//! What each fault of the catalogue does to a correct lab: one function per fault, named
//! after it (the catalogue in `faults.rs` says what each models and which claims it targets).

use super::Switches;
use super::edit::{cali, first_block_of, ip, masquerade, pod_ip, run, set_proxy_arp};
use crate::error::{Error, Result};
use crate::facts::Encapsulation;
use crate::target::{CLIENT_POD, REMOTE_POD, SERVER_POD, Target};
use std::sync::atomic::Ordering;

pub(super) async fn host_end_mac_not_eeee(t: &mut Target, _: &Switches) -> Result<()> {
    let dev = cali(t, CLIENT_POD)?;
    ip(
        &t.host_of(CLIENT_POD)?,
        &format!("link set dev {dev} address ee:ee:ee:ee:ee:ef"),
    )
    .await
}

pub(super) async fn proxy_arp_off(t: &mut Target, _: &Switches) -> Result<()> {
    set_proxy_arp(&t.host_of(CLIENT_POD)?, &cali(t, CLIENT_POD)?, "0")
}

pub(super) async fn proxy_arp_off_static_neighbour(t: &mut Target, s: &Switches) -> Result<()> {
    proxy_arp_off(t, s).await?;
    ip(
        &t.pod(CLIENT_POD)?,
        "neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent",
    )
    .await
}

pub(super) async fn pod_eth0_noarp(t: &mut Target, _: &Switches) -> Result<()> {
    ip(&t.pod(CLIENT_POD)?, "link set dev eth0 arp off").await
}

pub(super) async fn host_route_missing(t: &mut Target, _: &Switches) -> Result<()> {
    let addr = pod_ip(t, CLIENT_POD)?;
    ip(&t.host_of(CLIENT_POD)?, &format!("route del {addr}/32")).await
}

pub(super) async fn host_route_wrong_cali(t: &mut Target, _: &Switches) -> Result<()> {
    let addr = pod_ip(t, CLIENT_POD)?;
    let dev = cali(t, SERVER_POD)?;
    ip(
        &t.host_of(CLIENT_POD)?,
        &format!("route replace {addr}/32 dev {dev} scope link"),
    )
    .await
}

pub(super) async fn pod_address_slash24(t: &mut Target, _: &Switches) -> Result<()> {
    let addr = pod_ip(t, CLIENT_POD)?;
    let pod = t.pod(CLIENT_POD)?;
    ip(&pod, &format!("addr add {addr}/24 dev eth0 noprefixroute")).await?;
    ip(&pod, &format!("addr del {addr}/32 dev eth0")).await
}

pub(super) async fn extra_pod_route(t: &mut Target, _: &Switches) -> Result<()> {
    ip(
        &t.pod(CLIENT_POD)?,
        "route add 10.96.0.0/12 via 169.254.1.1 dev eth0",
    )
    .await
}

pub(super) async fn gateway_assigned(t: &mut Target, _: &Switches) -> Result<()> {
    let dev = cali(t, CLIENT_POD)?;
    ip(
        &t.host_of(CLIENT_POD)?,
        &format!("addr add 169.254.1.1/32 dev {dev}"),
    )
    .await
}

pub(super) async fn mtu_mismatch(t: &mut Target, _: &Switches) -> Result<()> {
    ip(&t.pod(CLIENT_POD)?, "link set dev eth0 mtu 1400").await
}

pub(super) async fn no_blackhole(t: &mut Target, _: &Switches) -> Result<()> {
    let (node, block) = first_block_of(t, CLIENT_POD)?;
    ip(&t.host(&node)?, &format!("route del blackhole {block}")).await
}

pub(super) async fn host_end_misnamed(t: &mut Target, _: &Switches) -> Result<()> {
    let host = t.host_of(CLIENT_POD)?;
    let name = cali(t, CLIENT_POD)?;
    ip(&host, &format!("link set dev {name} down")).await?;
    ip(&host, &format!("link set dev {name} name vethd9d486e5")).await?;
    ip(&host, "link set dev vethd9d486e5 up").await?;
    let addr = pod_ip(t, CLIENT_POD)?;
    ip(
        &host,
        &format!("route replace {addr}/32 dev vethd9d486e5 scope link"),
    )
    .await
}

pub(super) async fn host_end_not_on_host(t: &mut Target, _: &Switches) -> Result<()> {
    let remote = t.host_of(REMOTE_POD)?;
    let netns = remote
        .netns()
        .map(|p| p.display().to_string())
        .ok_or_else(|| Error::Preflight("local lab only".into()))?;
    let pid = netns
        .trim_start_matches("/proc/")
        .trim_end_matches("/ns/net")
        .to_string();
    let dev = cali(t, CLIENT_POD)?;
    ip(
        &t.host_of(CLIENT_POD)?,
        &format!("link set dev {dev} netns {pid}"),
    )
    .await
}

pub(super) async fn containers_in_separate_netns(t: &mut Target, _: &Switches) -> Result<()> {
    let other = t
        .pod(CLIENT_POD)?
        .netns()
        .map(|p| p.to_path_buf())
        .ok_or_else(|| Error::Preflight("local lab only".into()))?;
    let topo = t
        .topology_mut()
        .ok_or_else(|| Error::Preflight("local lab only".into()))?;
    let pod = topo
        .pods
        .iter_mut()
        .find(|p| p.name == SERVER_POD)
        .ok_or_else(|| Error::NotFound(SERVER_POD.into()))?;
    pod.containers.insert("curl-client".into(), other);
    Ok(())
}

pub(super) async fn client_uses_pod_ip(_: &mut Target, s: &Switches) -> Result<()> {
    s.c2c_client_uses_pod_ip.store(true, Ordering::SeqCst);
    Ok(())
}

pub(super) async fn dead_capture(_: &mut Target, s: &Switches) -> Result<()> {
    s.blind_captures.store(true, Ordering::SeqCst);
    Ok(())
}

pub(super) async fn same_node_traffic_mirrored_to_underlay(
    t: &mut Target,
    _: &Switches,
) -> Result<()> {
    let host = t.host_of(SERVER_POD)?;
    let dev = cali(t, SERVER_POD)?;
    run(&host, &format!("tc qdisc add dev {dev} clsact")).await?;
    run(
        &host,
        &format!(
            "tc filter add dev {dev} egress protocol ip u32 match u32 0 0 \
             action mirred egress mirror dev ens192"
        ),
    )
    .await
}

/// Rebuilds the server's node the way kubenet/flannel do: both local pods' host ends move onto a
/// bridge `cbr0` holding the gateway 192.168.1.1/26, pods get /26 addresses and a real gateway,
/// the /32 routes go.
pub(super) async fn bridged_dataplane(t: &mut Target, _: &Switches) -> Result<()> {
    let (node, block) = first_block_of(t, SERVER_POD)?;
    let host = t.host(&node)?;
    let gw = std::net::Ipv4Addr::from(u32::from(block.network()) + 1);
    let prefix = block.prefix_len();
    ip(&host, "link add cbr0 type bridge").await?;
    ip(&host, &format!("addr add {gw}/{prefix} dev cbr0")).await?;
    ip(&host, "link set cbr0 up").await?;
    for (i, pod) in [SERVER_POD, CLIENT_POD].iter().enumerate() {
        let addr = pod_ip(t, pod)?;
        let old = cali(t, pod)?;
        let new = format!("veth{i}bridged");
        ip(&host, &format!("route del {addr}/32")).await?;
        ip(&host, &format!("link set dev {old} down")).await?;
        ip(&host, &format!("link set dev {old} name {new}")).await?;
        ip(
            &host,
            &format!("link set dev {new} address 02:00:00:00:00:0{i}"),
        )
        .await?;
        set_proxy_arp(&host, &new, "0")?;
        ip(&host, &format!("link set dev {new} master cbr0 up")).await?;
        let p = t.pod(pod)?;
        ip(&p, "route flush dev eth0").await?;
        ip(&p, &format!("addr add {addr}/{prefix} dev eth0")).await?;
        ip(&p, &format!("addr del {addr}/32 dev eth0")).await?;
        ip(&p, &format!("route add default via {gw} dev eth0")).await?;
    }
    Ok(())
}

pub(super) async fn snat_between_pods(t: &mut Target, _: &Switches) -> Result<()> {
    let client = pod_ip(t, CLIENT_POD)?;
    let server = pod_ip(t, SERVER_POD)?;
    masquerade(
        &t.host_of(CLIENT_POD)?,
        &format!("ip saddr {client} ip daddr {server}"),
    )
    .await
}

pub(super) async fn remote_block_route_missing(t: &mut Target, _: &Switches) -> Result<()> {
    let (_, block) = first_block_of(t, SERVER_POD)?;
    ip(&t.host_of(REMOTE_POD)?, &format!("route del {block}")).await
}

pub(super) async fn snat_across_nodes(t: &mut Target, _: &Switches) -> Result<()> {
    let remote = pod_ip(t, REMOTE_POD)?;
    masquerade(
        &t.host_of(REMOTE_POD)?,
        &format!("oifname ens192 ip saddr {remote}"),
    )
    .await
}

pub(super) async fn vxlan_while_pool_says_none(t: &mut Target, _: &Switches) -> Result<()> {
    for p in &mut t.facts.pools {
        p.encapsulation = Encapsulation::None;
    }
    Ok(())
}

pub(super) async fn plain_while_pool_says_vxlan(t: &mut Target, _: &Switches) -> Result<()> {
    for p in &mut t.facts.pools {
        p.encapsulation = Encapsulation::Vxlan;
    }
    for n in &mut t.facts.nodes {
        n.vxlan_tunnel_address = n.blocks.first().map(|b| b.network());
    }
    Ok(())
}

pub(super) async fn pod_lo_down(t: &mut Target, _: &Switches) -> Result<()> {
    ip(&t.pod(CLIENT_POD)?, "link set dev lo down").await
}
