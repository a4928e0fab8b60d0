//! The fault catalogue: named changes applied to a correct lab after it is built, each modelled
//! on a real way a dataplane breaks. The self-test (`cargo test faults`) shows that the claims a
//! fault targets fail and the claims it should not touch still pass; `cargo run -- faults
//! --matrix` writes every claim against every fault to `docs/fault-matrix.md`.

mod apply;
mod apply6;
mod apply_mtu;
mod edit;
mod reconcile;

use crate::error::Result;
use crate::facts::Encapsulation;
use crate::target::Target;
use apply::*;
use apply_mtu::*;
use apply6::*;
use futures::future::BoxFuture;
use reconcile::*;
use std::sync::atomic::AtomicBool;

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

/// One fault: an entry of the catalogue.
#[derive(Clone, Copy)]
pub struct Fault {
    /// `host_end_mac_not_eeee`.
    pub name: &'static str,
    /// What it changes, and the real failure it models.
    pub what: &'static str,
    /// The lab mode it is applied to.
    pub mode: Encapsulation,
    /// Applied to the dual-stack lab (the IPv6 faults), not the IPv4 one.
    pub dual_stack: bool,
    /// Claim IDs that must fail.
    pub fails: &'static [&'static str],
    /// Claim IDs that must still pass.
    pub spares: &'static [&'static str],
    /// A tool the fault needs beyond the lab's (`nft`).
    pub needs: Option<(&'static str, &'static str)>,
    /// What it does to a correct lab (one function of `faults/apply.rs`).
    pub apply: Apply,
}

impl Fault {
    /// The lab this fault is applied to.
    pub fn target_kind(&self) -> crate::target::TargetKind {
        match self.dual_stack {
            true => crate::target::TargetKind::LabDualStack(self.mode),
            false => crate::target::TargetKind::Lab(self.mode),
        }
    }

    /// `None`, `VXLAN`, `None, dual stack`: the lab, as the matrix names it.
    pub fn lab_name(&self) -> String {
        let stack = if self.dual_stack { ", dual stack" } else { "" };
        format!("{}{stack}", self.mode.as_str())
    }
}

/// Boxes an apply function of `faults/apply.rs` as an [`Apply`].
macro_rules! apply {
    ($f:ident) => {
        |t, s| Box::pin($f(t, s))
    };
}

use Encapsulation::{None as Plain, Vxlan};

