//! The wiring: carries out a [`Plan`] in the lab's namespaces. Each node's [`Wiring`] runs on
//! a thread inside the node's namespace, the nodes one after the other (the first node's
//! underlay veth puts its peer in the second's); then the pods', on a few threads that join
//! each pod's namespace in turn. A [`Wiring`]'s typed requests become netlink messages here,
//! once the links they name have indices.

use super::netlink::{self, Rtnl};
use super::plan::{
    Dev, Flags, Lookup, Op, PeerNs, Plan, Proto, Route, Route6, Step, Sysctl, Wiring,
};
use crate::error::{Error, Result};
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteProtocol, RouteScope, RouteType};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder,
};
use std::collections::HashMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

/// Route protocol number Felix gives the routes it programs (`proto 80`).
const PROTO_FELIX: u8 = 80;

/// Wires every node, then every pod. `node_ns` and `pod_ns` are the namespaces, in the plan's
/// order; `mark` notes progress for the build's trace.
pub(super) fn wire(
    plan: &Plan,
    node_ns: &[File],
    pod_ns: &[File],
    switch_ns: Option<&File>,
    mark: &dyn Fn(&str),
) -> Result<()> {
    if let Some(switch) = switch_ns {
        // First: every node's ens192 comes from the switch.
        let wiring = plan.switch_wiring();
        let peers = Peers::of(&wiring, node_ns, pod_ns)?;
        in_ns(dup(switch)?, "switch".into(), move || {
            execute(&wiring, &peers)
        })?;
        mark("switch wired");
    }
    for (i, node) in plan.nodes.iter().enumerate() {
        let wiring = plan.node_wiring(i);
        let peers = Peers::of(&wiring, node_ns, pod_ns)?;
        in_ns(dup(&node_ns[i])?, node.name.clone(), move || {
            execute(&wiring, &peers)
        })?;
        mark("node wired");
    }
    let r = wire_pods(plan, pod_ns);
    mark("pods wired");
    r
}

fn dup(f: &File) -> Result<File> {
    f.try_clone()
        .map_err(|e| Error::io("duplicating a namespace descriptor", e))
}

/// The namespaces a wiring's veths put their peers in, owned (the wiring runs on another
/// thread).
struct Peers(Vec<(PeerNs, File)>);

impl Peers {
    fn of(wiring: &Wiring, node_ns: &[File], pod_ns: &[File]) -> Result<Peers> {
        let mut files = Vec::new();
        for s in wiring.batches.iter().flat_map(|b| &b.steps) {
            let Op::Veth { peer_ns, .. } = &s.op else {
                continue;
            };
            let file = match *peer_ns {
                PeerNs::Here => continue,
                PeerNs::Node(i) => node_ns.get(i),
                PeerNs::Pod(i) => pod_ns.get(i),
            };
            let file = file.ok_or_else(|| {
                Error::NotFound(format!("{}: no namespace for {peer_ns:?}", wiring.place))
            })?;
            files.push((*peer_ns, dup(file)?));
        }
        Ok(Peers(files))
    }

    fn none() -> Peers {
        Peers(Vec::new())
    }

    /// The file a veth's peer goes to (`None`: this namespace).
    fn get(&self, ns: PeerNs, place: &str) -> Result<Option<&File>> {
        if ns == PeerNs::Here {
            return Ok(None);
        }
        self.0
            .iter()
            .find(|(n, _)| *n == ns)
            .map(|(_, f)| Some(f))
            .ok_or_else(|| Error::NotFound(format!("{place}: no namespace for {ns:?}")))
    }
}

