//! Lab bring-up + teardown of ONE node with N extra pods (plus the article's two pods on that
//! node), in-process (`Lab::build_blocking`) against the same node built by a plain
//! `ip -batch` script (`ip netns add`, veths, addresses, routes, `sysctl -w`), in the same run.
//!
//! Run: `cargo bench --bench lab_build` (root). Iterations: `LAB_BENCH_ITERS` (default 7).
//! Prints a markdown table, then the dual-stack row (the same node IPv4 only and dual stack). The script's namespaces have unique names
//! (`calico-bench-<pid>-<iter>-...`) and are always deleted, also when a step fails.
//!
//! Neither side waits for the kernel to free what it tore down: closing the lab's namespace
//! descriptors and `ip netns del` both return while a kernel worker still unregisters the
//! devices and frees the namespaces (100-200 ms of work at 110 pods). Left alone, that work
//! lands in whichever measurement comes next. So every measurement starts on a quiet machine
//! (the bench waits until the whole machine's CPU time stays under 10 % of one CPU for a
//! window), and beside the wall times the table gives the whole machine's CPU time for each
//! cycle — build, teardown and the kernel's freeing, until the machine is quiet again — with
//! its own ratio.

use calico_conformance::facts::Encapsulation;
use calico_conformance::lab::{Lab, LabSpec};
use calico_conformance::topology::Topology;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [1, 10, 110, 250];
/// How long the bench waits for a quiet machine before it gives up and measures anyway.
const QUIET_DEADLINE: Duration = Duration::from_secs(5);

/// CPU time the whole machine has spent busy (every CPU, every task, kernel workers included).
#[derive(Clone, Copy)]
enum CpuMeter {
    /// cgroup v1's root `cpuacct.usage`: nanoseconds, exact.
    CpuacctV1,
    /// cgroup v2's root `cpu.stat` `usage_usec` (tick-based on most kernels).
    CgroupV2,
    /// `/proc/stat`'s first line, non-idle fields, in clock ticks.
    ProcStat,
}

impl CpuMeter {
    fn pick() -> CpuMeter {
        if CpuMeter::CpuacctV1.busy().is_some() {
            CpuMeter::CpuacctV1
        } else if CpuMeter::CgroupV2.busy().is_some() {
            CpuMeter::CgroupV2
        } else {
            CpuMeter::ProcStat
        }
    }

    /// Busy time so far, or `None` when the source is unreadable.
    fn busy(self) -> Option<Duration> {
        match self {
            CpuMeter::CpuacctV1 => {
                let s = std::fs::read_to_string("/sys/fs/cgroup/cpuacct/cpuacct.usage").ok()?;
                Some(Duration::from_nanos(s.trim().parse().ok()?))
            }
            CpuMeter::CgroupV2 => {
                let s = std::fs::read_to_string("/sys/fs/cgroup/cpu.stat").ok()?;
                let usec = s
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))?
                    .trim()
                    .parse()
                    .ok()?;
                Some(Duration::from_micros(usec))
            }
            CpuMeter::ProcStat => {
                let s = std::fs::read_to_string("/proc/stat").ok()?;
                let fields: Vec<u64> = s
                    .lines()
                    .next()?
                    .split_whitespace()
                    .skip(1)
                    .map(|f| f.parse().ok())
                    .collect::<Option<_>>()?;
                // user nice system idle iowait irq softirq steal (guest is inside user).
                let busy: u64 = [0, 1, 2, 5, 6, 7]
                    .iter()
                    .filter_map(|i| fields.get(*i))
                    .sum();
                let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                    .ok()
                    .flatten()
                    .unwrap_or(1)
                    .max(1) as u64;
                Some(Duration::from_nanos(
                    busy.saturating_mul(1_000_000_000 / hz),
                ))
            }
        }
    }

    /// The window over which "quiet" is judged: long enough for several of the source's ticks.
    fn window(self) -> Duration {
        match self {
            CpuMeter::CpuacctV1 => Duration::from_millis(20),
            CpuMeter::CgroupV2 | CpuMeter::ProcStat => Duration::from_millis(100),
        }
    }

    /// Waits until one window's busy time is under 10 % of one CPU (or a tick, for a
    /// tick-based source). Returns the machine's busy time when that quiet window began, or
    /// `None` when the machine did not get quiet within [`QUIET_DEADLINE`] (or the source
    /// became unreadable).
    fn wait_quiet(self) -> Option<Duration> {
        let start = Instant::now();
        let window = self.window();
        let allowed = match self {
            CpuMeter::CpuacctV1 => window / 10,
            CpuMeter::CgroupV2 | CpuMeter::ProcStat => window / 10 + Duration::from_millis(1),
        };
        while start.elapsed() < QUIET_DEADLINE {
            let before = self.busy()?;
            std::thread::sleep(window);
            let after = self.busy()?;
            if after.saturating_sub(before) <= allowed {
                return Some(before);
            }
        }
        None
    }

    fn name(self) -> &'static str {
        match self {
            CpuMeter::CpuacctV1 => "cgroup v1 cpuacct.usage",
            CpuMeter::CgroupV2 => "cgroup v2 cpu.stat",
            CpuMeter::ProcStat => "/proc/stat",
        }
    }
}

