//! Lab tests. They build real namespaces, so they need root (this machine and CI are root).
//! Checks are made with `ip -j` / `bridge -j` / `cat /proc/sys/...` run inside the lab's
//! namespaces through [`crate::netns::command_in`]; no traffic is sent (other code does that).

use super::*;
use crate::netns;
use serde_json::Value;
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

fn wait_all_gone(pids: &[u32], deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if pids.iter().all(|p| holder_gone(*p)) {
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
            (format!("/proc/sys/net/ipv4/conf/{cali}/rp_filter"), "1"),
        ] {
            assert_eq!(sysctl_in(&w1, &file)?, want, "{file}");
        }
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
    assert_eq!(pids.len(), 2 + 3 + 3, "nodes + pods + containers");
    drop(lab);
    assert!(
        pids.iter().all(|p| holder_gone(*p)),
        "holders remain after drop"
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
    lab.teardown_blocking()?;
    assert!(
        pids.iter().all(|p| holder_gone(*p)),
        "holders remain after teardown"
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
    let e = crate::preflight::check_lab(&LabSpec::article(Encapsulation::Ipip));
    assert!(
        matches!(e, Err(Error::Preflight(ref m)) if m.contains("ipip")),
        "{e:?}"
    );
}

#[test]
fn preflight_passes_here_for_none_and_vxlan() -> TestResult {
    crate::preflight::check_lab(&LabSpec::article(Encapsulation::None))?;
    crate::preflight::check_lab(&LabSpec::article(Encapsulation::Vxlan))?;
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
        lab.teardown().await?;
        assert!(pids.iter().all(|p| holder_gone(*p)));
        Ok(())
    })
}

const HELPER_ENV: &str = "CALICO_LAB_SIGKILL_HELPER";

/// Run by [`sigkill_leaves_nothing`] in a child process: builds a lab, prints its holder
/// pids, and waits to be killed.
#[test]
#[ignore = "helper: run by sigkill_leaves_nothing in a child process"]
fn sigkill_helper() -> TestResult {
    if std::env::var_os(HELPER_ENV).is_none() {
        return Ok(());
    }
    let lab = Lab::build_blocking(&LabSpec::article(Encapsulation::Vxlan), &run_id("sigkill"))?;
    let pids: Vec<String> = lab.holder_pids().iter().map(u32::to_string).collect();
    println!("HOLDERS {}", pids.join(" "));
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
    let mut pids = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        // libtest prints "test ... " before the helper's own output, on the same line.
        if let Some(rest) = line.split("HOLDERS ").nth(1) {
            pids = rest
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect();
            break;
        }
    }
    assert_eq!(pids.len(), 8, "the helper did not report its holders");
    assert!(
        pids.iter().all(|p| !holder_gone(*p)),
        "holders not alive before the kill"
    );
    child.kill()?; // SIGKILL: no destructor, no signal handler runs
    child.wait()?;
    assert!(
        wait_all_gone(&pids, Duration::from_secs(5)),
        "namespaces outlived a SIGKILLed run"
    );
    assert_eq!(own_links(), before, "the machine's own links changed");
    Ok(())
}