/// Runs a wiring in the calling thread's namespace: sysctls, batches (each after its
/// lookup), sysctls.
fn execute(wiring: &Wiring, peers: &Peers) -> Result<()> {
    write_sysctls(&wiring.before)?;
    let mut nl = Rtnl::open_here(wiring.place.clone())?;
    let mut links = Links::default();
    for batch in &wiring.batches {
        links.look_up(&mut nl, batch.lookup, &batch.steps, &wiring.place)?;
        let requests = batch
            .steps
            .iter()
            .map(|s| {
                let message = message(&s.op, &links, peers, &wiring.place)?;
                Ok(netlink::Request::new(
                    message,
                    flags(s.flags),
                    s.what.clone(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // A veth's peer is in its namespace once this returns: the descriptor was only needed
        // for the send.
        nl.batch(requests)?;
    }
    write_sysctls(&wiring.after)
}

/// Sysctls, written from this thread: /proc/sys/net is the opener's namespace. A kernel booted
/// with IPv6 off has no /proc/sys/net/ipv6; Felix then skips the IPv6 ones, and so does this.
fn write_sysctls(sysctls: &[Sysctl]) -> Result<()> {
    let ipv6 = Path::new("/proc/sys/net/ipv6").exists();
    for s in sysctls.iter().filter(|s| ipv6 || !s.ipv6) {
        write_sysctl(&s.path, s.value)?;
    }
    Ok(())
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::io(format!("writing {value} to {path}"), e))
}

/// Link indices by name, as looked up so far in one namespace.
#[derive(Default)]
struct Links(HashMap<String, u32>);

impl Links {
    /// Gives every link `steps` name an index, the way `lookup` says.
    fn look_up(
        &mut self,
        nl: &mut Rtnl,
        lookup: Lookup,
        steps: &[Step],
        place: &str,
    ) -> Result<()> {
        match lookup {
            Lookup::Nothing => Ok(()),
            Lookup::Dump => {
                self.0 = nl.link_indices()?;
                for name in names(steps) {
                    if !self.0.contains_key(name) {
                        return Err(Error::NotFound(format!(
                            "{place}: link {name} is missing after creation"
                        )));
                    }
                }
                Ok(())
            }
            Lookup::EachMissing => {
                for name in names(steps) {
                    if !self.0.contains_key(name) {
                        let index = nl.link_index(name)?;
                        self.0.insert(name.to_string(), index);
                    }
                }
                Ok(())
            }
        }
    }

    fn index(&self, dev: &Dev, place: &str) -> Result<u32> {
        match dev {
            Dev::Lo => Ok(1),
            Dev::Name(name) => {
                self.0.get(name).copied().ok_or_else(|| {
                    Error::NotFound(format!("{place}: link {name} was not looked up"))
                })
            }
        }
    }
}

/// The link names `steps` refer to, in order of first use.
fn names(steps: &[Step]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in steps {
        for d in devs(&s.op) {
            if let Dev::Name(n) = d
                && !out.contains(&n.as_str())
            {
                out.push(n);
            }
        }
    }
    out
}

/// The existing links an op names (not the ones it creates).
fn devs(op: &Op) -> Vec<&Dev> {
    match op {
        Op::Veth { .. } | Op::Bridge { .. } => vec![],
        Op::Master { dev, master } => vec![dev, master],
        Op::LinkUp(d) | Op::LinkUpMtu { dev: d, .. } => vec![d],
        Op::Vxlan { underlay, .. } => vec![underlay],
        Op::Address { dev, .. }
        | Op::Address6 { dev, .. }
        | Op::Neighbour { dev, .. }
        | Op::Fdb { dev, .. } => vec![dev],
        Op::Route(r) => r.dev.iter().collect(),
        Op::Route6(r) => r.dev.iter().collect(),
    }
}

fn flags(f: Flags) -> u16 {
    match f {
        Flags::Create => netlink::CREATE,
        Flags::CreateOrReplace => netlink::CREATE_OR_REPLACE,
        Flags::Change => netlink::CHANGE,
    }
}

/// The netlink message for `op`.
fn message(op: &Op, links: &Links, peers: &Peers, place: &str) -> Result<RouteNetlinkMessage> {
    let index = |d: &Dev| links.index(d, place);
    Ok(match op {
        Op::LinkUp(d) => link_up(index(d)?),
        Op::Veth {
            name,
            mac,
            mtu,
            peer,
            peer_ns,
        } => veth(name, *mac, *mtu, peer, peers.get(*peer_ns, place)?),
        Op::Vxlan {
            name,
            vni,
            port,
            underlay,
            local,
            mtu,
            mac,
        } => RouteNetlinkMessage::NewLink(
            match *local {
                IpAddr::V4(a) => LinkVxlan::new(name, *vni).local(a),
                IpAddr::V6(a) => LinkVxlan::new(name, *vni).local6(a),
            }
            .dev(index(underlay)?)
            .port(*port)
            .learning(false)
            .mtu(*mtu)
            .address(mac.to_vec())
            .up()
            .build(),
        ),
        Op::Bridge { name } => RouteNetlinkMessage::NewLink(LinkBridge::new(name).up().build()),
        Op::Master { dev, master } => RouteNetlinkMessage::SetLink(
            LinkUnspec::new_with_index(index(dev)?)
                .controller(index(master)?)
                .up()
                .build(),
        ),
        Op::LinkUpMtu { dev, mtu } => RouteNetlinkMessage::SetLink(
            LinkUnspec::new_with_index(index(dev)?)
                .mtu(*mtu)
                .up()
                .build(),
        ),
        Op::Address { dev, ip, prefix } => address(index(dev)?, *ip, *prefix),
        Op::Route(r) => RouteNetlinkMessage::NewRoute(route(r, &index)?),
        Op::Address6 { dev, ip, prefix } => address6(index(dev)?, *ip, *prefix),
        Op::Route6(r) => RouteNetlinkMessage::NewRoute(route6(r, &index)?),
        Op::Neighbour { dev, ip, mac } => {
            let family = match ip {
                IpAddr::V4(_) => AddressFamily::Inet,
                IpAddr::V6(_) => AddressFamily::Inet6,
            };
            RouteNetlinkMessage::NewNeighbour(neighbour(index(dev)?, family, *ip, *mac))
        }
        Op::Fdb { dev, mac, dst } => {
            let mut fdb = neighbour(index(dev)?, AddressFamily::Bridge, *dst, *mac);
            fdb.header.kind = RouteType::Unspec;
            fdb.header.flags = NeighbourFlags::Own;
            RouteNetlinkMessage::NewNeighbour(fdb)
        }
    })
}

fn link_up(index: u32) -> RouteNetlinkMessage {
    RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).up().build())
}

/// A veth `name` here, its peer `peer` created in the namespace behind `peer_ns` (or here).
///
/// Both ends are asked for one TX and one RX queue. Without that the kernel allocates one
/// queue per possible CPU and then trims the ones in use to one (`veth_init_queues`), and the
/// trim waits for an RCU grace period under the rtnl lock — per device, two per pod; that
/// wait was a fifth of the 110-pod lab build. Calico's CNI plugin does not ask, so a real
/// host end reports `numtxqueues <possible CPUs>` in `ip -d link`; both have one queue in
/// use, and no claim looks at the count.
fn veth(
    name: &str,
    mac: Option<[u8; 6]>,
    mtu: u32,
    peer: &str,
    peer_ns: Option<&File>,
) -> RouteNetlinkMessage {
    // The peer cannot be created UP (veth_open refuses while the pair is half-made, ENOTCONN):
    // whoever owns its namespace sets it up next.
    let mut peer_msg = LinkUnspec::new_with_name(peer)
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1));
    if let Some(ns) = peer_ns {
        peer_msg = peer_msg.setns_by_fd(ns.as_raw_fd());
    }
    let mut msg = LinkVeth::new(name, peer)
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .up();
    if let Some(mac) = mac {
        msg = msg.address(mac.to_vec());
    }
    let msg: LinkMessage = msg
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .build();
    RouteNetlinkMessage::NewLink(msg)
}

