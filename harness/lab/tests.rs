//! Lab tests. They build real namespaces, so they need root (this machine and CI are root).
//! Checks are made with `ip -j` / `bridge -j` / `cat /proc/sys/...` run inside the lab's
//! namespaces through [`crate::netns::command_in`]; no traffic is sent (other code does that).

use super::plan::mac_str;
use super::*;
use crate::calico::VXLAN_DEVICE;
use crate::facts::Encapsulation;
use crate::netns;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn run_id(tag: &str) -> String {
    format!("test-{tag}-{}", std::process::id())
}

/// Runs `program args` inside `ns` and returns stdout.
fn run_in(ns: &Path, program: &str, args: &[&str]) -> std::result::Result<String, String> {
    let out = netns::command_in(ns, program)
        .map_err(|e| e.to_string())?
        .args(args)
        .output()
        .map_err(|e| format!("{program} {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?} in {}: {}",
            ns.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn json_in(ns: &Path, program: &str, args: &[&str]) -> std::result::Result<Vec<Value>, String> {
    let text = run_in(ns, program, args)?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{args:?}: {e}: {text}"))?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn sysctl_in(ns: &Path, path: &str) -> std::result::Result<String, String> {
    Ok(run_in(ns, "cat", &[path])?.trim().to_string())
}

fn link<'a>(links: &'a [Value], name: &str) -> Option<&'a Value> {
    links.iter().find(|l| l["ifname"] == name)
}

fn route<'a>(routes: &'a [Value], dst: &str) -> Option<&'a Value> {
    routes.iter().find(|r| r["dst"] == dst)
}

fn has_flag(v: &Value, flag: &str) -> bool {
    v["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// The machine's own link names (never changed by the lab).
fn own_links() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    names.sort();
    names
}

/// A holder is gone when its namespace link no longer resolves (reaped, or a zombie whose
/// namespaces the kernel already released).
fn holder_gone(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).is_err()
}

/// The `net:[<inode>]` a `/proc` symlink points to, if it is a network namespace.
fn net_inode(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    let s = target.to_str()?;
    s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// `SO_NETNS_COOKIE` (`asm-generic/socket.h`; the architectures this suite runs on use it).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the network namespace at `path`, read from a socket made inside it: unique
/// for the machine's uptime and never reused, unlike nsfs inode numbers (which another
/// process's new namespace may get as soon as one of ours is freed). `None` when the path
/// cannot be entered (any more).
fn cookie(path: &Path) -> Option<u64> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    netns::in_netns(path, || {
        let sock = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Error::io("socket", e.into()))?;
        let mut value: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: nix has no getter for SO_NETNS_COOKIE. `value` and `len` outlive the call,
        // `len` is `value`'s size, and the descriptor is open (owned by `sock`).
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut value as *mut u64).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(Error::io(
                "SO_NETNS_COOKIE",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(value)
    })
    .ok()
}

/// A namespace as the tests track it: nsfs inode (to find references cheaply) and cookie (to
/// tell ours from a later namespace with a reused inode).
type NsId = (u64, u64);

