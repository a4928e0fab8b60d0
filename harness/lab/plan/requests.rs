//! The vocabulary of a lab's wiring: typed netlink requests ([`Op`], [`Step`]) in batches
//! ([`Batch`]), and sysctl writes ([`Sysctl`]), per network namespace ([`Wiring`]). Links are
//! named here and get their indices in the namespace when the batch that needs them is sent.

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A link a request names. Links are named in the plan and resolved to indices in the
/// namespace, before the batch that uses them is sent (see [`Lookup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dev {
    /// `lo`: index 1 in every network namespace, known without asking.
    Lo,
    /// Any other link, by name.
    Name(String),
}

pub(super) fn dev(name: &str) -> Dev {
    Dev::Name(name.to_string())
}

/// Where a veth's peer end is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerNs {
    /// In the same namespace.
    Here,
    /// In node `i`'s namespace.
    Node(usize),
    /// In pod `i`'s namespace.
    Pod(usize),
}

/// The protocol a route is tagged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `proto boot`: what `ip route add` and the CNI plugin use.
    Boot,
    /// `proto bird`: BIRD's routes.
    Bird,
    /// `proto 80`: Felix's routes.
    Felix,
}

/// A route request. The message carries the destination, gateway and device in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `None` only for the node's default route, which has no destination attribute.
    pub dst: Option<Ipv4Net>,
    /// `blackhole` instead of unicast.
    pub blackhole: bool,
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<Dev>,
    pub onlink: bool,
    /// `scope link` instead of universe.
    pub scope_link: bool,
    pub proto: Proto,
}

impl Route {
    pub(super) fn to(dst: Option<Ipv4Net>, proto: Proto) -> Route {
        Route {
            dst,
            blackhole: false,
            gateway: None,
            dev: None,
            onlink: false,
            scope_link: false,
            proto,
        }
    }

    /// `<dst> dev <dev> scope link`.
    pub(super) fn link_scope(dst: Ipv4Net, dev: Dev) -> Route {
        Route {
            dev: Some(dev),
            scope_link: true,
            ..Route::to(Some(dst), Proto::Boot)
        }
    }

    /// `<dst> via <gateway> dev <dev>`.
    pub(super) fn via(dst: Option<Ipv4Net>, gateway: Ipv4Addr, dev: Dev, proto: Proto) -> Route {
        Route {
            gateway: Some(gateway),
            dev: Some(dev),
            ..Route::to(dst, proto)
        }
    }
}

/// An IPv6 route request (dual stack): IPv6 routes have no scope (the kernel keeps every one
/// universe), and the lab's IPv6 routes are never onlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    pub dst: Option<Ipv6Net>,
    pub blackhole: bool,
    pub gateway: Option<Ipv6Addr>,
    pub dev: Option<Dev>,
    pub proto: Proto,
    /// `onlink` (Felix's VXLAN routes, either family).
    pub onlink: bool,
}

/// One netlink request, typed: what the lab's `wire` module turns into a message once the links it
/// names have indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `ip link set <dev> up`.
    LinkUp(Dev),
    /// A veth `name` here, UP, with one TX and one RX queue per end, its peer `peer` created
    /// (down) in `peer_ns`.
    Veth {
        name: String,
        mac: Option<[u8; 6]>,
        mtu: u32,
        peer: String,
        peer_ns: PeerNs,
    },
    /// Felix's `vxlan.calico` (or, with an IPv6 `local`, `vxlan-v6.calico`): UP, no learning.
    Vxlan {
        name: &'static str,
        vni: u32,
        port: u16,
        underlay: Dev,
        local: IpAddr,
        mtu: u32,
        mac: [u8; 6],
    },
    /// A bridge `name`, UP (the switch of a lab of more than two nodes).
    Bridge {
        name: String,
    },
    /// `ip link set <dev> master <master> up`.
    Master {
        dev: Dev,
        master: Dev,
    },
    /// An existing link set UP with an MTU (`tunl0`).
    LinkUpMtu {
        dev: Dev,
        mtu: u32,
    },
    /// `ip addr add <ip>/<prefix> dev <dev>`.
    Address {
        dev: Dev,
        ip: Ipv4Addr,
        prefix: u8,
    },
    Route(Route),
    /// `ip -6 addr add <ip>/<prefix> dev <dev>` (dual stack).
    Address6 {
        dev: Dev,
        ip: Ipv6Addr,
        prefix: u8,
    },
    /// An IPv6 route (dual stack).
    Route6(Route6),
    /// A permanent neighbour `<ip> lladdr <mac> dev <dev>` (IPv4 or IPv6).
    Neighbour {
        dev: Dev,
        ip: IpAddr,
        mac: [u8; 6],
    },
    /// A permanent FDB entry `<mac> dst <dst> self` on `dev`.
    Fdb {
        dev: Dev,
        mac: [u8; 6],
        dst: IpAddr,
    },
}

/// What a request may find already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flags {
    /// Creates; fails if it exists.
    Create,
    /// Creates or replaces (neighbour and FDB entries, as Felix's `NeighSet`).
    CreateOrReplace,
    /// Changes something that exists.
    Change,
}

/// One request of a batch, with the `ip`-like line that names it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub flags: Flags,
    pub what: String,
}

pub(super) fn step(op: Op, flags: Flags, what: impl Into<String>) -> Step {
    Step {
        op,
        flags,
        what: what.into(),
    }
}

/// How the links a batch names get their indices before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// It names only `lo`.
    Nothing,
    /// One dump of every link; a name the dump lacks is an error (it was just created).
    Dump,
    /// One request per name not known yet (a link created by the previous batch).
    EachMissing,
}

/// Requests sent together (one `send(2)` per 32 KiB), after their lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub lookup: Lookup,
    pub steps: Vec<Step>,
}

/// A sysctl write (`/proc/sys/net` shows the namespace of the thread that opens it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub path: String,
    pub value: &'static str,
    /// Written only when the kernel has IPv6 (`/proc/sys/net/ipv6` exists); Felix skips it
    /// otherwise.
    pub ipv6: bool,
}

pub(super) fn sysctl(path: impl Into<String>, value: &'static str) -> Sysctl {
    Sysctl {
        path: path.into(),
        value,
        ipv6: false,
    }
}

/// An IPv6 sysctl (skipped on a kernel without IPv6, see [`Sysctl::ipv6`]).
pub(super) fn sysctl6(path: impl Into<String>, value: &'static str) -> Sysctl {
    Sysctl {
        ipv6: true,
        ..sysctl(path, value)
    }
}

/// Everything sent to one namespace, in order: sysctls, batches, sysctls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    /// The place in errors (`k8s-worker-1`, `pod default/test-tools`).
    pub place: String,
    /// Written before any link exists.
    pub before: Vec<Sysctl>,
    pub batches: Vec<Batch>,
    /// Written after the last batch.
    pub after: Vec<Sysctl>,
}

impl Wiring {
    /// Every request's line, in order (for tests and diagnostics).
    pub fn lines(&self) -> Vec<&str> {
        self.batches
            .iter()
            .flat_map(|b| &b.steps)
            .map(|s| s.what.as_str())
            .collect()
    }
}
