//! The fault catalogue: named changes applied to a correct lab after it is built, each modelled
//! on a real way a dataplane breaks. The self-test (`cargo test faults`) shows that the claims a
//! fault targets fail and the claims it should not touch still pass; `cargo run -- faults
//! --matrix` writes every claim against every fault to `docs/fault-matrix.md`.

use crate::calico::host_end_name;
use crate::error::{Error, Result};
use crate::facts::Encapsulation;
use crate::place::Place;
use crate::target::{CLIENT_POD, REMOTE_POD, SERVER_POD, Target};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};

/// Switches that change how the suite itself observes, for faults of the observer rather than
/// the dataplane.
#[derive(Default)]
pub struct Switches {
    /// Every capture sees nothing (a dead capture).
    pub blind_captures: AtomicBool,
    /// The c2c client talks to its own pod IP instead of `localhost`.
    pub c2c_client_uses_pod_ip: AtomicBool,
}

/// How a fault is applied.
pub type Apply = for<'a> fn(&'a mut Target, &'a Switches) -> BoxFuture<'a, Result<()>>;

/// One fault.
pub struct Fault {
    /// `host_end_mac_not_eeee`.
    pub name: &'static str,
    /// What it changes, and the real failure it models.
    pub what: &'static str,
    /// The lab mode it is applied to.
    pub mode: Encapsulation,
    /// Claim IDs that must fail.
    pub fails: &'static [&'static str],
    /// Claim IDs that must still pass.
    pub spares: &'static [&'static str],
    /// A tool the fault needs beyond the lab's (`nft`).
    pub needs: Option<(&'static str, &'static str)>,
    pub apply: Apply,
}

fn cali(pod: &str) -> String {
    host_end_name("default", pod)
}

async fn run(place: &Place, argv: &[&str]) -> Result<()> {
    place.run_ok(argv).await.map(|_| ())
}

fn pod_ip(t: &Target, pod: &str) -> Result<String> {
    Ok(t.pod_facts(pod)?.ip.to_string())
}

/// Writes a sysctl inside a local place's namespace.
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

macro_rules! apply {
    (|$t:ident, $s:ident| $body:block) => {
        |$t: &mut Target, $s: &Switches| -> BoxFuture<'_, Result<()>> {
            Box::pin(async move {
                let _ = &$s;
                let _ = &$t;
                $body
            })
        }
    };
}

