//! Checks on links, interfaces and their addresses (`ip -j link` / `ip -j addr`).
//!
//! The finders ([`find`], [`interface`], [`peer`]) return the thing found, or the failed check
//! that says what was looked for and what was there instead.

use super::{Check, Shown, Value, eq};
use crate::observe::Observed;
use crate::observe::ip::{Interface, Link};
use crate::observe::packet::{Mac, mac_str};
use ipnet::Ipv4Net;
use std::net::{IpAddr, Ipv6Addr};

/// The item of `observed` named `name`, or the failed check listing the names there are.
fn named<'a, T>(
    observed: &'a Observed<Vec<T>>,
    kind: &str,
    name: &str,
    name_of: impl Fn(&T) -> &str,
) -> Result<&'a T, Box<Check>> {
    observed
        .value
        .iter()
        .find(|x| name_of(x) == name)
        .ok_or_else(|| {
            let what = format!("{kind} in {}", observed.place);
            let there = observed
                .value
                .iter()
                .map(|x| name_of(x).to_string())
                .collect();
            let expected = Shown::text(
                format!("{what}: {name} among them"),
                Value::Interfaces(vec![name.into()]),
            );
            let observed_side = Shown::of(&what, Value::Interfaces(there));
            Box::new(Check::new(what, false, expected, observed_side).judging_output(observed))
        })
}

/// The link `name` among `links`.
pub fn find<'a>(links: &'a Observed<Vec<Link>>, name: &str) -> Result<&'a Link, Box<Check>> {
    named(links, "links", name, |l| l.ifname.as_str())
}

/// The interface `name` among `ifs`.
pub fn interface<'a>(
    ifs: &'a Observed<Vec<Interface>>,
    name: &str,
) -> Result<&'a Interface, Box<Check>> {
    named(ifs, "interfaces", name, |i| i.link.ifname.as_str())
}

/// The other end of the veth `end` among `ifs`: the interface whose ifindex is `end`'s iflink.
pub fn peer<'a>(
    ifs: &'a Observed<Vec<Interface>>,
    end: &Link,
) -> Result<&'a Interface, Box<Check>> {
    let found = end
        .link_index
        .and_then(|peer| ifs.value.iter().find(|i| i.link.ifindex == peer));
    found.ok_or_else(|| Box::new(peer_missing(ifs, end)))
}

/// `end`'s peer is among `ifs`: passed, naming the link found and its ifindex
/// (`calied9d42cb137#15`, which a report draws), when [`peer`] finds it; [`peer`]'s failed
/// check otherwise.
pub fn peer_check(ifs: &Observed<Vec<Interface>>, end: &Link) -> Check {
    let found = match peer(ifs, end) {
        Ok(found) => found,
        Err(missing) => return *missing,
    };
    let iflink = Value::Index(end.link_index);
    let what = peer_what(ifs, end);
    let name = format!("{}#{}", found.link.ifname, found.link.ifindex);
    let expected = Shown::text(format!("{what}, {iflink}"), iflink);
    let observed = Shown::text(format!("{what}: {name}"), Value::Interfaces(vec![name]));
    Check::new(what, true, expected, observed).judging_output(ifs)
}

fn peer_what(ifs: &Observed<Vec<Interface>>, end: &Link) -> String {
    format!(
        "the link in {} whose ifindex is {}'s iflink",
        ifs.place, end.ifname
    )
}

fn peer_missing(ifs: &Observed<Vec<Interface>>, end: &Link) -> Check {
    let iflink = Value::Index(end.link_index);
    let what = peer_what(ifs, end);
    let there: Vec<String> = ifs
        .value
        .iter()
        .map(|i| format!("{}#{}", i.link.ifname, i.link.ifindex))
        .collect();
    let expected = Shown::text(format!("{what}, {iflink}"), iflink);
    let observed = Shown::text(
        format!(
            "{what}: none; there are {}",
            super::list(&there, ", ", "none")
        ),
        Value::Interfaces(there),
    );
    Check::new(what, false, expected, observed).judging_output(ifs)
}