/// The lab's node and pod namespaces, through the paths its topology hands out.
fn lab_ids(lab: &Lab) -> std::result::Result<Vec<NsId>, String> {
    let t = &lab.topology;
    let paths = t
        .nodes
        .iter()
        .map(|n| &n.netns)
        .chain(t.pods.iter().map(|p| &p.netns));
    let ids = paths
        .map(|p| {
            let ino = netns::identity(p).map_err(|e| e.to_string())?.1;
            let c = cookie(p).ok_or(format!("cannot enter {}", p.display()))?;
            Ok((ino, c))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let inodes: Vec<u64> = ids.iter().map(|(i, _)| *i).collect();
    assert_eq!(lab.namespace_inodes().map_err(|e| e.to_string())?, inodes);
    Ok(ids)
}

/// Which of `ids` anything on this machine still references, as far as user space can see:
/// a process's or thread's network namespace (`/proc/*/task/*/ns/net`), an open descriptor
/// of any process (`/proc/*/fd/*`), or a bind mount (`/proc/self/mountinfo`). A namespace
/// none of these reference has no way left to be entered, and the kernel frees it.
fn referenced(ids: &[NsId]) -> BTreeSet<NsId> {
    let mut found = BTreeSet::new();
    // Per scan, each inode names at most one live namespace: enter it once to read its cookie.
    let mut checked: BTreeSet<u64> = BTreeSet::new();
    let mut note = |link: &Path, ino: Option<u64>| {
        let Some(ino) = ino else { return };
        if checked.contains(&ino) {
            return;
        }
        let Some(id) = ids.iter().find(|(i, _)| *i == ino) else {
            return;
        };
        // A link whose process just ended cannot be entered: try the next one.
        if let Some(c) = cookie(link) {
            checked.insert(ino);
            if c == id.1 {
                found.insert(*id);
            }
        }
    };
    let entries = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    for proc_dir in entries(Path::new("/proc")) {
        let is_pid = proc_dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        for task in entries(&proc_dir.join("task")) {
            let link = task.join("ns/net");
            note(&link, net_inode(&link));
        }
        for fd in entries(&proc_dir.join("fd")) {
            note(&fd, net_inode(&fd));
        }
    }
    // mountinfo: "id parent major:minor root mountpoint ..."; an nsfs bind mount's root is
    // `net:[<inode>]`.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) {
            let ino = root
                .strip_prefix("net:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok());
            note(Path::new(point), ino);
        }
    }
    found
}

/// Waits until no process is left of `pids` and nothing references `ids` (a process this one
/// forks for another test holds our descriptors until its exec closes them).
fn wait_all_gone(pids: &[u32], ids: &[NsId], deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if pids.iter().all(|p| holder_gone(*p)) && referenced(ids).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Checks common to every mode; returns the two nodes' namespaces.
fn check_common(lab: &Lab, mtu: u32) -> std::result::Result<(PathBuf, PathBuf), String> {
    let t = &lab.topology;
    let w1 = t.nodes[0].netns.clone();
    let w2 = t.nodes[1].netns.clone();
    assert_eq!(t.nodes[0].name, "k8s-worker-1");
    assert_eq!(t.nodes[1].name, "k8s-worker-2");
    assert_eq!(t.pods.len(), 3);

    // Node links: lo and the underlay up, host ends as the CNI plugin makes them.
    let links = json_in(&w1, "ip", &["-j", "link", "show"])?;
    let lo = link(&links, "lo").ok_or("no lo")?;
    assert!(has_flag(lo, "UP"), "lo down: {lo}");
    let ens = link(&links, UNDERLAY).ok_or("no ens192 on worker-1")?;
    assert_eq!(ens["mtu"], 1500);
    assert!(has_flag(ens, "UP") && has_flag(ens, "LOWER_UP"), "{ens}");
    for (pod, cali) in [
        ("c2c-network-demo", "calid9d486e54a8"),
        ("test-tools", "calied9d42cb137"),
    ] {
        let l = link(&links, cali).ok_or(format!("no {cali} for {pod}"))?;
        assert_eq!(l["address"], "ee:ee:ee:ee:ee:ee", "{l}");
        // One queue each way, asked for at creation (see `veth` in lab/wire.rs).
        let detail = json_in(&w1, "ip", &["-d", "-j", "link", "show", "dev", cali])?;
        assert_eq!(detail[0]["num_tx_queues"], 1, "{}", detail[0]);
        assert_eq!(detail[0]["num_rx_queues"], 1, "{}", detail[0]);
        assert_eq!(l["mtu"], mtu, "{l}");
        assert!(has_flag(l, "UP") && has_flag(l, "LOWER_UP"), "{l}");
        let addrs = json_in(&w1, "ip", &["-j", "-4", "addr", "show", "dev", cali])?;
        let none = addrs
            .iter()
            .all(|a| a["addr_info"].as_array().is_none_or(|v| v.is_empty()));
        assert!(none, "{cali} has an IPv4 address: {addrs:?}");
        for (file, want) in [
            (format!("/proc/sys/net/ipv4/conf/{cali}/proxy_arp"), "1"),
            (format!("/proc/sys/net/ipv4/neigh/{cali}/proxy_delay"), "0"),
            (format!("/proc/sys/net/ipv4/conf/{cali}/forwarding"), "1"),
            (
                format!("/proc/sys/net/ipv4/conf/{cali}/route_localnet"),
                "1",
            ),
        ] {
            assert_eq!(sysctl_in(&w1, &file)?, want, "{file}");
        }
    }
    for cali in ["calid9d486e54a8", "calied9d42cb137"] {
        if Path::new("/proc/sys/net/ipv6").exists() {
            let file = format!("/proc/sys/net/ipv6/conf/{cali}/accept_ra");
            assert_eq!(sysctl_in(&w1, &file)?, "0", "{file}");
        }
        // Felix copies the node's default rp_filter to each host end.
        let file = format!("/proc/sys/net/ipv4/conf/{cali}/rp_filter");
        let default = sysctl_in(&w1, "/proc/sys/net/ipv4/conf/default/rp_filter")?;
        assert_eq!(default, crate::lab::NODE_RP_FILTER);
        assert_eq!(sysctl_in(&w1, &file)?, default, "{file}");
    }
    assert_eq!(sysctl_in(&w1, "/proc/sys/net/ipv4/ip_forward")?, "1");
    assert_eq!(sysctl_in(&w2, "/proc/sys/net/ipv4/ip_forward")?, "1");
    let w2_links = json_in(&w2, "ip", &["-j", "link", "show"])?;
    assert!(link(&w2_links, UNDERLAY).is_some(), "no ens192 on worker-2");

    // Node routes: /32 per pod, blackhole block.
    let routes = json_in(&w1, "ip", &["-j", "-4", "route", "show"])?;
    let r = route(&routes, "192.168.1.10").ok_or("no /32 route for c2c")?;
    assert_eq!(r["dev"], "calid9d486e54a8");
    assert_eq!(r["scope"], "link");
    let r = route(&routes, "192.168.1.12").ok_or("no /32 route for test-tools")?;
    assert_eq!(r["dev"], "calied9d42cb137");
    let b = route(&routes, "192.168.1.0/26").ok_or("no blackhole")?;
    assert_eq!(b["type"], "blackhole");
    let addrs = json_in(&w1, "ip", &["-j", "-4", "addr", "show", "dev", UNDERLAY])?;
    assert_eq!(addrs[0]["addr_info"][0]["local"], "10.12.22.2");
    assert_eq!(addrs[0]["addr_info"][0]["prefixlen"], 16);

    // Pods: eth0 /32, MTU, the two routes, lo up.
    for p in &t.pods {
        let links = json_in(&p.netns, "ip", &["-j", "link", "show"])?;
        let eth0 = link(&links, "eth0").ok_or(format!("no eth0 in {}", p.name))?;
        assert_eq!(eth0["mtu"], mtu);
        assert!(has_flag(eth0, "UP") && has_flag(eth0, "LOWER_UP"), "{eth0}");
        assert!(has_flag(link(&links, "lo").ok_or("no lo")?, "UP"));
        let addrs = json_in(&p.netns, "ip", &["-j", "-4", "addr", "show", "dev", "eth0"])?;
        let info = &addrs[0]["addr_info"];
        assert_eq!(info.as_array().map(|a| a.len()), Some(1), "{info}");
        assert_eq!(info[0]["local"], p.ip.to_string());
        assert_eq!(info[0]["prefixlen"], 32);
        assert_eq!(info[0]["scope"], "global");
        let routes = json_in(&p.netns, "ip", &["-j", "-4", "route", "show"])?;
        assert_eq!(routes.len(), 2, "{routes:?}");
        let d = route(&routes, "default").ok_or("no default")?;
        assert_eq!(d["gateway"], "169.254.1.1");
        assert_eq!(d["dev"], "eth0");
        let g = route(&routes, "169.254.1.1").ok_or("no gateway route")?;
        assert_eq!(g["scope"], "link");
        assert_eq!(g["dev"], "eth0");
    }

    // The namespaces' paths work for a thread of this process too (`in_netns` opens them).
    let id = netns::identity(&w1).map_err(|e| e.to_string())?;
    let seen = netns::in_netns(&w1, || {
        netns::identity(Path::new("/proc/thread-self/ns/net"))
    })
    .map_err(|e| e.to_string())?;
    assert_eq!(seen, id, "in_netns did not land in worker-1's namespace");
    let ids = lab_ids(lab)?;
    assert_eq!(ids.len(), 2 + t.pods.len());
    assert_eq!(ids[0].0, id.1);

    // Containers share their pod's namespace.
    let c2c = t
        .pods
        .iter()
        .find(|p| p.name == "c2c-network-demo")
        .ok_or("no c2c")?;
    let names: Vec<&str> = c2c.containers.keys().map(String::as_str).collect();
    assert_eq!(names, ["curl-client", "hello-world-server"]);
    let pod_id = netns::identity(&c2c.netns).map_err(|e| e.to_string())?;
    for path in c2c.containers.values() {
        assert_eq!(netns::identity(path).map_err(|e| e.to_string())?, pod_id);
        assert_ne!(path, &c2c.netns, "a container must be a process of its own");
    }
    Ok((w1, w2))
}

#[test]
fn builds_the_article_without_encapsulation() -> TestResult {
    let before = own_links();
    let lab = Lab::build_blocking(&LabSpec::article(Encapsulation::None), &run_id("none"))?;
    let (w1, w2) = check_common(&lab, 1500)?;
    let routes = json_in(&w1, "ip", &["-j", "-4", "route", "show"])?;
    let r = route(&routes, "192.168.2.0/26").ok_or("no route to worker-2's block")?;
    assert_eq!(r["gateway"], "10.12.22.3");
    assert_eq!(r["dev"], UNDERLAY);
    let routes = json_in(&w2, "ip", &["-j", "-4", "route", "show"])?;
    let r = route(&routes, "192.168.1.0/26").ok_or("no route to worker-1's block")?;
    assert_eq!(r["gateway"], "10.12.22.2");
    let links = json_in(&w1, "ip", &["-j", "link", "show"])?;
    assert!(link(&links, VXLAN_DEVICE).is_none());
    assert_eq!(lab.topology.nodes[0].vxlan_tunnel_address, None);

    let pids = lab.holder_pids();
    assert_eq!(pids.len(), 3, "one holder per container");
    let inodes = lab_ids(&lab)?;
    assert_eq!(inodes.len(), 2 + 3, "nodes + pods");
    assert_eq!(
        referenced(&inodes).len(),
        inodes.len(),
        "the scan sees the lab"
    );
    drop(lab);
    assert!(
        pids.iter().all(|p| holder_gone(*p)),
        "holders remain after drop"
    );
    assert!(
        wait_all_gone(&[], &inodes, Duration::from_secs(5)),
        "namespaces still referenced after drop: {:?}",
        referenced(&inodes)
    );
    assert_eq!(own_links(), before, "the machine's own links changed");
    Ok(())
}

#[test]
fn builds_the_article_over_vxlan() -> TestResult {
    let before = own_links();
    let lab = Lab::build_blocking(&LabSpec::article(Encapsulation::Vxlan), &run_id("vxlan"))?;
    let (w1, w2) = check_common(&lab, 1450)?;
    let mac2 = mac_str(&felix_vxlan_mac("k8s-worker-2"));
    let mac1 = mac_str(&felix_vxlan_mac("k8s-worker-1"));
    assert!(mac1.starts_with("66:"), "{mac1}");

    let links = json_in(&w1, "ip", &["-j", "-d", "link", "show", VXLAN_DEVICE])?;
    let vx = links.first().ok_or("no vxlan.calico")?;
    assert_eq!(vx["mtu"], 1450);
    assert_eq!(vx["address"], mac1);
    assert!(has_flag(vx, "UP"));
    let data = &vx["linkinfo"]["info_data"];
    assert_eq!(data["id"], 4096, "{data}");
    assert_eq!(data["port"], 4789, "{data}");
    assert_eq!(data["local"], "10.12.22.2", "{data}");
    assert_eq!(data["learning"], false, "{data}");
    assert_eq!(data["link"], UNDERLAY, "{data}");
    let addrs = json_in(
        &w1,
        "ip",
        &["-j", "-4", "addr", "show", "dev", VXLAN_DEVICE],
    )?;
    assert_eq!(addrs[0]["addr_info"][0]["local"], "192.168.1.0");
    assert_eq!(addrs[0]["addr_info"][0]["prefixlen"], 32);
    assert_eq!(
        lab.topology.nodes[0].vxlan_tunnel_address,
        Some(Ipv4Addr::new(192, 168, 1, 0))
    );

    let routes = json_in(&w1, "ip", &["-j", "-4", "route", "show"])?;
    let r = route(&routes, "192.168.2.0/26").ok_or("no route to worker-2's block")?;
    assert_eq!(r["gateway"], "192.168.2.0");
    assert_eq!(r["dev"], VXLAN_DEVICE);
    assert!(has_flag(r, "onlink"), "{r}");
    let neigh = json_in(&w1, "ip", &["-j", "neigh", "show", "dev", VXLAN_DEVICE])?;
    let n = neigh
        .iter()
        .find(|n| n["dst"] == "192.168.2.0")
        .ok_or("no neighbour")?;
    assert_eq!(n["lladdr"], mac2);
    assert!(
        n["state"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "PERMANENT")),
        "{n}"
    );
    let fdb = json_in(&w1, "bridge", &["-j", "fdb", "show", "dev", VXLAN_DEVICE])?;
    let f = fdb
        .iter()
        .find(|f| f["mac"] == mac2.as_str())
        .ok_or(format!("no fdb entry: {fdb:?}"))?;
    assert_eq!(f["dst"], "10.12.22.3");
    assert_eq!(f["state"], "permanent");

    let routes = json_in(&w2, "ip", &["-j", "-4", "route", "show"])?;
    let r = route(&routes, "192.168.1.0/26").ok_or("no route to worker-1's block")?;
    assert_eq!(r["gateway"], "192.168.1.0");

    let pids = lab.holder_pids();
    let inodes = lab_ids(&lab)?;
    lab.teardown_blocking()?;
    assert!(
        pids.iter().all(|p| holder_gone(*p)),
        "holders remain after teardown"
    );
    assert!(
        wait_all_gone(&[], &inodes, Duration::from_secs(5)),
        "namespaces still referenced after teardown: {:?}",
        referenced(&inodes)
    );
    assert_eq!(own_links(), before, "the machine's own links changed");
    Ok(())
}

#[test]
fn one_node_with_many_pods() -> TestResult {
    let spec = LabSpec {
        encapsulation: Encapsulation::None,
        extra_pods_per_node: 100,
        nodes: 1,
        ..LabSpec::default()
    };
    let lab = Lab::build_blocking(&spec, &run_id("many"))?;
    assert_eq!(lab.topology.pods.len(), 102);
    let blocks = &lab.topology.nodes[0].blocks;
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let w1 = &lab.topology.nodes[0].netns;
    let routes = json_in(w1, "ip", &["-j", "-4", "route", "show"])?;
    for b in blocks {
        let r = route(&routes, &b.to_string()).ok_or(format!("no blackhole {b}"))?;
        assert_eq!(r["type"], "blackhole");
    }
    let host_routes = routes.iter().filter(|r| r["scope"] == "link").count();
    assert!(host_routes >= 102, "{host_routes} host routes");
    // Every pod address is in one of the node's blocks, and unique.
    let mut ips: Vec<Ipv4Addr> = lab.topology.pods.iter().map(|p| p.ip).collect();
    assert!(ips.iter().all(|ip| blocks.iter().any(|b| b.contains(ip))));
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 102);
    Ok(())
}