fn spec(extra: usize) -> LabSpec {
    LabSpec {
        encapsulation: Encapsulation::None,
        extra_pods_per_node: extra,
        nodes: 1,
        ..LabSpec::default()
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
    b += "link add ens192 mtu 1500 numtxqueues 1 numrxqueues 1 \
          type veth peer name ens192-wire mtu 1500 numtxqueues 1 numrxqueues 1\n";
    b += "link set ens192 up\nlink set ens192-wire up\n";
    b += &format!("addr add {}/16 dev ens192\n", node.address);
    let rp_filter = calico_conformance::lab::NODE_RP_FILTER;
    let mut sysctls = vec![
        "net.ipv4.ip_forward=1".to_string(),
        format!("net.ipv4.conf.all.rp_filter={rp_filter}"),
        format!("net.ipv4.conf.default.rp_filter={rp_filter}"),
    ];
    for (p, ns) in topo.pods.iter().zip(&pod_ns) {
        let cali = calico_conformance::calico::host_end_name(&p.namespace, &p.name);
        b += &format!(
            "link add {cali} mtu 1500 numtxqueues 1 numrxqueues 1 address ee:ee:ee:ee:ee:ee \
             type veth peer name eth0 mtu 1500 numtxqueues 1 numrxqueues 1 netns {ns}\n"
        );
        b += &format!("link set {cali} up\n");
        b += &format!("route add {}/32 dev {cali} scope link\n", p.ip);
        // What the lab writes (Felix's list), in one `sysctl -w`.
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            sysctls.push(format!("net.ipv6.conf.{cali}.accept_ra=0"));
        }
        for (k, v) in [
            ("conf", "route_localnet=1".to_string()),
            ("neigh", "proxy_delay=0".to_string()),
            ("conf", "proxy_arp=1".to_string()),
            ("conf", "forwarding=1".to_string()),
            ("conf", format!("rp_filter={rp_filter}")),
        ] {
            sysctls.push(format!("net.ipv4.{k}.{cali}.{v}"));
        }
    }
    b += "route add default via 10.12.0.1 dev ens192\n";
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
    if let Err(e) = calico_conformance::lab::preflight::check_lab(&spec(0)) {
        eprintln!("lab_build: {e}");
        std::process::exit(1);
    }
    let iters: usize = std::env::var("LAB_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let pid = std::process::id();
    let meter = CpuMeter::pick();
    let mut never_quiet = 0usize;
    let mut settle = || {
        if meter.wait_quiet().is_none() {
            never_quiet += 1;
        }
    };
    // The machine's CPU time from `from` until it is quiet again after the teardown: the
    // build, the teardown and the kernel's freeing, whichever CPU ran them.
    let cycle_cpu = |from: Option<Duration>| -> Option<Duration> {
        let busy_then = meter.wait_quiet()?;
        Some(busy_then.saturating_sub(from?))
    };
    println!(
        "| extra pods (+2 article pods) | in-process build | in-process build + teardown | per pod | `ip -batch` build + teardown | per pod | ip -batch / in-process | machine CPU per cycle, freeing included: in-process, `ip -batch` | ratio of CPU |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
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
        let (mut lab_cpu, mut script_cpu) = (Vec::new(), Vec::new());
        for i in 0..iters {
            settle();
            let cpu0 = meter.busy();
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
            lab_cpu.push(cycle_cpu(cpu0));

            settle();
            let cpu0 = meter.busy();
            let start = Instant::now();
            if let Err(e) = script_build_and_teardown(&topo, &format!("{pid}-{n}-{i}")) {
                eprintln!("lab_build: ip -batch script: {e}");
                std::process::exit(1);
            }
            script.push(start.elapsed());
            script_cpu.push(cycle_cpu(cpu0));
        }
        let (b, l, s) = (median(build), median(lab_total), median(script));
        let (lc, sc) = (median_known(lab_cpu), median_known(script_cpu));
        let cpu_ratio = match (lc, sc) {
            (Some(lc), Some(sc)) => {
                format!("{:.1}x", sc.as_secs_f64() / lc.as_secs_f64().max(1e-9))
            }
            _ => "n/a".to_string(),
        };
        let show = |d: Option<Duration>| d.map(ms).unwrap_or_else(|| "n/a".into());
        println!(
            "| {n} | {} | {} | {} | {} | {} | {:.1}x | {}, {} | {} |",
            ms(b),
            ms(l),
            ms(l / pods),
            ms(s),
            ms(s / pods),
            s.as_secs_f64() / l.as_secs_f64().max(1e-9),
            show(lc),
            show(sc),
            cpu_ratio
        );
    }
    println!();
    println!(
        "{iters} iterations per size, interleaved (lab, then script), each started on a quiet \
         machine; medians; one node, encapsulation None. CPU time read from {} (quiet: under \
         10 % of one CPU for {} ms).",
        meter.name(),
        meter.window().as_millis()
    );
    if never_quiet > 0 {
        println!(
            "The machine was not quiet within {} s before {never_quiet} measurement(s): other \
             work may have run alongside them.",
            QUIET_DEADLINE.as_secs()
        );
    }
    println!();
    dual_stack_table(iters, pid, meter);
}

/// The dual-stack row: the same node, IPv4 only and dual stack (an IPv6 /128 per pod, proxy
/// NDP, /128 host routes, IPv6 blackholes), build + teardown interleaved, each on a quiet
/// machine; the standard is dual stack within 1.5x of IPv4 for the same pod count.
fn dual_stack_table(iters: usize, pid: u32, meter: CpuMeter) {
    println!(
        "| extra pods (+2 article pods) | IPv4 build + teardown | dual stack build + teardown | dual stack / IPv4 |"
    );
    println!("|---:|---:|---:|---:|");
    let cycle = |spec: &LabSpec, tag: String| -> Duration {
        meter.wait_quiet();
        let start = Instant::now();
        match Lab::build_blocking(spec, &tag).and_then(|lab| lab.teardown_blocking()) {
            Ok(()) => start.elapsed(),
            Err(e) => {
                eprintln!("lab_build: {tag}: {e}");
                std::process::exit(1);
            }
        }
    };
    for n in [10, 110] {
        let dual = LabSpec {
            dual_stack: true,
            ..spec(n)
        };
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for i in 0..iters {
            v4.push(cycle(&spec(n), format!("bench-{pid}-v4-{n}-{i}")));
            v6.push(cycle(&dual, format!("bench-{pid}-ds-{n}-{i}")));
        }
        let (a, b) = (median(v4), median(v6));
        println!(
            "| {n} | {} | {} | {:.2}x |",
            ms(a),
            ms(b),
            b.as_secs_f64() / a.as_secs_f64().max(1e-9)
        );
    }
    println!();
    println!(
        "{iters} iterations per size, interleaved (IPv4, then dual stack); medians; one node."
    );
}

/// The median, or `None` when any measurement is unknown (the machine never got quiet).
fn median_known(v: Vec<Option<Duration>>) -> Option<Duration> {
    v.into_iter().collect::<Option<Vec<_>>>().map(median)
}