/// `link` is administratively UP.
pub fn up(link: &Link) -> Check {
    let name = &link.ifname;
    Check::new(
        format!("{name} flags"),
        link.is_up(),
        Shown::text(format!("{name} UP"), Value::Flags(vec!["UP".into()])),
        Shown::text(
            format!("{name} flags [{}]", link.flags.join(",")),
            Value::Flags(link.flags.clone()),
        ),
    )
}

/// `link`'s MAC is `want`.
pub fn mac(link: &Link, want: Mac) -> Check {
    let got = link.address.as_ref().map(|a| a.to_lowercase());
    eq(
        format!("{} MAC", link.ifname),
        Value::Mac(Some(mac_str(&want))),
        Value::Mac(got),
    )
}

/// `link`'s MTU is `want`.
pub fn mtu(link: &Link, want: u32) -> Check {
    eq(
        format!("{} MTU", link.ifname),
        Value::Mtu(want),
        Value::Mtu(link.mtu),
    )
}

/// `link` is of kind `want` (`veth`).
pub fn kind(link: &Link, want: &str) -> Check {
    let got = Value::Kind(link.kind.clone());
    eq(
        format!("{}'s kind", link.ifname),
        Value::Kind(Some(want.into())),
        got,
    )
}

/// `link`'s iflink (its peer's ifindex) is `want`.
pub fn iflink(link: &Link, want: u32) -> Check {
    let got = Value::Index(link.link_index);
    eq(
        format!("{}'s iflink", link.ifname),
        Value::Index(Some(want)),
        got,
    )
}

fn shown(ip: IpAddr, prefixlen: u8, scope: &str) -> String {
    format!("{ip}/{prefixlen} scope {scope}")
}

/// `iface` holds exactly the IPv4 address `want`, scope global (`None`: no IPv4 address).
pub fn ipv4(iface: &Interface, want: Option<Ipv4Net>) -> Check {
    let want = want
        .map(|n| shown(n.addr().into(), n.prefix_len(), "global"))
        .into_iter()
        .collect();
    let got = iface
        .ipv4()
        .map(|a| shown(a.local, a.prefixlen, &a.scope))
        .collect();
    eq(
        format!("IPv4 addresses on {}", iface.link.ifname),
        Value::Addresses(want),
        Value::Addresses(got),
    )
}

/// `iface` holds exactly one global IPv6 address, of prefix length `prefixlen` (dual stack).
pub fn one_global_v6(iface: &Interface, prefixlen: u8) -> Check {
    let got: Vec<_> = iface.global_v6().collect();
    let what = format!("global IPv6 addresses on {}", iface.link.ifname);
    let passed = got.len() == 1 && got.iter().all(|a| a.prefixlen == prefixlen);
    let got = got
        .iter()
        .map(|a| shown(a.local, a.prefixlen, &a.scope))
        .collect();
    Check::new(
        what.clone(),
        passed,
        Shown::text(
            format!("{what}: one, a /{prefixlen}"),
            Value::Addresses(vec![format!("*/{prefixlen} scope global")]),
        ),
        Shown::of(&what, Value::Addresses(got)),
    )
}

/// `iface` holds exactly one global IPv6 address, `want`/128 (the API's IPv6 pod IP); `None`:
/// the API lists no IPv6 address for the pod, which on a dual-stack cluster fails.
pub fn global_v6(iface: &Interface, want: Option<Ipv6Addr>) -> Check {
    let what = format!("global IPv6 addresses on {}", iface.link.ifname);
    let got: Vec<String> = (iface.global_v6())
        .map(|a| shown(a.local, a.prefixlen, &a.scope))
        .collect();
    let (passed, expected) = match want {
        Some(ip) => {
            let w = shown(ip.into(), 128, "global");
            (
                got == [w.clone()],
                Shown::of(&what, Value::Addresses(vec![w])),
            )
        }
        None => (
            false,
            Shown::text(
                format!(
                    "{what}: the pod's IPv6 address from status.podIPs, but the API lists none"
                ),
                Value::Addresses(vec!["<podIPv6>/128 scope global".into()]),
            ),
        ),
    };
    Check::new(
        what.clone(),
        passed,
        expected,
        Shown::of(&what, Value::Addresses(got)),
    )
}