#[test]
fn two_labs_at_once_do_not_collide() -> TestResult {
    let spec = LabSpec::article(Encapsulation::None);
    let a = std::thread::spawn({
        let spec = spec.clone();
        move || Lab::build_blocking(&spec, &run_id("twin-a"))
    });
    let b = Lab::build_blocking(&spec, &run_id("twin-b"))?;
    let a = a.join().map_err(|_| "thread panicked")??;
    assert_ne!(a.topology.nodes[0].netns, b.topology.nodes[0].netns);
    Ok(())
}

#[test]
fn ipip_without_the_module_is_a_preflight_error() {
    if Path::new("/sys/module/ipip").exists() {
        return; // this kernel has it: nothing to prove here
    }
    let e = Lab::build_blocking(&LabSpec::article(Encapsulation::Ipip), &run_id("ipip"));
    assert!(matches!(e, Err(Error::Preflight(_))), "{e:?}");
    let e = crate::lab::preflight::check_lab(&LabSpec::article(Encapsulation::Ipip));
    assert!(
        matches!(e, Err(Error::Preflight(ref m)) if m.contains("ipip")),
        "{e:?}"
    );
}

#[test]
fn preflight_passes_here_for_none_and_vxlan() -> TestResult {
    crate::lab::preflight::check_lab(&LabSpec::article(Encapsulation::None))?;
    crate::lab::preflight::check_lab(&LabSpec::article(Encapsulation::Vxlan))?;
    Ok(())
}

