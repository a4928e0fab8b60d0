//! The plan, without root: names, addresses, blocks, and the requests per namespace.

use super::*;
use crate::calico::{LINK_LOCAL_GATEWAY, VXLAN_DEVICE};
use rstest::rstest;

fn plan(encapsulation: Encapsulation) -> Plan {
    match Plan::new(&LabSpec::article(encapsulation)) {
        Ok(p) => p,
        Err(e) => panic!("the article's lab has a plan: {e}"),
    }
}

/// The plan of a one-node lab with `extra` extra pods.
fn one_node(encapsulation: Encapsulation, extra: usize) -> Plan {
    let spec = LabSpec {
        encapsulation,
        extra_pods_per_node: extra,
        nodes: 1,
        ..LabSpec::default()
    };
    match Plan::new(&spec) {
        Ok(p) => p,
        Err(e) => panic!("{spec:?} has a plan: {e}"),
    }
}

/// The routes among a wiring's requests, in order.
fn all_routes(w: &Wiring) -> Vec<&Route> {
    w.batches
        .iter()
        .flat_map(|b| &b.steps)
        .filter_map(|s| match &s.op {
            Op::Route(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn net(s: &str) -> Ipv4Net {
    match s.parse() {
        Ok(n) => n,
        Err(e) => panic!("{s}: {e}"),
    }
}

#[test]
fn article_nodes_and_pods() {
    let p = plan(Encapsulation::None);
    let nodes: Vec<(&str, Ipv4Addr, &[Ipv4Net])> = p
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.address, n.blocks.as_slice()))
        .collect();
    assert_eq!(
        nodes,
        [
            (
                "k8s-worker-1",
                Ipv4Addr::new(10, 12, 22, 2),
                &[net("192.168.1.0/26")][..]
            ),
            (
                "k8s-worker-2",
                Ipv4Addr::new(10, 12, 22, 3),
                &[net("192.168.2.0/26")][..]
            ),
        ]
    );
    assert!(p.nodes.iter().all(|n| n.tunnel.is_none()));
    let pods: Vec<(&str, usize, String, &str)> = p
        .pods
        .iter()
        .map(|x| {
            (
                x.name.as_str(),
                x.node,
                x.ip.to_string(),
                x.host_end.as_str(),
            )
        })
        .collect();
    assert_eq!(
        pods,
        [
            (
                "c2c-network-demo",
                0,
                "192.168.1.10".into(),
                "calid9d486e54a8"
            ),
            ("test-tools", 0, "192.168.1.12".into(), "calied9d42cb137"),
            (
                "test-tools-remote",
                1,
                "192.168.2.12".into(),
                "caliab0bfb3e20d"
            ),
        ]
    );
    assert_eq!(p.pods[0].containers, ["hello-world-server", "curl-client"]);
    assert_eq!(p.pods[1].containers, ["curl-client"]);
    assert!(p.pods[2].containers.is_empty());
    assert_eq!(
        p.remote_of(0).map(|n| n.name.as_str()),
        Some("k8s-worker-2")
    );
    assert_eq!(p.pod_place(1), "pod default/test-tools");
}

#[test]
fn felix_vxlan_macs() {
    // `66` + sha1(node name)[:5], as Felix's vtepMACForHost.
    assert_eq!(
        mac_str(&felix_vxlan_mac("k8s-worker-2")),
        "66:69:79:73:bd:32"
    );
    let p = plan(Encapsulation::Vxlan);
    assert!(p.nodes.iter().all(|n| n.vxlan_mac[0] == 0x66));
    assert_ne!(p.nodes[0].vxlan_mac, p.nodes[1].vxlan_mac);
}

#[rstest]
#[case(Encapsulation::None, 1500, None)]
#[case(Encapsulation::Vxlan, 1450, Some(VXLAN_DEVICE))]
#[case(Encapsulation::VxlanCrossSubnet, 1450, Some(VXLAN_DEVICE))]
#[case(Encapsulation::Ipip, 1480, Some(IPIP_DEVICE))]
fn mtu_and_tunnel_per_mode(
    #[case] mode: Encapsulation,
    #[case] mtu: u32,
    #[case] device: Option<&str>,
) {
    let spec = LabSpec::article(mode);
    assert_eq!(spec.pod_mtu(), mtu);
    assert_eq!(spec.tunnel_device(), device);
    let p = plan(mode);
    let tunnels: Vec<Option<Ipv4Addr>> = p.nodes.iter().map(|n| n.tunnel).collect();
    if device.is_some() {
        assert_eq!(
            tunnels,
            [
                Some(Ipv4Addr::new(192, 168, 1, 0)),
                Some(Ipv4Addr::new(192, 168, 2, 0))
            ]
        );
    } else {
        assert_eq!(tunnels, [None, None]);
    }
}

#[test]
fn extra_pods_fill_the_node_s_blocks() {
    let p = one_node(Encapsulation::None, 100);
    assert_eq!(p.pods.len(), 102);
    assert_eq!(
        p.nodes[0].blocks,
        [net("192.168.1.0/26"), net("192.168.1.64/26")]
    );
    assert_eq!(p.pods[2].name, "bench-1-0");
    assert_eq!(p.pods[2].ip, Ipv4Addr::new(192, 168, 1, 0));
    let mut ips: Vec<Ipv4Addr> = p.pods.iter().map(|x| x.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 102);
    assert!(p.remote_of(0).is_none());
}

#[test]
fn a_tunnelled_node_keeps_its_first_address_for_the_tunnel() {
    let p = one_node(Encapsulation::Vxlan, 1);
    assert_eq!(p.pods[2].ip, Ipv4Addr::new(192, 168, 1, 1));
}

#[rstest]
#[case(
    0,
    0,
    "1 to 250 nodes (one /24 of pod addresses and one underlay address each), not 0"
)]
#[case(
    251,
    0,
    "1 to 250 nodes (one /24 of pod addresses and one underlay address each), not 251"
)]
#[case(1, 255, "at most 254 extra pods per node")]
fn refuses_what_it_cannot_build(
    #[case] nodes: usize,
    #[case] extra_pods_per_node: usize,
    #[case] says: &str,
) {
    let spec = LabSpec {
        encapsulation: Encapsulation::None,
        extra_pods_per_node,
        nodes,
        ..LabSpec::default()
    };
    match Plan::new(&spec) {
        Err(Error::Preflight(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn worker_1_without_encapsulation() {
    let w = plan(Encapsulation::None).node_wiring(0);
    assert_eq!(w.place, "k8s-worker-1");
    assert_eq!(
        w.lines(),
        [
            "link set lo up",
            "link add ens192 type veth peer ens192 (other node)",
            "link add calid9d486e54a8 type veth peer eth0 (pod c2c-network-demo)",
            "link add calied9d42cb137 type veth peer eth0 (pod test-tools)",
            "addr add 10.12.22.2/16 dev ens192",
            "route add 192.168.1.10/32 dev calid9d486e54a8 scope link",
            "route add 192.168.1.12/32 dev calied9d42cb137 scope link",
            "route add default via 10.12.0.1 dev ens192",
            "route add blackhole 192.168.1.0/26",
            "route add 192.168.2.0/26 via 10.12.22.3 dev ens192",
        ]
    );
    let lookups: Vec<(Lookup, usize)> = w
        .batches
        .iter()
        .map(|b| (b.lookup, b.steps.len()))
        .collect();
    assert_eq!(
        lookups,
        [
            (Lookup::Nothing, 4),
            (Lookup::Dump, 1),
            (Lookup::EachMissing, 5)
        ]
    );
    // The underlay veth puts its peer in worker-2; each host end's in its pod.
    let peers: Vec<PeerNs> = w.batches[0]
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Veth { peer_ns, .. } => Some(*peer_ns),
            _ => None,
        })
        .collect();
    assert_eq!(peers, [PeerNs::Node(1), PeerNs::Pod(0), PeerNs::Pod(1)]);
    assert_eq!(
        w.batches[0].steps[2].op,
        Op::Veth {
            name: "calid9d486e54a8".into(),
            mac: Some([0xee; 6]),
            mtu: 1500,
            peer: "eth0".into(),
            peer_ns: PeerNs::Pod(0),
        }
    );
    assert!(
        w.batches
            .iter()
            .flat_map(|b| &b.steps)
            .all(|s| s.flags == Flags::Create || s.op == Op::LinkUp(Dev::Lo))
    );
}

#[test]
fn routes_are_typed_as_felix_and_bird_program_them() {
    let w = plan(Encapsulation::None).node_wiring(0);
    let routes = all_routes(&w);
    assert_eq!(
        routes[0],
        &Route {
            dst: Some(net("192.168.1.10/32")),
            blackhole: false,
            gateway: None,
            dev: Some(Dev::Name("calid9d486e54a8".into())),
            onlink: false,
            scope_link: true,
            proto: Proto::Boot,
        }
    );
    // The node's default route carries no destination at all.
    assert_eq!(routes[2].dst, None);
    assert_eq!(routes[2].gateway, Some(UNDERLAY_GATEWAY));
    assert!(routes[3].blackhole && routes[3].proto == Proto::Bird);
    assert_eq!(routes[4].proto, Proto::Bird);
    let w = plan(Encapsulation::Vxlan).node_wiring(0);
    let protos: Vec<Proto> = all_routes(&w).iter().map(|r| r.proto).collect();
    assert_eq!(
        protos,
        [
            Proto::Boot,
            Proto::Boot,
            Proto::Boot,
            Proto::Felix,
            Proto::Felix
        ]
    );
}

#[test]
fn worker_1_over_vxlan() {
    let w = plan(Encapsulation::Vxlan).node_wiring(0);
    assert_eq!(
        w.lines(),
        [
            "link set lo up",
            "link add ens192 type veth peer ens192 (other node)",
            "link add calid9d486e54a8 type veth peer eth0 (pod c2c-network-demo)",
            "link add calied9d42cb137 type veth peer eth0 (pod test-tools)",
            "addr add 10.12.22.2/16 dev ens192",
            "link add vxlan.calico type vxlan id 4096",
            "addr add 192.168.1.0/32 dev vxlan.calico",
            "route add 192.168.1.10/32 dev calid9d486e54a8 scope link",
            "route add 192.168.1.12/32 dev calied9d42cb137 scope link",
            "route add default via 10.12.0.1 dev ens192",
            "route add blackhole 192.168.1.0/26",
            "route add 192.168.2.0/26 via 192.168.2.0 dev vxlan.calico onlink",
            "neigh add 192.168.2.0 lladdr 66:69:79:73:bd:32 dev vxlan.calico",
            "bridge fdb add 66:69:79:73:bd:32 dev vxlan.calico dst 10.12.22.3 self permanent",
        ]
    );
    assert_eq!(
        w.batches[1].steps[1].op,
        Op::Vxlan {
            name: VXLAN_DEVICE,
            vni: 4096,
            port: 4789,
            underlay: Dev::Name(UNDERLAY.into()),
            local: Ipv4Addr::new(10, 12, 22, 2).into(),
            mtu: 1450,
            mac: felix_vxlan_mac("k8s-worker-1"),
        }
    );
    let last = &w.batches[2].steps;
    assert!(
        last[last.len() - 2..]
            .iter()
            .all(|s| s.flags == Flags::CreateOrReplace)
    );
}

#[test]
fn vxlan_cross_subnet_routes_like_none_between_these_nodes() {
    let lines = plan(Encapsulation::VxlanCrossSubnet).node_wiring(0);
    let lines = lines.lines();
    assert!(lines.contains(&"link add vxlan.calico type vxlan id 4096"));
    assert!(lines.contains(&"route add 192.168.2.0/26 via 10.12.22.3 dev ens192"));
    // Felix still owns the routes and the VTEP's neighbours.
    assert!(lines.contains(&"neigh add 192.168.2.0 lladdr 66:69:79:73:bd:32 dev vxlan.calico"));
}

#[test]
fn worker_2_over_ipip() {
    let w = plan(Encapsulation::Ipip).node_wiring(1);
    assert_eq!(
        w.lines(),
        [
            "link set lo up",
            "link add caliab0bfb3e20d type veth peer eth0 (pod test-tools-remote)",
            "addr add 10.12.22.3/16 dev ens192",
            "link set ens192 up",
            "link set tunl0 up mtu 1480",
            "addr add 192.168.2.0/32 dev tunl0",
            "route add 192.168.2.12/32 dev caliab0bfb3e20d scope link",
            "route add default via 10.12.0.1 dev ens192",
            "route add blackhole 192.168.2.0/26",
            "route add 192.168.1.0/26 via 10.12.22.2 dev tunl0 onlink",
        ]
    );
}

#[test]
fn one_node_keeps_both_underlay_ends() {
    let w = one_node(Encapsulation::None, 0).node_wiring(0);
    assert_eq!(
        w.batches[0].steps[1].op,
        Op::Veth {
            name: UNDERLAY.into(),
            mac: None,
            mtu: UNDERLAY_MTU,
            peer: "ens192-wire".into(),
            peer_ns: PeerNs::Here,
        }
    );
    assert!(!w.lines().iter().any(|l| l.contains(" via 10.12.22.")));
}

#[test]
fn node_sysctls_pin_rp_filter_first_and_set_each_host_end() {
    let w = plan(Encapsulation::None).node_wiring(1);
    let before: Vec<(&str, &str)> = w
        .before
        .iter()
        .map(|s| (s.path.as_str(), s.value))
        .collect();
    assert_eq!(
        before,
        [
            ("/proc/sys/net/ipv4/conf/all/rp_filter", NODE_RP_FILTER),
            ("/proc/sys/net/ipv4/conf/default/rp_filter", NODE_RP_FILTER),
        ]
    );
    let after: Vec<(&str, &str, bool)> = w
        .after
        .iter()
        .map(|s| (s.path.as_str(), s.value, s.ipv6))
        .collect();
    let c = "caliab0bfb3e20d";
    let path = |p: &str| p.replace("{c}", c);
    let want = [
        ("/proc/sys/net/ipv4/ip_forward".to_string(), "1", false),
        (path("/proc/sys/net/ipv6/conf/{c}/accept_ra"), "0", true),
        (
            path("/proc/sys/net/ipv4/conf/{c}/route_localnet"),
            "1",
            false,
        ),
        (path("/proc/sys/net/ipv4/neigh/{c}/proxy_delay"), "0", false),
        (path("/proc/sys/net/ipv4/conf/{c}/proxy_arp"), "1", false),
        (path("/proc/sys/net/ipv4/conf/{c}/forwarding"), "1", false),
        (
            path("/proc/sys/net/ipv4/conf/{c}/rp_filter"),
            NODE_RP_FILTER,
            false,
        ),
    ];
    let want: Vec<(&str, &str, bool)> = want.iter().map(|(p, v, i)| (p.as_str(), *v, *i)).collect();
    assert_eq!(after, want);
}

#[test]
fn a_pod_s_wiring() {
    let w = plan(Encapsulation::Vxlan).pod_wiring(1);
    assert_eq!(w.place, "pod default/test-tools");
    assert!(w.before.is_empty() && w.after.is_empty());
    assert_eq!(w.batches.len(), 1);
    assert_eq!(w.batches[0].lookup, Lookup::EachMissing);
    assert_eq!(
        w.lines(),
        [
            "link set lo up",
            "link set eth0 up",
            "addr add 192.168.1.12/32 dev eth0",
            "route add 169.254.1.1 dev eth0 scope link",
            "route add default via 169.254.1.1 dev eth0",
        ]
    );
    let Op::Route(default) = &w.batches[0].steps[4].op else {
        panic!("not a route: {:?}", w.batches[0].steps[4]);
    };
    // Unlike the node's, the pod's default route names 0.0.0.0/0.
    assert_eq!(default.dst, Some(Ipv4Net::default()));
    assert_eq!(default.gateway, Some(LINK_LOCAL_GATEWAY));
}

/// More than two nodes meet on a switch: no node makes an underlay veth, each sets the one
/// arriving from the switch up; the switch has a bridge and one port per node; every node
/// routes every other node's block.
#[test]
fn more_than_two_nodes_meet_on_a_switch() {
    let spec = LabSpec {
        nodes: 3,
        ..LabSpec::default()
    };
    let p = Plan::new(&spec).unwrap();
    assert!(p.uses_switch());
    let switch = p.switch_wiring();
    assert_eq!(
        switch.lines(),
        [
            "link add br0 type bridge",
            "link add n0 type veth peer ens192 (node 0)",
            "link add n1 type veth peer ens192 (node 1)",
            "link add n2 type veth peer ens192 (node 2)",
            "link set n0 master br0 up",
            "link set n1 master br0 up",
            "link set n2 master br0 up",
        ]
    );
    for i in 0..3 {
        let wiring = p.node_wiring(i);
        let lines = wiring.lines();
        assert!(
            !lines.iter().any(|l| l.starts_with("link add ens192")),
            "{lines:?}"
        );
        assert!(lines.contains(&"link set ens192 up"), "{lines:?}");
        let routed: Vec<&&str> = (lines.iter())
            .filter(|l| l.starts_with("route add 192.168.") && l.contains(" via "))
            .collect();
        assert_eq!(routed.len(), 2, "node {i}: {routed:?}");
    }
}