fn address(index: u32, ip: Ipv4Addr, prefix: u8) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewAddress(
        AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(ip, prefix)
            .build(),
    )
}

/// An IPv6 address without duplicate address detection (`nodad`): usable at once, as the
/// CNI plugin's `disableDAD` makes a pod's.
fn address6(index: u32, ip: Ipv6Addr, prefix: u8) -> RouteNetlinkMessage {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
    let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
        .index(index)
        .address(ip, prefix)
        .build();
    msg.attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    RouteNetlinkMessage::NewAddress(msg)
}

/// An IPv6 route message: destination, kind, gateway, device, protocol.
fn route6(
    r: &Route6,
    index: &dyn Fn(&Dev) -> Result<u32>,
) -> Result<rtnetlink::packet_route::route::RouteMessage> {
    let mut b = RouteMessageBuilder::<Ipv6Addr>::new();
    if let Some(dst) = r.dst {
        b = b.destination_prefix(dst.network(), dst.prefix_len());
    }
    if r.blackhole {
        b = b.kind(RouteType::BlackHole);
    }
    if let Some(gw) = r.gateway {
        b = b.gateway(gw);
    }
    if let Some(dev) = &r.dev {
        b = b.output_interface(index(dev)?);
    }
    if r.onlink {
        b = b.onlink();
    }
    Ok(b.protocol(protocol(r.proto)).build())
}