#[test]
fn async_build_and_teardown() -> TestResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let lab = Lab::build(&LabSpec::article(Encapsulation::None), &run_id("async")).await?;
        let pids = lab.holder_pids();
        let inodes = lab_ids(&lab)?;
        lab.teardown().await?;
        assert!(pids.iter().all(|p| holder_gone(*p)));
        assert!(wait_all_gone(&[], &inodes, Duration::from_secs(5)));
        Ok(())
    })
}

const HELPER_ENV: &str = "CALICO_LAB_SIGKILL_HELPER";

/// Run by [`sigkill_leaves_nothing`] in a child process: builds a lab, prints its container
/// holders' pids, its namespaces' inodes and worker-1's path, and waits to be killed.
#[test]
#[ignore = "helper: run by sigkill_leaves_nothing in a child process"]
fn sigkill_helper() -> TestResult {
    if std::env::var_os(HELPER_ENV).is_none() {
        return Ok(());
    }
    let lab = Lab::build_blocking(&LabSpec::article(Encapsulation::Vxlan), &run_id("sigkill"))?;
    let pids: Vec<String> = lab.holder_pids().iter().map(u32::to_string).collect();
    let inodes: Vec<String> = lab_ids(&lab)?
        .iter()
        .map(|(ino, cookie)| format!("{ino}:{cookie}"))
        .collect();
    println!(
        "HOLDERS {} NAMESPACES {} WORKER1 {} POD {}",
        pids.join(" "),
        inodes.join(" "),
        lab.topology.nodes[0].netns.display(),
        lab.topology.pods[0].netns.display()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    std::thread::sleep(Duration::from_secs(120));
    Ok(())
}

#[test]
fn sigkill_leaves_nothing() -> TestResult {
    use std::io::BufRead;
    let before = own_links();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "lab::tests::sigkill_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (mut pids, mut inodes) = (Vec::new(), Vec::new());
    let (mut worker1, mut pod) = (PathBuf::new(), PathBuf::new());
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        // libtest prints "test ... " before the helper's own output, on the same line.
        let Some(rest) = line.split("HOLDERS ").nth(1) else {
            continue;
        };
        let (holders, rest) = rest.split_once(" NAMESPACES ").unwrap_or((rest, ""));
        let (namespaces, rest) = rest.split_once(" WORKER1 ").unwrap_or((rest, ""));
        let (path, pod_path) = rest.split_once(" POD ").unwrap_or((rest, ""));
        pids = holders
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .collect();
        inodes = namespaces
            .split_whitespace()
            .filter_map(|p| {
                let (ino, cookie) = p.split_once(':')?;
                Some((ino.parse::<u64>().ok()?, cookie.parse::<u64>().ok()?))
            })
            .collect();
        worker1 = PathBuf::from(path.trim());
        pod = PathBuf::from(pod_path.trim());
        break;
    }
    assert_eq!(
        pids.len(),
        3,
        "the helper did not report its container holders"
    );
    assert_eq!(inodes.len(), 5, "the helper did not report its namespaces");
    assert!(
        pids.iter().all(|p| !holder_gone(*p)),
        "holders not alive before the kill"
    );
    // Positive control: the child's namespaces are alive, referenced, and reachable from
    // another process through the path the topology hands out.
    // A pod's path is a descriptor of the child; a node's, a thread of the child.
    assert!(
        pod.starts_with(format!("/proc/{}/fd", child.id())),
        "{}",
        pod.display()
    );
    let anchor = worker1
        .iter()
        .nth(2)
        .and_then(|t| t.to_str())
        .ok_or(format!("{}", worker1.display()))?;
    assert!(
        Path::new(&format!("/proc/{}/task/{anchor}", child.id())).exists(),
        "{} is not a thread of the child",
        worker1.display()
    );
    assert_eq!(netns::identity(&worker1)?.1, inodes[0].0);
    assert_eq!(cookie(&worker1), Some(inodes[0].1));
    assert_eq!(cookie(&pod), Some(inodes[2].1));
    let links = json_in(&worker1, "ip", &["-j", "link", "show", UNDERLAY])?;
    assert_eq!(
        links.len(),
        1,
        "no {UNDERLAY} in the child's worker-1: {links:?}"
    );
    assert_eq!(
        referenced(&inodes).len(),
        inodes.len(),
        "the scan does not see the child's namespaces"
    );
    child.kill()?; // SIGKILL: no destructor, no signal handler runs
    child.wait()?;
    assert!(
        wait_all_gone(&pids, &inodes, Duration::from_secs(5)),
        "namespaces outlived a SIGKILLed run: still referenced {:?}",
        referenced(&inodes)
    );
    assert!(
        netns::identity(&worker1).is_err() && netns::identity(&pod).is_err(),
        "the child's paths still resolve"
    );
    assert_eq!(own_links(), before, "the machine's own links changed");
    Ok(())
}