/// The catalogue, in the order of the matrix.
pub fn catalogue() -> Vec<Fault> {
    use Encapsulation::{None as Plain, Vxlan};
    vec![
        Fault {
            name: "host_end_mac_not_eeee",
            what: "test-tools' host end has MAC ee:ee:ee:ee:ee:ef: the MAC did not stick (Calico #11336)",
            mode: Plain,
            fails: &["VETH-3", "ARP-1", "P2P-3"],
            spares: &["POD-R1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                run(
                    &t.host_of(CLIENT_POD)?,
                    &[
                        "ip",
                        "link",
                        "set",
                        "dev",
                        &cali(CLIENT_POD),
                        "address",
                        "ee:ee:ee:ee:ee:ef",
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "proxy_arp_off",
            what: "proxy_arp=0 on test-tools' host end: nobody answers for 169.254.1.1",
            mode: Plain,
            fails: &["VETH-4", "ARP-1", "ARP-2", "P2P-1", "P2P-2"],
            spares: &["POD-R1", "VETH-3"],
            needs: None,
            apply: apply!(|t, s| {
                write_sysctl(
                    &t.host_of(CLIENT_POD)?,
                    "/proc/sys/net/ipv4/conf/{}/proxy_arp",
                    &cali(CLIENT_POD),
                    "0",
                )
            }),
        },
        Fault {
            name: "proxy_arp_off_static_neighbour",
            what: "proxy_arp=0, and a static PERMANENT 169.254.1.1 entry in the pod keeps traffic flowing",
            mode: Plain,
            fails: &["VETH-4", "ARP-1", "ARP-2"],
            spares: &["P2P-1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                write_sysctl(
                    &t.host_of(CLIENT_POD)?,
                    "/proc/sys/net/ipv4/conf/{}/proxy_arp",
                    &cali(CLIENT_POD),
                    "0",
                )?;
                run(
                    &t.pod(CLIENT_POD)?,
                    &[
                        "ip",
                        "neigh",
                        "replace",
                        "169.254.1.1",
                        "lladdr",
                        "ee:ee:ee:ee:ee:ee",
                        "dev",
                        "eth0",
                        "nud",
                        "permanent",
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "pod_eth0_noarp",
            what: "test-tools' eth0 has ARP turned off: it neither asks for the gateway nor answers the host",
            mode: Plain,
            fails: &["ARP-3"],
            spares: &["POD-R1", "VETH-3"],
            needs: None,
            apply: apply!(|t, s| {
                run(
                    &t.pod(CLIENT_POD)?,
                    &["ip", "link", "set", "dev", "eth0", "arp", "off"],
                )
                .await
            }),
        },
        Fault {
            name: "host_route_missing",
            what: "test-tools' /32 host route is gone (a Felix route-sync failure)",
            mode: Plain,
            fails: &["HOST-R1", "P2P-1", "P2P-2"],
            spares: &["VETH-3", "HOST-R2"],
            needs: None,
            apply: apply!(|t, s| {
                let ip = pod_ip(t, CLIENT_POD)?;
                run(
                    &t.host_of(CLIENT_POD)?,
                    &["ip", "route", "del", &format!("{ip}/32")],
                )
                .await
            }),
        },
        Fault {
            name: "host_route_wrong_cali",
            what: "test-tools' /32 host route points at c2c-network-demo's cali link",
            mode: Plain,
            fails: &["HOST-R1", "P2P-2"],
            spares: &["VETH-3", "HOST-R2"],
            needs: None,
            apply: apply!(|t, s| {
                let ip = pod_ip(t, CLIENT_POD)?;
                run(
                    &t.host_of(CLIENT_POD)?,
                    &[
                        "ip",
                        "route",
                        "replace",
                        &format!("{ip}/32"),
                        "dev",
                        &cali(SERVER_POD),
                        "scope",
                        "link",
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "pod_address_slash24",
            what: "test-tools' eth0 holds its IP as /24 instead of /32",
            mode: Plain,
            fails: &["POD-I2"],
            spares: &["VETH-2", "HOST-R1"],
            needs: None,
            apply: apply!(|t, s| {
                let ip = pod_ip(t, CLIENT_POD)?;
                let pod = t.pod(CLIENT_POD)?;
                run(
                    &pod,
                    &[
                        "ip",
                        "addr",
                        "add",
                        &format!("{ip}/24"),
                        "dev",
                        "eth0",
                        "noprefixroute",
                    ],
                )
                .await?;
                run(
                    &pod,
                    &["ip", "addr", "del", &format!("{ip}/32"), "dev", "eth0"],
                )
                .await
            }),
        },
        Fault {
            name: "extra_pod_route",
            what: "test-tools has one more route (10.96.0.0/12 via 169.254.1.1)",
            mode: Plain,
            fails: &["POD-R1"],
            spares: &["POD-I2", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                run(
                    &t.pod(CLIENT_POD)?,
                    &[
                        "ip",
                        "route",
                        "add",
                        "10.96.0.0/12",
                        "via",
                        "169.254.1.1",
                        "dev",
                        "eth0",
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "gateway_assigned",
            what: "169.254.1.1 is assigned to test-tools' host end",
            mode: Plain,
            fails: &["POD-R2", "VETH-3"],
            spares: &["POD-R1", "HOST-R1"],
            needs: None,
            apply: apply!(|t, s| {
                run(
                    &t.host_of(CLIENT_POD)?,
                    &[
                        "ip",
                        "addr",
                        "add",
                        "169.254.1.1/32",
                        "dev",
                        &cali(CLIENT_POD),
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "mtu_mismatch",
            what: "test-tools' eth0 MTU is 1400 while its host end keeps the node's (Calico #9718)",
            mode: Plain,
            fails: &["POD-I3", "VETH-3"],
            spares: &["POD-R1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                run(
                    &t.pod(CLIENT_POD)?,
                    &["ip", "link", "set", "dev", "eth0", "mtu", "1400"],
                )
                .await
            }),
        },
        Fault {
            name: "no_blackhole",
            what: "k8s-worker-1's block has no blackhole route",
            mode: Plain,
            fails: &["HOST-R2"],
            spares: &["HOST-R1", "HOST-R3"],
            needs: None,
            apply: apply!(|t, s| {
                let node = t.pod_facts(CLIENT_POD)?.node.clone();
                let block = t
                    .facts
                    .node(&node)
                    .and_then(|n| n.blocks.first().copied())
                    .ok_or_else(|| Error::NotFound(format!("{node} has no block")))?;
                run(
                    &t.host(&node)?,
                    &["ip", "route", "del", "blackhole", &block.to_string()],
                )
                .await
            }),
        },
        Fault {
            name: "host_end_misnamed",
            what: "test-tools' host end is named veth-like (vethd9d486e5), not cali + sha1",
            mode: Plain,
            fails: &["VETH-2"],
            spares: &["VETH-1", "HOST-R1"],
            needs: None,
            apply: apply!(|t, s| {
                let host = t.host_of(CLIENT_POD)?;
                let name = cali(CLIENT_POD);
                run(&host, &["ip", "link", "set", "dev", &name, "down"]).await?;
                run(
                    &host,
                    &["ip", "link", "set", "dev", &name, "name", "vethd9d486e5"],
                )
                .await?;
                run(&host, &["ip", "link", "set", "dev", "vethd9d486e5", "up"]).await?;
                let ip = pod_ip(t, CLIENT_POD)?;
                run(
                    &host,
                    &[
                        "ip",
                        "route",
                        "replace",
                        &format!("{ip}/32"),
                        "dev",
                        "vethd9d486e5",
                        "scope",
                        "link",
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "host_end_not_on_host",
            what: "test-tools' host end was moved out of the node's namespace (a CNI teardown race)",
            mode: Plain,
            fails: &["VETH-1"],
            spares: &["POD-R1", "HOST-R2"],
            needs: None,
            apply: apply!(|t, s| {
                let remote = t.host_of(REMOTE_POD)?;
                let netns = remote
                    .netns()
                    .map(|p| p.display().to_string())
                    .ok_or_else(|| Error::Preflight("local lab only".into()))?;
                let pid = netns
                    .trim_start_matches("/proc/")
                    .trim_end_matches("/ns/net")
                    .to_string();
                run(
                    &t.host_of(CLIENT_POD)?,
                    &["ip", "link", "set", "dev", &cali(CLIENT_POD), "netns", &pid],
                )
                .await
            }),
        },
        Fault {
            name: "containers_in_separate_netns",
            what: "c2c-network-demo's curl-client runs in a network namespace of its own",
            mode: Plain,
            fails: &["C2C-1", "C2C-2"],
            spares: &["POD-R1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
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
            }),
        },
        Fault {
            name: "client_uses_pod_ip",
            what: "the c2c client talks to its own pod IP instead of localhost",
            mode: Plain,
            fails: &["C2C-2"],
            spares: &["C2C-1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                s.c2c_client_uses_pod_ip.store(true, Ordering::SeqCst);
                Ok(())
            }),
        },
        Fault {
            name: "dead_capture",
            what: "every capture sees nothing: paired-zero checks must refuse to pass",
            mode: Plain,
            fails: &["C2C-3", "P2P-5", "C2C-2", "ARP-1", "P2P-3"],
            spares: &["POD-R1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                s.blind_captures.store(true, Ordering::SeqCst);
                Ok(())
            }),
        },
        Fault {
            name: "same_node_traffic_mirrored_to_underlay",
            what: "c2c-network-demo's host end mirrors its traffic onto the underlay",
            mode: Plain,
            fails: &["P2P-5"],
            spares: &["P2P-2", "P2P-3"],
            needs: None,
            apply: apply!(|t, s| {
                let host = t.host_of(SERVER_POD)?;
                let dev = cali(SERVER_POD);
                run(&host, &["tc", "qdisc", "add", "dev", &dev, "clsact"]).await?;
                run(
                    &host,
                    &[
                        "tc", "filter", "add", "dev", &dev, "egress", "protocol", "ip", "u32",
                        "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev",
                        "ens192",
                    ],
                )
                .await
            }),
        },
        Fault {
            name: "bridged_dataplane",
            what: "pods on a Linux bridge with a real gateway, as kubenet or flannel build them",
            mode: Plain,
            fails: &[
                "P2P-1", "VETH-2", "VETH-3", "VETH-4", "POD-R1", "ARP-1", "HOST-R1",
            ],
            spares: &["C2C-2", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| { bridge_pods(t).await }),
        },
        Fault {
            name: "snat_between_pods",
            what: "traffic from test-tools reaches c2c-network-demo source-NATed to the node's address",
            mode: Plain,
            fails: &["P2P-4"],
            spares: &["P2P-2", "P2P-1"],
            needs: Some(("nft", "nftables")),
            apply: apply!(|t, s| {
                let client = pod_ip(t, CLIENT_POD)?;
                let server = pod_ip(t, SERVER_POD)?;
                masquerade(
                    &t.host_of(CLIENT_POD)?,
                    &["ip", "saddr", &client, "ip", "daddr", &server],
                )
                .await
            }),
        },
        Fault {
            name: "remote_block_route_missing",
            what: "k8s-worker-2 has no route to k8s-worker-1's block",
            mode: Plain,
            fails: &["HOST-R3", "XN-1"],
            spares: &["P2P-2", "HOST-R2"],
            needs: None,
            apply: apply!(|t, s| {
                let server_node = t.pod_facts(SERVER_POD)?.node.clone();
                let block = t
                    .facts
                    .node(&server_node)
                    .and_then(|n| n.blocks.first().copied())
                    .ok_or_else(|| Error::NotFound(format!("{server_node} has no block")))?;
                run(
                    &t.host_of(REMOTE_POD)?,
                    &["ip", "route", "del", &block.to_string()],
                )
                .await
            }),
        },
        Fault {
            name: "snat_across_nodes",
            what: "traffic leaving k8s-worker-2 is masqueraded to the node address (natOutgoing applied to pod traffic)",
            mode: Plain,
            fails: &["XN-3"],
            spares: &["XN-1", "P2P-4"],
            needs: Some(("nft", "nftables")),
            apply: apply!(|t, s| {
                let remote = pod_ip(t, REMOTE_POD)?;
                masquerade(
                    &t.host_of(REMOTE_POD)?,
                    &["oifname", "ens192", "ip", "saddr", &remote],
                )
                .await
            }),
        },
        Fault {
            name: "vxlan_while_pool_says_none",
            what: "the wire carries VXLAN while the pool says None",
            mode: Vxlan,
            fails: &["XN-2", "HOST-R3"],
            spares: &["XN-1", "XN-3"],
            needs: None,
            apply: apply!(|t, s| {
                for p in &mut t.facts.pools {
                    p.encapsulation = Encapsulation::None;
                }
                Ok(())
            }),
        },
        Fault {
            name: "plain_while_pool_says_vxlan",
            what: "the wire carries plain pod IPs while the pool says VXLAN",
            mode: Plain,
            fails: &["XN-2", "HOST-R3"],
            spares: &["XN-1", "XN-3"],
            needs: None,
            apply: apply!(|t, s| {
                for p in &mut t.facts.pools {
                    p.encapsulation = Encapsulation::Vxlan;
                }
                for n in &mut t.facts.nodes {
                    n.vxlan_tunnel_address = n.blocks.first().map(|b| b.network());
                }
                Ok(())
            }),
        },
        Fault {
            name: "pod_lo_down",
            what: "test-tools' lo is down",
            mode: Plain,
            fails: &["POD-I1"],
            spares: &["POD-R1", "P2P-2"],
            needs: None,
            apply: apply!(|t, s| {
                run(
                    &t.pod(CLIENT_POD)?,
                    &["ip", "link", "set", "dev", "lo", "down"],
                )
                .await
            }),
        },
    ]
}

/// Rebuilds the server's node the way kubenet/flannel do: both local pods' host ends move onto a
/// bridge `cbr0` holding the gateway 192.168.1.1/26, pods get /26 addresses and a real gateway,
/// the /32 routes go.
async fn bridge_pods(t: &mut Target) -> Result<()> {
    let node = t.pod_facts(SERVER_POD)?.node.clone();
    let host = t.host(&node)?;
    let block = t
        .facts
        .node(&node)
        .and_then(|n| n.blocks.first().copied())
        .ok_or_else(|| Error::NotFound(format!("{node} has no block")))?;
    let gw = std::net::Ipv4Addr::from(u32::from(block.network()) + 1);
    let prefix = block.prefix_len();
    run(&host, &["ip", "link", "add", "cbr0", "type", "bridge"]).await?;
    run(
        &host,
        &[
            "ip",
            "addr",
            "add",
            &format!("{gw}/{prefix}"),
            "dev",
            "cbr0",
        ],
    )
    .await?;
    run(&host, &["ip", "link", "set", "cbr0", "up"]).await?;
    for (i, pod) in [SERVER_POD, CLIENT_POD].iter().enumerate() {
        let ip = pod_ip(t, pod)?;
        let old = cali(pod);
        let new = format!("veth{i}bridged");
        run(&host, &["ip", "route", "del", &format!("{ip}/32")]).await?;
        run(&host, &["ip", "link", "set", "dev", &old, "down"]).await?;
        run(&host, &["ip", "link", "set", "dev", &old, "name", &new]).await?;
        run(
            &host,
            &[
                "ip",
                "link",
                "set",
                "dev",
                &new,
                "address",
                &format!("02:00:00:00:00:0{i}"),
            ],
        )
        .await?;
        write_sysctl(&host, "/proc/sys/net/ipv4/conf/{}/proxy_arp", &new, "0")?;
        run(
            &host,
            &["ip", "link", "set", "dev", &new, "master", "cbr0", "up"],
        )
        .await?;
        let p = t.pod(pod)?;
        run(&p, &["ip", "route", "flush", "dev", "eth0"]).await?;
        run(
            &p,
            &[
                "ip",
                "addr",
                "add",
                &format!("{ip}/{prefix}"),
                "dev",
                "eth0",
            ],
        )
        .await?;
        run(
            &p,
            &["ip", "addr", "del", &format!("{ip}/32"), "dev", "eth0"],
        )
        .await?;
        run(
            &p,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &gw.to_string(),
                "dev",
                "eth0",
            ],
        )
        .await?;
    }
    Ok(())
}

/// Masquerades packets matching `selector` as they leave the node (nftables NAT).
async fn masquerade(host: &Place, selector: &[&str]) -> Result<()> {
    run(host, &["nft", "add", "table", "ip", "cc"]).await?;
    run(
        host,
        &[
            "nft",
            "add",
            "chain",
            "ip",
            "cc",
            "post",
            "{",
            "type",
            "nat",
            "hook",
            "postrouting",
            "priority",
            "100",
            ";",
            "}",
        ],
    )
    .await?;
    let mut rule = vec!["nft", "add", "rule", "ip", "cc", "post"];
    rule.extend_from_slice(selector);
    rule.push("masquerade");
    run(host, &rule).await
}

/// Whether the machine has the tool a fault needs.
pub fn has_tool(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}
