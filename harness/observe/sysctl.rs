//! Per-interface sysctls.
//!
//! Two sources give the same [`Sysctls`]: `sysctl` output (`net.ipv4.conf.cali1.proxy_arp = 1`)
//! and `grep -H '' /proc/sys/...` output (`/proc/sys/net/ipv4/conf/cali1/proxy_arp:1`).
//!
//! Keys are the path under `/proc/sys` with `/` written `.`, the interface component kept
//! verbatim: `/proc/sys/net/ipv4/conf/vxlan.calico/rp_filter` is
//! `net.ipv4.conf.vxlan.calico.rp_filter`. `sysctl` itself writes a dot inside a component as
//! `/` (`net.ipv4.conf.vxlan/calico.rp_filter`); such names are mapped to the same key. Look
//! values up by interface with [`Sysctls::iface_value`], which never has to split a key.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The `/proc/sys` prefix of every sysctl file.
pub const PROC_SYS: &str = "/proc/sys/";

/// The per-interface sysctls the claims read for a pod's host end (VETH-4), as
/// `<section>.<name>` leaves under `net.ipv4`.
pub const HOST_END_LEAVES: [&str; 5] = [
    "conf.proxy_arp",
    "neigh.proxy_delay",
    "conf.forwarding",
    "conf.route_localnet",
    "conf.rp_filter",
];

/// Sysctl values by key (see the module docs for the key form).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sysctls {
    /// Key → value (trimmed, as printed).
    pub values: BTreeMap<String, String>,
}

impl Sysctls {
    /// Parses `sysctl` lines (`key = value`) and `grep -H` lines (`/proc/sys/...:value`), in any
    /// mix. Blank lines are skipped; any other line is an error naming `source_name` and the
    /// line number.
    pub fn parse(source_name: &str, text: &str) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = parse_line(line).ok_or_else(|| {
                Error::parse(
                    source_name,
                    format!(
                        "line {}: expected `net.x.y = value` or `/proc/sys/net/x/y:value`, found `{line}`",
                        n + 1
                    ),
                )
            })?;
            values.insert(key, value);
        }
        Ok(Sysctls { values })
    }

    /// The value of `key`, in the module's key form (`net.ipv4.conf.vxlan.calico.rp_filter`) or
    /// as `sysctl` prints it (`net.ipv4.conf.vxlan/calico.rp_filter`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .or_else(|| self.values.get(&normalize_dotted(key)))
            .map(String::as_str)
    }

    /// The value of the IPv4 sysctl `leaf` (`conf.proxy_arp`, `neigh.proxy_delay`) of `iface`:
    /// `net.ipv4.conf.<iface>.proxy_arp`.
    pub fn iface_value(&self, iface: &str, leaf: &str) -> Option<&str> {
        self.values.get(&iface_key(iface, leaf)).map(String::as_str)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The key of the IPv4 sysctl `leaf` (`conf.proxy_arp`) of `iface`:
/// `net.ipv4.conf.<iface>.proxy_arp`. A leaf without a section is taken as `conf.<leaf>`.
pub fn iface_key(iface: &str, leaf: &str) -> String {
    let (section, name) = leaf.split_once('.').unwrap_or(("conf", leaf));
    format!("net.ipv4.{section}.{iface}.{name}")
}

/// The `/proc/sys` path of the IPv4 sysctl `leaf` (`conf.proxy_arp`) of `iface`.
pub fn iface_path(iface: &str, leaf: &str) -> String {
    let (section, name) = leaf.split_once('.').unwrap_or(("conf", leaf));
    format!("{PROC_SYS}net/ipv4/{section}/{iface}/{name}")
}

/// The key of the IPv6 sysctl `leaf` (`proxy_ndp`) of `iface`: `net.ipv6.conf.<iface>.<leaf>`.
pub fn iface_key6(iface: &str, leaf: &str) -> String {
    format!("net.ipv6.conf.{iface}.{leaf}")
}

/// The `/proc/sys` path of the IPv6 sysctl `leaf` (`proxy_ndp`) of `iface`.
pub fn iface_path6(iface: &str, leaf: &str) -> String {
    format!("{PROC_SYS}net/ipv6/conf/{iface}/{leaf}")
}

/// The `/proc/sys` paths of a pod host end's sysctls: proxy_arp, neigh proxy_delay,
/// forwarding, route_localnet and rp_filter of `iface`.
pub fn host_end_paths(iface: &str) -> Vec<String> {
    HOST_END_LEAVES
        .iter()
        .map(|leaf| iface_path(iface, leaf))
        .collect()
}

/// The key of a `/proc/sys/...` path (`/proc/sys/net/ipv4/conf/vxlan.calico/rp_filter` →
/// `net.ipv4.conf.vxlan.calico.rp_filter`); `None` for paths outside `/proc/sys`.
pub fn path_to_key(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PROC_SYS)?;
    if rest.is_empty() || rest.split('/').any(str::is_empty) {
        return None;
    }
    Some(rest.replace('/', "."))
}

/// The interface component of a per-interface path (`/proc/sys/net/ipv4/conf/<iface>/x` or
/// `.../neigh/<iface>/x`, IPv4 or IPv6).
pub fn iface_of_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(PROC_SYS)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["net", "ipv4" | "ipv6", "conf" | "neigh", iface, _leaf] => Some(iface),
        _ => None,
    }
}