/// The dual-stack lab: each pod's IPv6 /128 and its default route via the host end's
/// link-local address (EUI-64 of ee:ee:ee:ee:ee:ee, present without DAD), the host end's IPv6
/// sysctls, the /128 host routes, the IPv6 blackholes and the route to the other node's block;
/// and IPv6 traffic really flows (`ping -6`, inside the lab) same node and across nodes, hop
/// limit 63 and 62.
#[test]
fn builds_the_article_dual_stack() -> TestResult {
    let before = own_links();
    let lab = Lab::build_blocking(&LabSpec::dual_stack(Encapsulation::None), &run_id("ds"))?;
    let (w1, _w2) = check_common(&lab, 1500)?;
    let pod = |name: &str| {
        (lab.topology.pods.iter().find(|p| p.name == name)).ok_or(format!("no pod {name}"))
    };
    let (client, server, remote) = (
        pod("test-tools")?,
        pod("c2c-network-demo")?,
        pod("test-tools-remote")?,
    );
    let client6 = client.ipv6.ok_or("test-tools has no IPv6")?;
    assert_eq!(client6.to_string(), "fd00:10:244::1:c");
    let addrs = json_in(
        &client.netns,
        "ip",
        &["-j", "-6", "addr", "show", "dev", "eth0"],
    )?;
    let globals: Vec<String> = addrs[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or("?"), a["prefixlen"]))
        .collect();
    assert_eq!(globals, vec!["fd00:10:244::1:c/128".to_string()]);
    let routes = json_in(&client.netns, "ip", &["-j", "-6", "route", "show"])?;
    let default = route(&routes, "default").ok_or("no IPv6 default route in the pod")?;
    assert_eq!(default["gateway"], "fe80::ecee:eeff:feee:eeee");
    assert_eq!(default["dev"], "eth0");
    assert_eq!(
        sysctl_in(&client.netns, "/proc/sys/net/ipv6/conf/eth0/accept_dad")?,
        "0"
    );
    let cali = crate::calico::host_end_name("default", "test-tools");
    for (leaf, want) in [
        ("proxy_ndp", "1"),
        ("forwarding", "1"),
        ("accept_dad", "0"),
        ("disable_ipv6", "0"),
    ] {
        let got = sysctl_in(&w1, &format!("/proc/sys/net/ipv6/conf/{cali}/{leaf}"))?;
        assert_eq!(got, want, "{cali} {leaf}");
    }
    let routes = json_in(&w1, "ip", &["-j", "-6", "route", "show"])?;
    let r = route(&routes, "fd00:10:244::1:c").ok_or("no /128 host route")?;
    assert_eq!(r["dev"], cali.as_str());
    let r = route(&routes, "fd00:10:244::1:0/122").ok_or("no IPv6 blackhole")?;
    assert_eq!(r["type"], "blackhole");
    let r = route(&routes, "fd00:10:244::2:0/122").ok_or("no route to worker-2's IPv6 block")?;
    assert_eq!(r["gateway"], "fd00:10:12::3");
    for (to, hlim) in [(server, "63"), (remote, "62")] {
        let to6 = to.ipv6.ok_or("no IPv6")?.to_string();
        let out = match run_in(&client.netns, "ping", &["-6", "-c", "1", "-W", "2", &to6]) {
            Ok(o) => o,
            Err(e) => {
                for n in &lab.topology.nodes {
                    eprintln!("{}: {:?}", n.name, run_in(&n.netns, "ip", &["-6", "route"]));
                    eprintln!("{}: {:?}", n.name, run_in(&n.netns, "ip", &["-6", "neigh"]));
                    eprintln!("{}: {:?}", n.name, run_in(&n.netns, "ip", &["-6", "addr"]));
                    eprintln!(
                        "{}: {:?}",
                        n.name,
                        run_in(
                            &n.netns,
                            "sysctl",
                            &[
                                "net.ipv6.conf.all.forwarding",
                                "net.ipv6.conf.ens192.forwarding"
                            ]
                        )
                    );
                }
                eprintln!(
                    "remote: {:?}",
                    run_in(&remote.netns, "ip", &["-6", "route"])
                );
                eprintln!("remote: {:?}", run_in(&remote.netns, "ip", &["-6", "addr"]));
                return Err(e.into());
            }
        };
        assert!(
            out.contains(&format!("ttl={hlim}")) || out.contains(&format!("hlim={hlim}")),
            "ping -6 {to6}: {out}"
        );
    }
    drop(lab);
    assert_eq!(own_links(), before, "the machine's own links changed");
    Ok(())
}