fn protocol(p: Proto) -> RouteProtocol {
    match p {
        Proto::Boot => RouteProtocol::Boot,
        Proto::Bird => RouteProtocol::Bird,
        Proto::Felix => RouteProtocol::Other(PROTO_FELIX),
    }
}

/// A route message: destination, kind, gateway, device, onlink, scope, protocol.
fn route(
    r: &Route,
    index: &dyn Fn(&Dev) -> Result<u32>,
) -> Result<rtnetlink::packet_route::route::RouteMessage> {
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new();
    if let Some(dst) = r.dst {
        b = destination(b, dst);
    }
    if r.blackhole {
        b = b.kind(RouteType::BlackHole);
    }
    if let Some(gw) = r.gateway {
        b = b.gateway(gw);
    }
    if let Some(dev) = &r.dev {
        b = b.output_interface(index(dev)?);
    }
    if r.onlink {
        b = b.onlink();
    }
    if r.scope_link {
        b = b.scope(RouteScope::Link);
    }
    Ok(b.protocol(protocol(r.proto)).build())
}

fn destination(b: RouteMessageBuilder<Ipv4Addr>, dst: Ipv4Net) -> RouteMessageBuilder<Ipv4Addr> {
    b.destination_prefix(dst.network(), dst.prefix_len())
}

fn neighbour(index: u32, family: AddressFamily, dst: IpAddr, mac: [u8; 6]) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(dst)));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    msg
}

/// Configures every pod's side: one thread per slice of pods, which joins each pod's
/// namespace in turn and runs that pod's wiring.
fn wire_pods(plan: &Plan, pod_ns: &[File]) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let per = plan.pods.len().div_ceil(threads).max(1);
    let mut work: Vec<(Wiring, File)> = Vec::with_capacity(plan.pods.len());
    for (k, f) in pod_ns.iter().enumerate().take(plan.pods.len()) {
        work.push((plan.pod_wiring(k), dup(f)?));
    }
    let mut handles = Vec::new();
    while !work.is_empty() {
        let rest = work.split_off(per.min(work.len()));
        let slice = std::mem::replace(&mut work, rest);
        let h = std::thread::Builder::new()
            .name("lab pods".into())
            .spawn(move || -> Result<()> {
                for (wiring, ns) in slice {
                    join(&ns, &wiring.place)?;
                    execute(&wiring, &Peers::none())?;
                }
                Ok(())
            })
            .map_err(|e| Error::io("spawning a thread to wire pods", e))?;
        handles.push(h);
    }
    let mut first_error = None;
    for h in handles {
        let r = h
            .join()
            .map_err(|_| Error::Internal("a lab pod thread panicked".into()))
            .and_then(|r| r);
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Moves the calling thread into the namespace behind `ns`.
fn join(ns: &File, place: &str) -> Result<()> {
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
        netns: place.to_string(),
        problem: format!("setns failed: {e}"),
    })
}

/// Runs `f` on a new thread that joined the namespace behind `ns`.
fn in_ns<T: Send + 'static>(
    ns: File,
    place: String,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    std::thread::Builder::new()
        .name(format!("lab {place}"))
        .spawn(move || {
            join(&ns, &place)?;
            f()
        })
        .map_err(|e| Error::io("spawning a thread to enter a network namespace", e))?
        .join()
        .map_err(|_| Error::Internal("a lab thread panicked".into()))?
}