/// The catalogue, in the order of the matrix.
const CATALOGUE: &[Fault] = &[
    Fault {
        name: "host_end_mac_not_eeee",
        what: "test-tools' host end has MAC ee:ee:ee:ee:ee:ef: the MAC did not stick (Calico #11336)",
        mode: Plain,
        dual_stack: false,
        fails: &["VETH-3", "ARP-1", "P2P-3", "REC-1"],
        spares: &["POD-R1", "P2P-2"],
        needs: None,
        apply: apply!(host_end_mac_not_eeee),
    },
    Fault {
        name: "proxy_arp_off",
        what: "proxy_arp=0 on test-tools' host end: nobody answers for 169.254.1.1",
        mode: Plain,
        dual_stack: false,
        fails: &["VETH-4", "ARP-1", "ARP-2", "P2P-1", "P2P-2"],
        spares: &["POD-R1", "VETH-3"],
        needs: None,
        apply: apply!(proxy_arp_off),
    },
    Fault {
        name: "proxy_arp_off_static_neighbour",
        what: "proxy_arp=0, and a static PERMANENT 169.254.1.1 entry in the pod keeps traffic flowing",
        mode: Plain,
        dual_stack: false,
        fails: &["VETH-4", "ARP-1", "ARP-2"],
        spares: &["P2P-1", "P2P-2"],
        needs: None,
        apply: apply!(proxy_arp_off_static_neighbour),
    },
    Fault {
        name: "pod_eth0_noarp",
        what: "test-tools' eth0 has ARP turned off: it neither asks for the gateway nor answers the host",
        mode: Plain,
        dual_stack: false,
        fails: &["ARP-3"],
        spares: &["POD-R1", "VETH-3"],
        needs: None,
        apply: apply!(pod_eth0_noarp),
    },
    Fault {
        name: "host_route_missing",
        what: "test-tools' /32 host route is gone (a Felix route-sync failure)",
        mode: Plain,
        dual_stack: false,
        fails: &["HOST-R1", "P2P-1", "P2P-2", "REC-1"],
        spares: &["VETH-3", "HOST-R2"],
        needs: None,
        apply: apply!(host_route_missing),
    },
    Fault {
        name: "host_route_wrong_cali",
        what: "test-tools' /32 host route points at c2c-network-demo's cali link",
        mode: Plain,
        dual_stack: false,
        fails: &["HOST-R1", "P2P-2", "REC-1", "REC-2"],
        spares: &["VETH-3", "HOST-R2"],
        needs: None,
        apply: apply!(host_route_wrong_cali),
    },
    Fault {
        name: "pod_address_slash24",
        what: "test-tools' eth0 holds its IP as /24 instead of /32",
        mode: Plain,
        dual_stack: false,
        fails: &["POD-I2"],
        spares: &["VETH-2", "HOST-R1"],
        needs: None,
        apply: apply!(pod_address_slash24),
    },
    Fault {
        name: "extra_pod_route",
        what: "test-tools has one more route (10.96.0.0/12 via 169.254.1.1)",
        mode: Plain,
        dual_stack: false,
        fails: &["POD-R1"],
        spares: &["POD-I2", "P2P-2"],
        needs: None,
        apply: apply!(extra_pod_route),
    },
    Fault {
        name: "gateway_assigned",
        what: "169.254.1.1 is assigned to test-tools' host end",
        mode: Plain,
        dual_stack: false,
        fails: &["POD-R2", "VETH-3"],
        spares: &["POD-R1", "HOST-R1"],
        needs: None,
        apply: apply!(gateway_assigned),
    },
    Fault {
        name: "mtu_mismatch",
        what: "test-tools' eth0 MTU is 1400 while its host end keeps the node's (Calico #9718)",
        mode: Plain,
        dual_stack: false,
        fails: &["POD-I3", "VETH-3", "MTU-1"],
        spares: &["POD-R1", "P2P-2", "MTU-2", "MTU-4"],
        needs: None,
        apply: apply!(mtu_mismatch),
    },
    Fault {
        name: "no_blackhole",
        what: "k8s-worker-1's block has no blackhole route",
        mode: Plain,
        dual_stack: false,
        fails: &["HOST-R2", "REC-3"],
        spares: &["HOST-R1", "HOST-R3"],
        needs: None,
        apply: apply!(no_blackhole),
    },
    Fault {
        name: "host_end_misnamed",
        what: "test-tools' host end is named veth-like (vethd9d486e5), not cali + sha1",
        mode: Plain,
        dual_stack: false,
        fails: &["VETH-2", "REC-1", "REC-2"],
        spares: &["VETH-1", "HOST-R1"],
        needs: None,
        apply: apply!(host_end_misnamed),
    },
    Fault {
        name: "host_end_not_on_host",
        what: "test-tools' host end was moved out of the node's namespace (a CNI teardown race)",
        mode: Plain,
        dual_stack: false,
        fails: &["VETH-1", "REC-1", "REC-2"],
        spares: &["POD-R1", "HOST-R2"],
        needs: None,
        apply: apply!(host_end_not_on_host),
    },
    Fault {
        name: "containers_in_separate_netns",
        what: "c2c-network-demo's curl-client runs in a network namespace of its own",
        mode: Plain,
        dual_stack: false,
        fails: &["C2C-1", "C2C-2"],
        spares: &["POD-R1", "P2P-2"],
        needs: None,
        apply: apply!(containers_in_separate_netns),
    },
    Fault {
        name: "client_uses_pod_ip",
        what: "the c2c client talks to its own pod IP instead of localhost",
        mode: Plain,
        dual_stack: false,
        fails: &["C2C-2"],
        spares: &["C2C-1", "P2P-2"],
        needs: None,
        apply: apply!(client_uses_pod_ip),
    },
    Fault {
        name: "dead_capture",
        what: "every capture sees nothing: paired-zero checks must refuse to pass",
        mode: Plain,
        dual_stack: false,
        fails: &[
            "C2C-3", "P2P-5", "C2C-2", "ARP-1", "P2P-3", "MTU-3", "MTU-4",
        ],
        spares: &["POD-R1", "P2P-2"],
        needs: None,
        apply: apply!(dead_capture),
    },
    Fault {
        name: "same_node_traffic_mirrored_to_underlay",
        what: "c2c-network-demo's host end mirrors its traffic onto the underlay",
        mode: Plain,
        dual_stack: false,
        fails: &["P2P-5"],
        spares: &["P2P-2", "P2P-3"],
        needs: None,
        apply: apply!(same_node_traffic_mirrored_to_underlay),
    },
    Fault {
        name: "bridged_dataplane",
        what: "pods on a Linux bridge with a real gateway, as kubenet or flannel build them",
        mode: Plain,
        dual_stack: false,
        fails: &[
            "P2P-1", "VETH-2", "VETH-3", "VETH-4", "POD-R1", "ARP-1", "HOST-R1", "REC-1", "REC-3",
        ],
        spares: &["C2C-2", "P2P-2"],
        needs: None,
        apply: apply!(bridged_dataplane),
    },
    Fault {
        name: "snat_between_pods",
        what: "traffic from test-tools reaches c2c-network-demo source-NATed to the node's address",
        mode: Plain,
        dual_stack: false,
        fails: &["P2P-4"],
        spares: &["P2P-2", "P2P-1", "MTU-4"],
        needs: Some(("nft", "nftables")),
        apply: apply!(snat_between_pods),
    },
    Fault {
        name: "remote_block_route_missing",
        what: "k8s-worker-2 has no route to k8s-worker-1's block",
        mode: Plain,
        dual_stack: false,
        fails: &["HOST-R3", "XN-1", "REC-3", "MTU-2"],
        spares: &["P2P-2", "HOST-R2", "MTU-1"],
        needs: None,
        apply: apply!(remote_block_route_missing),
    },
    Fault {
        name: "snat_across_nodes",
        what: "traffic leaving k8s-worker-2 is masqueraded to the node address (natOutgoing applied to pod traffic)",
        mode: Plain,
        dual_stack: false,
        fails: &["XN-3"],
        spares: &["XN-1", "P2P-4"],
        needs: Some(("nft", "nftables")),
        apply: apply!(snat_across_nodes),
    },
    Fault {
        name: "vxlan_while_pool_says_none",
        what: "the wire carries VXLAN while the pool says None",
        mode: Vxlan,
        dual_stack: false,
        fails: &["XN-2", "HOST-R3", "REC-3", "MTU-1"],
        spares: &["XN-1", "XN-3"],
        needs: None,
        apply: apply!(vxlan_while_pool_says_none),
    },
    Fault {
        name: "plain_while_pool_says_vxlan",
        what: "the wire carries plain pod IPs while the pool says VXLAN",
        mode: Plain,
        dual_stack: false,
        fails: &["XN-2", "HOST-R3", "REC-3", "MTU-1"],
        spares: &["XN-1", "XN-3"],
        needs: None,
        apply: apply!(plain_while_pool_says_vxlan),
    },
    Fault {
        name: "pod_lo_down",
        what: "test-tools' lo is down",
        mode: Plain,
        dual_stack: false,
        fails: &["POD-I1"],
        spares: &["POD-R1", "P2P-2"],
        needs: None,
        apply: apply!(pod_lo_down),
    },
    // MTU along the path (MTU-1..4): modelled on Calico's MTU issues (#9433, #8953, #12432,
    // #5008). Their functions are in `faults/apply_mtu.rs`.
    Fault {
        name: "vxlan_device_mtu_above_cali",
        what: "the cluster MTU is configured to 1400 and k8s-worker-1's pods and cali links have it, but its vxlan.calico kept 1450: the tunnel is larger than the links it serves",
        mode: Vxlan,
        dual_stack: false,
        fails: &["MTU-1"],
        spares: &["MTU-2", "MTU-3", "MTU-4", "XN-1"],
        needs: None,
        apply: apply!(vxlan_device_mtu_above_cali),
    },
    Fault {
        name: "underlay_mtu_below_vxlan",
        what: "the underlay (ens192 on both nodes) has MTU 1450 while the pods keep 1450 for VXLAN: a full-size packet's 1500-byte encapsulated frame no longer fits and the node fragments it (vxlan.calico sends without DF)",
        mode: Vxlan,
        dual_stack: false,
        fails: &["MTU-1", "MTU-3", "POD-I3"],
        spares: &["MTU-2", "MTU-4", "P2P-2", "XN-1"],
        needs: None,
        apply: apply!(underlay_mtu_below_vxlan),
    },
    Fault {
        name: "underlay_path_black_hole",
        what: "k8s-worker-2's end of the underlay has MTU 1400: full-size frames from k8s-worker-1 are dropped on the way without any ICMP (a path MTU black hole) while small packets pass",
        mode: Plain,
        dual_stack: false,
        fails: &["MTU-1", "MTU-2"],
        spares: &["MTU-3", "MTU-4", "P2P-2", "XN-1"],
        needs: None,
        apply: apply!(underlay_path_black_hole),
    },
    Fault {
        name: "cali_mtu_below_eth0",
        what: "test-tools' host end has MTU 1400 while its eth0 keeps 1500: the pod's full-size packets die in its own veth",
        mode: Plain,
        dual_stack: false,
        fails: &["MTU-1", "MTU-2", "MTU-3", "POD-I3", "VETH-3"],
        spares: &["MTU-4", "P2P-2", "XN-1"],
        needs: None,
        apply: apply!(cali_mtu_below_eth0),
    },
    Fault {
        name: "mss_clamped_in_pod",
        what: "an nftables rule in test-tools sets the MSS of its SYNs to 1200 whatever the MTU (a sidecar's or chained plugin's clamp)",
        mode: Plain,
        dual_stack: false,
        fails: &["MTU-4"],
        spares: &["MTU-1", "MTU-2", "P2P-2"],
        needs: Some(("nft", "nftables")),
        apply: apply!(mss_clamped_in_pod),
    },
    // REC-1..3 (datastore and dataplane agree; faults/reconcile.rs).
    Fault {
        name: "orphan_cali_link",
        what: "a deleted pod's cali link and /32 route (192.168.1.50) stay on k8s-worker-1: its \
               network namespace outlived the pod, so nothing tore them down (Calico #10723)",
        mode: Plain,
        dual_stack: false,
        fails: &["REC-2"],
        spares: &["REC-1", "REC-3", "HOST-R1", "P2P-2"],
        needs: None,
        apply: apply!(orphan_cali_link),
    },
    Fault {
        name: "other_pod_route_missing",
        what: "a pod the suite did not deploy (kube-system/coredns-7db6d8ff4d-lb2kx, 192.168.1.20) \
               has its cali link but no /32 route (Felix removed it on stale data, Calico #5173); \
               HOST-R1 looks at the article's pods only",
        mode: Plain,
        dual_stack: false,
        fails: &["REC-1"],
        spares: &["HOST-R1", "REC-2", "REC-3", "P2P-2"],
        needs: None,
        apply: apply!(other_pod_route_missing),
    },
    Fault {
        name: "unowned_block_route",
        what: "k8s-worker-1 routes 192.168.3.0/26, a block affine to no node (a removed node's \
               released block still routed, Calico #4471)",
        mode: Plain,
        dual_stack: false,
        fails: &["REC-3"],
        spares: &["HOST-R2", "HOST-R3", "REC-1", "REC-2", "XN-1"],
        needs: None,
        apply: apply!(unowned_block_route),
    },
    Fault {
        name: "stale_blackhole_for_remote_block",
        what: "k8s-worker-1 still blackholes k8s-worker-2's block beside the route to it (an old \
               affinity not cleaned up, projectcalico/node #1032)",
        mode: Plain,
        dual_stack: false,
        fails: &["REC-3"],
        spares: &["HOST-R2", "HOST-R3", "REC-1", "REC-2", "XN-1"],
        needs: None,
        apply: apply!(stale_blackhole_for_remote_block),
    },
    // IPv6 and dual stack (IP6-1..6; faults/apply6.rs), on the dual-stack lab.
    Fault {
        name: "host_end_proxy_ndp_off",
        what: "proxy_ndp=0 on test-tools' host end (the CNI plugin's IPv6 sysctls not written)",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-3"],
        spares: &["IP6-2", "IP6-4", "IP6-6", "VETH-4"],
        needs: None,
        apply: apply!(host_end_proxy_ndp_off),
    },
    Fault {
        name: "pod_ipv6_slash64",
        what: "test-tools' eth0 holds its IPv6 address as /64 instead of /128",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-1", "POD-I2"],
        spares: &["IP6-5", "IP6-6", "VETH-2"],
        needs: None,
        apply: apply!(pod_ipv6_slash64),
    },
    Fault {
        name: "static_gateway_neighbour6",
        what: "a static PERMANENT fe80::ecee:eeff:feee:eeee entry in test-tools keeps IPv6 flowing without NDP",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-4"],
        spares: &["IP6-2", "IP6-6", "ARP-2"],
        needs: None,
        apply: apply!(static_gateway_neighbour6),
    },
    Fault {
        name: "pod_ipv6_default_via_other_gateway",
        what: "test-tools' IPv6 default route goes via fe80::1, an address no host end holds (a router advertisement or a hand-made route)",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-2", "IP6-4", "IP6-6"],
        spares: &["IP6-1", "IP6-3", "POD-R1"],
        needs: None,
        apply: apply!(pod_ipv6_default_via_other_gateway),
    },
    Fault {
        name: "host_route6_missing",
        what: "test-tools' /128 host route is gone (its IPv4 /32 stays)",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-5", "IP6-6", "REC-1"],
        spares: &["IP6-1", "HOST-R1", "P2P-1"],
        needs: None,
        apply: apply!(host_route6_missing),
    },
    Fault {
        name: "dad_left_on",
        what: "accept_dad=1 on test-tools' eth0 and host end: duplicate address detection delays every new address by a second",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-1", "IP6-3"],
        spares: &["IP6-2", "IP6-6"],
        needs: None,
        apply: apply!(dad_left_on),
    },
    Fault {
        name: "ipv6_forwarding_off",
        what: "net.ipv6.conf.all.forwarding=0 on k8s-worker-1 (IPv4 forwarding stays on)",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-3", "IP6-6"],
        spares: &["IP6-1", "IP6-5", "P2P-1"],
        needs: None,
        apply: apply!(ipv6_forwarding_off),
    },
    Fault {
        name: "ipv6_blackhole_missing",
        what: "k8s-worker-1's IPv6 block has no blackhole route (its IPv4 block keeps its own)",
        mode: Plain,
        dual_stack: true,
        fails: &["IP6-5", "REC-3"],
        spares: &["HOST-R2", "IP6-6", "IP6-1"],
        needs: None,
        apply: apply!(ipv6_blackhole_missing),
    },
    Fault {
        name: "ipv6_routed_plain_while_pool_says_vxlan",
        what: "the nodes route each other's IPv6 blocks over ens192 unencapsulated while the IPv6 pool says VXLAN (vxlan-v6.calico stays up, unused)",
        mode: Vxlan,
        dual_stack: true,
        fails: &["IP6-6", "REC-3"],
        spares: &["XN-2", "IP6-5", "IP6-1", "P2P-1", "MTU-1"],
        needs: None,
        apply: apply!(ipv6_routed_plain_while_pool_says_vxlan),
    },
    Fault {
        name: "vxlan_v6_mtu_too_small",
        what: "k8s-worker-1's vxlan-v6.calico has MTU 1400, below the pods' 1430 (a hand-set VXLANMTUV6): full-size IPv6 packets between nodes cannot pass",
        mode: Vxlan,
        dual_stack: true,
        fails: &["MTU-1"],
        spares: &["POD-I3", "IP6-6", "MTU-2", "XN-2"],
        needs: None,
        apply: apply!(vxlan_v6_mtu_too_small),
    },
    Fault {
        name: "orphan_route6",
        what: "k8s-worker-1 keeps a /128 route to an IPv6 address no live pod has, on test-tools' host end (a pod deleted while calico-node was down)",
        mode: Plain,
        dual_stack: true,
        fails: &["REC-2"],
        spares: &["REC-1", "REC-3", "IP6-5", "IP6-6", "HOST-R1"],
        needs: None,
        apply: apply!(orphan_route6),
    },
];

/// The catalogue, in the order of the matrix.
pub fn catalogue() -> Vec<Fault> {
    CATALOGUE.to_vec()
}

/// Whether the machine has the tool a fault needs.
pub fn has_tool(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}