/// A `sysctl` name (`net.ipv4.conf.vxlan/calico.rp_filter`) in key form: a `/` inside a
/// component stands for a dot, and no `/proc/sys` component holds a `/`.
fn normalize_dotted(name: &str) -> String {
    name.replace('/', ".")
}

fn parse_line(line: &str) -> Option<(String, String)> {
    if line.starts_with(PROC_SYS) {
        let (path, value) = line.split_once(':')?;
        return Some((path_to_key(path)?, value.trim().to_string()));
    }
    let (name, value) = line.split_once(" = ").or_else(|| {
        // `sysctl` prints `key = ` for an empty value.
        line.strip_suffix(" =").map(|n| (n, ""))
    })?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) || name.starts_with('/') {
        return None;
    }
    Some((normalize_dotted(name), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> String {
        crate::fixtures::read_text(&format!("recorded/{path}"))
    }

    #[test]
    fn sysctl_output_of_a_recorded_host_end() {
        let s = Sysctls::parse("node sysctl", &fixture("node/sysctl-calied9d42cb137.txt"))
            .expect("parses");
        assert_eq!(s.len(), 5);
        let iface = "calied9d42cb137";
        assert_eq!(s.iface_value(iface, "conf.proxy_arp"), Some("1"));
        assert_eq!(s.iface_value(iface, "neigh.proxy_delay"), Some("0"));
        assert_eq!(s.iface_value(iface, "conf.forwarding"), Some("1"));
        assert_eq!(s.iface_value(iface, "conf.route_localnet"), Some("1"));
        assert_eq!(s.iface_value(iface, "conf.rp_filter"), Some("0"));
        assert_eq!(s.get("net.ipv4.conf.calied9d42cb137.proxy_arp"), Some("1"));
        assert_eq!(s.iface_value("calid9d486e54a8", "conf.proxy_arp"), None);
    }

    #[test]
    fn grep_output_and_sysctl_output_give_the_same_keys_for_dotted_interfaces() {
        let grep = Sysctls::parse("lab grep", &fixture("lab/node-grep-sysctls.txt")).expect("grep");
        let dotted =
            Sysctls::parse("lab sysctl", &fixture("lab/node-sysctl-dotted.txt")).expect("sysctl");
        assert_eq!(
            grep.iface_value("vxlan.calico", "conf.rp_filter"),
            Some("0")
        );
        assert_eq!(
            dotted.iface_value("vxlan.calico", "conf.rp_filter"),
            Some("0")
        );
        assert_eq!(
            dotted.iface_value("vxlan.calico", "conf.proxy_arp"),
            Some("0")
        );
        assert_eq!(
            dotted.get("net.ipv4.conf.vxlan/calico.rp_filter"),
            Some("0")
        );
        assert_eq!(grep.get("net.ipv4.conf.vxlan.calico.rp_filter"), Some("0"));
        for (key, value) in &dotted.values {
            assert_eq!(grep.get(key), Some(value.as_str()), "{key}");
        }
        let cali = "calitest0000a";
        assert_eq!(grep.iface_value(cali, "conf.proxy_arp"), Some("1"));
        assert_eq!(grep.iface_value(cali, "neigh.proxy_delay"), Some("0"));
    }

    #[test]
    fn host_end_paths_cover_the_claimed_sysctls_and_map_back_to_keys() {
        let paths = host_end_paths("vxlan.calico");
        assert_eq!(
            paths,
            [
                "/proc/sys/net/ipv4/conf/vxlan.calico/proxy_arp",
                "/proc/sys/net/ipv4/neigh/vxlan.calico/proxy_delay",
                "/proc/sys/net/ipv4/conf/vxlan.calico/forwarding",
                "/proc/sys/net/ipv4/conf/vxlan.calico/route_localnet",
                "/proc/sys/net/ipv4/conf/vxlan.calico/rp_filter",
            ]
        );
        for (path, leaf) in paths.iter().zip(HOST_END_LEAVES) {
            assert_eq!(
                path_to_key(path),
                Some(iface_key("vxlan.calico", leaf)),
                "{path}"
            );
            assert_eq!(iface_of_path(path), Some("vxlan.calico"));
        }
    }

    #[test]
    fn a_line_of_neither_form_is_an_error_naming_source_and_line() {
        let err = Sysctls::parse("host w1: grep", "net.ipv4.ip_forward = 1\nNo such file\n")
            .expect_err("bad line");
        let msg = err.to_string();
        assert!(msg.starts_with("host w1: grep: line 2:"), "{msg}");
        assert!(msg.contains("No such file"), "{msg}");
    }

    #[test]
    fn empty_values_and_blank_lines() {
        let s = Sysctls::parse(
            "x",
            "\nkernel.domainname = \n/proc/sys/kernel/hostname:h1\n",
        )
        .expect("parses");
        assert_eq!(s.get("kernel.domainname"), Some(""));
        assert_eq!(s.get("kernel.hostname"), Some("h1"));
        assert_eq!(path_to_key("/etc/passwd"), None);
    }
}
