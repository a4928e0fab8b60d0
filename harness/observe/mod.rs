//! Observations: typed values parsed from what runs in a place. One parser serves every target.
//!
//! - [`ip`]: links, addresses, routes and neighbours from `ip -j` (iproute2 JSON);
//! - [`sysctl`]: per-interface sysctls under `/proc/sys/net`;
//! - [`packet`]: frames from pcap data (a native capture or `tcpdump -U -w -`).
//!
//! The `run_*`-style helpers below ([`links`], [`interfaces`], [`routes`], [`neighbours`],
//! [`sysctls`]) run the command in a [`Place`], parse its output and return it as an
//! [`Observed`] that keeps the raw bytes, so a failing claim can save them as evidence.

pub mod ip;
pub mod packet;
pub mod sysctl;

use crate::error::{Error, Result};
use crate::place::{COMMAND_DEADLINE, Place, command_line};
use ip::{Interface, Link, Neighbour, Route};
use sysctl::Sysctls;

/// A parsed observation with the raw output it came from.
#[derive(Debug, Clone)]
pub struct Observed<T> {
    /// The parsed value.
    pub value: T,
    /// The command's standard output, byte for byte.
    pub raw: Vec<u8>,
    /// The command line that produced it.
    pub command: String,
    /// The label of the place it ran in.
    pub place: String,
}

impl<T> Observed<T> {
    /// The name parse errors use for this output: `<place>: <command>`.
    pub fn source_name(&self) -> String {
        format!("{}: {}", self.place, self.command)
    }
}

/// Runs `argv` in `place` (failing on a non-zero exit) and parses its stdout with `parse`,
/// whose errors name `<place label>: <command>`.
pub async fn observe_with<T>(
    place: &Place,
    argv: &[&str],
    parse: impl FnOnce(&str, &[u8]) -> Result<T>,
) -> Result<Observed<T>> {
    let out = place.run_ok(argv).await?;
    let command = command_line(argv);
    let source = format!("{}: {command}", place.label());
    let value = parse(&source, &out.stdout)?;
    Ok(Observed {
        value,
        raw: out.stdout,
        command,
        place: place.label().to_string(),
    })
}

/// The links of `place` with their details (`ip -d -j link show`).
pub async fn links(place: &Place) -> Result<Observed<Vec<Link>>> {
    observe_with(place, &["ip", "-d", "-j", "link", "show"], ip::parse_links).await
}

/// The interfaces of `place` with their addresses (`ip -d -j addr show`).
pub async fn interfaces(place: &Place) -> Result<Observed<Vec<Interface>>> {
    observe_with(
        place,
        &["ip", "-d", "-j", "addr", "show"],
        ip::parse_interfaces,
    )
    .await
}

/// The main table's IPv4 (`v4`) or IPv6 routes (`ip -j -4|-6 route show table main`).
pub async fn routes(place: &Place, v4: bool) -> Result<Observed<Vec<Route>>> {
    let family = if v4 { "-4" } else { "-6" };
    observe_with(
        place,
        &["ip", "-j", family, "route", "show", "table", "main"],
        ip::parse_routes,
    )
    .await
}

/// The IPv4 neighbour table (`ip -j -4 neigh show`).
pub async fn neighbours(place: &Place) -> Result<Observed<Vec<Neighbour>>> {
    observe_with(
        place,
        &["ip", "-j", "-4", "neigh", "show"],
        ip::parse_neighbours,
    )
    .await
}

/// The IPv6 neighbour table (`ip -j -6 neigh show`).
pub async fn neighbours6(place: &Place) -> Result<Observed<Vec<Neighbour>>> {
    observe_with(
        place,
        &["ip", "-j", "-6", "neigh", "show"],
        ip::parse_neighbours,
    )
    .await
}