/// `iface` holds no global IPv6 address (a host end has only its link-local one).
pub fn no_global_v6(iface: &Interface) -> Check {
    let what = format!("global IPv6 addresses on {}", iface.link.ifname);
    let got: Vec<String> = (iface.global_v6())
        .map(|a| shown(a.local, a.prefixlen, &a.scope))
        .collect();
    eq(what, Value::Addresses(Vec::new()), Value::Addresses(got))
}

/// The link-local IPv6 address of `iface` (the first, as Calico's CNI plugin takes it), or the
/// failed check saying it has none.
pub fn link_local_v6(iface: &Interface) -> Result<Ipv6Addr, Box<Check>> {
    let found = iface.addrs.iter().find_map(|a| match a.local {
        IpAddr::V6(ip) if a.scope == "link" => Some(ip),
        _ => None,
    });
    found.ok_or_else(|| {
        let what = format!("link-local IPv6 address of {}", iface.link.ifname);
        let got = iface
            .addrs
            .iter()
            .map(|a| shown(a.local, a.prefixlen, &a.scope))
            .collect();
        Box::new(Check::new(
            what.clone(),
            false,
            Shown::text(
                format!("{what}: one fe80::/64 address (the pods' IPv6 gateway)"),
                Value::Addresses(vec!["fe80::*/64 scope link".into()]),
            ),
            Shown::of(&what, Value::Addresses(got)),
        ))
    })
}

/// Exactly the interfaces `want` of `ifs` hold `ip`.
pub fn holders(ifs: &Observed<Vec<Interface>>, ip: IpAddr, want: &[&str]) -> Check {
    let got = ifs
        .value
        .iter()
        .filter(|i| i.holds(ip))
        .map(|i| i.link.ifname.clone())
        .collect();
    let want = want.iter().map(|s| s.to_string()).collect();
    eq(
        format!("interfaces in {} holding {ip}", ifs.place),
        Value::Interfaces(want),
        Value::Interfaces(got),
    )
    .judging_output(ifs)
}

/// The interfaces of a namespace, one `name#ifindex mac [addresses]` each, sorted: what two
/// views of one namespace must agree on.
pub fn interface_set(ifs: &Observed<Vec<Interface>>) -> Value {
    let mut set: Vec<String> = ifs
        .value
        .iter()
        .map(|i| {
            let mut addrs: Vec<String> = i
                .addrs
                .iter()
                .map(|a| format!("{}/{}", a.local, a.prefixlen))
                .collect();
            addrs.sort();
            format!(
                "{}#{} {} [{}]",
                i.link.ifname,
                i.link.ifindex,
                i.link.address.as_deref().unwrap_or("-"),
                addrs.join(" ")
            )
        })
        .collect();
    set.sort();
    Value::Interfaces(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ip::parse_interfaces;

    fn recorded(place: &str, file: &str) -> Observed<Vec<Interface>> {
        let path = format!("{}/fixtures/recorded/{file}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(path).unwrap();
        Observed {
            value: parse_interfaces(file, &raw).unwrap(),
            raw,
            command: "ip -d -j addr show".into(),
            place: place.into(),
        }
    }

    /// On the recorded node and pod: test-tools' eth0 (iflink 3) finds calied9d42cb137, ifindex
    /// 3, and the check names it; an iflink no host link has fails, listing what is there.
    #[test]
    fn peer_check_names_the_host_end_found_or_fails() {
        let host = recorded("host k8s-worker-1", "node/ip-j-addr.json");
        let pod = recorded("pod default/test-tools", "pod/test-tools-ip-j-addr.json");
        let eth0 = &interface(&pod, "eth0").unwrap().link;
        let found = peer_check(&host, eth0);
        assert!(found.passed);
        assert_eq!(
            found.observed.value,
            Some(Value::Interfaces(vec!["calied9d42cb137#3".into()]))
        );
        assert_eq!(
            found.observed.text,
            "the link in host k8s-worker-1 whose ifindex is eth0's iflink: calied9d42cb137#3"
        );
        let mut moved = eth0.clone();
        moved.link_index = Some(99);
        let missing = peer_check(&host, &moved);
        assert!(!missing.passed);
        assert!(
            missing.observed.text.contains("none; there are lo#1"),
            "{}",
            missing.observed.text
        );
    }
}
