//! Lab bring-up + teardown of ONE node with N extra pods (plus the article's two pods on that
//! node), in-process (`Lab::build_blocking`) against the same node built by a plain
//! `ip -batch` script (`ip netns add`, veths, addresses, routes, `sysctl -w`), in the same run.
//!
//! Run: `cargo bench --bench lab_build` (root). Iterations: `LAB_BENCH_ITERS` (default 7).
//! Prints a markdown table. The script's namespaces have unique names
//! (`calico-bench-<pid>-<iter>-...`) and are always deleted, also when a step fails.

use calico_conformance::facts::Encapsulation;
use calico_conformance::lab::{Lab, LabSpec};
use calico_conformance::topology::Topology;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [1, 10, 110, 250];

fn spec(extra: usize) -> LabSpec {
    LabSpec {
        encapsulation: Encapsulation::None,
        extra_pods_per_node: extra,
        nodes: 1,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Runs `ip <args>` with `input` as its batch on stdin; fails on a non-zero exit.
fn ip_batch(args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(args)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("ip {args:?}: writing the batch: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The script's namespaces; deleted on drop whatever happened.
struct ScriptNamespaces {
    names: Vec<String>,
    deleted: bool,
}

impl ScriptNamespaces {
    fn delete(&mut self) -> Result<(), String> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        let batch: String = self
            .names
            .iter()
            .map(|n| format!("netns del {n}\n"))
            .collect();
        ip_batch(&[], &batch)
    }
}

impl Drop for ScriptNamespaces {
    fn drop(&mut self) {
        if !self.deleted {
            // One by one, so one missing name does not stop the rest.
            for n in &self.names {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
            }
        }
    }
}

/// The same node as the lab's, built by an `ip -batch` script: namespaces, the node's links,
/// addresses and routes in one batch, its sysctls in one `sysctl -w`, one batch per pod.
fn script_build_and_teardown(topo: &Topology, tag: &str) -> Result<(), String> {
    let node = topo.nodes.first().ok_or("no node")?;
    let node_ns = format!("calico-bench-{tag}-node");
    let pod_ns: Vec<String> = (0..topo.pods.len())
        .map(|i| format!("calico-bench-{tag}-pod{i}"))
        .collect();
    let mut guard = ScriptNamespaces {
        names: std::iter::once(node_ns.clone())
            .chain(pod_ns.iter().cloned())
            .collect(),
        deleted: false,
    };
    let add: String = guard
        .names
        .iter()
        .map(|n| format!("netns add {n}\n"))
        .collect();
    ip_batch(&[], &add)?;

    let mut b = String::new();
    b += "link set lo up\n";
    b += "link add ens192 mtu 1500 type veth peer name ens192-wire mtu 1500\n";
    b += "link set ens192 up\nlink set ens192-wire up\n";
    b += &format!("addr add {}/16 dev ens192\n", node.address);
    let mut sysctls = vec!["net.ipv4.ip_forward=1".to_string()];
    for (p, ns) in topo.pods.iter().zip(&pod_ns) {
        let cali = calico_conformance::calico::host_end_name(&p.namespace, &p.name);
        b += &format!(
            "link add {cali} mtu 1500 address ee:ee:ee:ee:ee:ee type veth peer name eth0 mtu 1500 netns {ns}\n"
        );
        b += &format!("link set {cali} up\n");
        b += &format!("route add {}/32 dev {cali} scope link\n", p.ip);
        for (k, v) in [
            ("conf", "rp_filter=1"),
            ("conf", "route_localnet=1"),
            ("conf", "proxy_arp=1"),
            ("neigh", "proxy_delay=0"),
            ("conf", "forwarding=1"),
        ] {
            sysctls.push(format!("net.ipv4.{k}.{cali}.{v}"));
        }
    }
    for blk in &node.blocks {
        b += &format!("route add blackhole {blk}\n");
    }
    ip_batch(&["-n", &node_ns], &b)?;

    let out = Command::new("ip")
        .args(["netns", "exec", &node_ns, "sysctl", "-q", "-w"])
        .args(&sysctls)
        .output()
        .map_err(|e| format!("sysctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sysctl: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }

    for (p, ns) in topo.pods.iter().zip(&pod_ns) {
        let pb = format!(
            "link set lo up\nlink set eth0 up\naddr add {}/32 dev eth0\n\
             route add 169.254.1.1 dev eth0 scope link\n\
             route add default via 169.254.1.1 dev eth0\n",
            p.ip
        );
        ip_batch(&["-n", ns], &pb)?;
    }
    guard.delete()
}

fn main() {
    if let Err(e) = calico_conformance::preflight::check_lab(&spec(0)) {
        eprintln!("lab_build: {e}");
        std::process::exit(1);
    }
    let iters: usize = std::env::var("LAB_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let pid = std::process::id();
    println!(
        "| extra pods (+2 article pods) | in-process build (median) | in-process build + teardown (median) | per pod | `ip -batch` build + teardown (median) | per pod | ip -batch / in-process |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in SIZES {
        let pods = (n + 2) as u32;
        // The script builds exactly what the lab builds: take the plan from one lab.
        let topo = match Lab::build_blocking(&spec(n), &format!("bench-{pid}-plan")) {
            Ok(lab) => lab.topology.clone(),
            Err(e) => {
                eprintln!("lab_build: {e}");
                std::process::exit(1);
            }
        };
        let (mut build, mut lab_total, mut script) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iters {
            let start = Instant::now();
            let lab = match Lab::build_blocking(&spec(n), &format!("bench-{pid}-{n}-{i}")) {
                Ok(lab) => lab,
                Err(e) => {
                    eprintln!("lab_build: {e}");
                    std::process::exit(1);
                }
            };
            build.push(start.elapsed());
            if let Err(e) = lab.teardown_blocking() {
                eprintln!("lab_build: teardown: {e}");
                std::process::exit(1);
            }
            lab_total.push(start.elapsed());

            let start = Instant::now();
            if let Err(e) = script_build_and_teardown(&topo, &format!("{pid}-{n}-{i}")) {
                eprintln!("lab_build: ip -batch script: {e}");
                std::process::exit(1);
            }
            script.push(start.elapsed());
        }
        let (b, l, s) = (median(build), median(lab_total), median(script));
        println!(
            "| {n} | {} | {} | {} | {} | {} | {:.1}x |",
            ms(b),
            ms(l),
            ms(l / pods),
            ms(s),
            ms(s / pods),
            s.as_secs_f64() / l.as_secs_f64().max(1e-9)
        );
    }
    println!();
    println!(
        "{iters} iterations per size, interleaved (lab, then script); one node, encapsulation None."
    );
}