/// Reads the sysctl files `paths` (absolute `/proc/sys/...` paths, e.g. from
/// [`sysctl::host_end_paths`]) with `grep -H '' <paths>`. A path that does not exist is an
/// error naming the place, the interface and the sysctl.
pub async fn sysctls(place: &Place, paths: &[String]) -> Result<Observed<Sysctls>> {
    if paths.is_empty() {
        return Ok(Observed {
            value: Sysctls::default(),
            raw: Vec::new(),
            command: "grep -H ''".to_string(),
            place: place.label().to_string(),
        });
    }
    let mut argv: Vec<&str> = vec!["grep", "-H", ""];
    argv.extend(paths.iter().map(String::as_str));
    let command = command_line(&argv);
    let out = place.run(&argv, COMMAND_DEADLINE).await?;
    let source = format!("{}: {command}", place.label());
    // grep exits 2 when a file is missing but still prints the others: parse first, then say
    // exactly which sysctl is missing.
    let value = match out.code {
        Some(0) | Some(2) => Sysctls::parse(&source, &String::from_utf8_lossy(&out.stdout))?,
        _ => {
            return Err(out
                .ok()
                .err()
                .unwrap_or_else(|| Error::parse(&source, "failed")));
        }
    };
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| sysctl::path_to_key(p).is_none_or(|k| value.get(&k).is_none()))
        .collect();
    if let Some(first) = missing.first() {
        let what = match sysctl::iface_of_path(first) {
            Some(iface) => format!("interface `{iface}` has no {first}"),
            None => format!("{first} does not exist"),
        };
        let more = if missing.len() > 1 {
            format!(" (and {} more missing)", missing.len() - 1)
        } else {
            String::new()
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.lines().next().unwrap_or("").trim();
        let stderr = stderr.strip_prefix("grep: ").unwrap_or(stderr);
        return Err(Error::NotFound(format!(
            "{}: {what}{more}{}",
            place.label(),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(" (grep: {stderr})")
            }
        )));
    }
    if out.code != Some(0) {
        return Err(out
            .ok()
            .err()
            .unwrap_or_else(|| Error::parse(&source, "failed")));
    }
    Ok(Observed {
        value,
        raw: out.stdout,
        command,
        place: place.label().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test process's own namespace, only read from (`ip ... show`, `grep`).
    fn own_namespace() -> Place {
        crate::local::LocalPlace::place("host self", "/proc/self/ns/net")
    }

    #[tokio::test]
    async fn helpers_observe_a_real_namespace_and_keep_the_raw_output() {
        let place = own_namespace();
        let links = links(&place).await.expect("ip -d -j link show");
        assert!(links.value.iter().any(|l| l.ifname == "lo"));
        assert_eq!(links.command, "ip -d -j link show");
        assert_eq!(links.place, "host self");
        assert_eq!(
            ip::parse_links("again", &links.raw).expect("raw parses"),
            links.value
        );
        let ifs = interfaces(&place).await.expect("ip -d -j addr show");
        let lo = ifs
            .value
            .iter()
            .find(|i| i.link.ifname == "lo")
            .expect("lo");
        assert!(lo.link.has_flag("LOOPBACK"));
        routes(&place, true).await.expect("v4 routes");
        routes(&place, false).await.expect("v6 routes");
        neighbours(&place).await.expect("neighbours");
    }

    #[tokio::test]
    async fn sysctls_read_existing_paths_and_name_the_missing_interface() {
        let place = own_namespace();
        let paths = vec![
            sysctl::iface_path("lo", "conf.forwarding"),
            sysctl::iface_path("lo", "neigh.proxy_delay"),
        ];
        let s = sysctls(&place, &paths).await.expect("lo sysctls");
        assert!(s.value.iface_value("lo", "conf.forwarding").is_some());
        assert!(s.value.iface_value("lo", "neigh.proxy_delay").is_some());
        let mut paths = sysctl::host_end_paths("calinothere0");
        paths.push(sysctl::iface_path("lo", "conf.forwarding"));
        let err = sysctls(&place, &paths)
            .await
            .expect_err("no such interface")
            .to_string();
        assert!(
            err.starts_with(
                "host self: interface `calinothere0` has no /proc/sys/net/ipv4/conf/calinothere0/proxy_arp (and 4 more missing)"
            ),
            "{err}"
        );
    }
}
