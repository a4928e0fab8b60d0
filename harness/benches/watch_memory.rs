//! The watch's memory over an hour: an hour of probes at 100 ms on 6 pairs × 3 kinds (36 000
//! ticks × 18 = 648 000 probes, a 2 s gap of every kind every 5 minutes on every pair) fed,
//! without sleeping, through the recorder `watch` uses (`watch::Recorder`: the counters, the
//! gaps, and `probes.jsonl` streamed to `target/watch-memory-bench/`).
//!
//! Run: `cargo bench --bench watch_memory`. Repeats: `WATCH_BENCH_RUNS` (default 3), each in a
//! fresh process (this bench re-run with `--one`), so each starts from the same memory and
//! its peak is its own. Measures the resident memory (`VmRSS`, and the peak `VmHWM`, from
//! `/proc/self/status`) after the recorder is made, after 6 simulated minutes and after 60;
//! prints the medians and the ratio of the growths. Fails (exit 1) when the hour grew the
//! memory by 50 MB or more, or when the 60 minutes grew it by more than twice the 6 minutes
//! plus 1 MB (the allocator's and the page size's slack): memory must stay flat.

use calico_conformance::watch::{KINDS, Kind, PROBES_FILE, Pair, Probe, Recorder};
use std::process::ExitCode;
use std::time::Instant;

const PAIRS: usize = 6;
/// An hour at 100 ms.
const TICKS: u64 = 36_000;
/// 6 minutes at 100 ms.
const TICKS_6_MIN: u64 = 3_600;
/// A gap every 5 minutes (3000 ticks), 2 s long (20 ticks).
const GAP_EVERY: u64 = 3_000;
const GAP_TICKS: u64 = 20;
const LIMIT_KB: u64 = 50 * 1024;
const SLACK_KB: u64 = 1024;

/// `VmRSS` and `VmHWM` of this process, in kB.
fn memory_kb() -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    let field = |name: &str| {
        (status.lines())
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("/proc/self/status: no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// One measurement: (start, after 6 min, after 60 min, peak) in kB; seconds taken; bytes of
/// probes.jsonl.
struct One {
    start: u64,
    six: u64,
    sixty: u64,
    peak: u64,
    seconds: f64,
    log_bytes: u64,
}

/// The hour, in this process.
fn one() -> Result<One, String> {
    let dir = calico_conformance::run::target_dir().join("watch-memory-bench");
    let path = dir.join(format!("{}.{}", std::process::id(), PROBES_FILE));
    let pairs: Vec<Pair> = (0..PAIRS)
        .map(|i| Pair {
            from: format!("probe-{i}"),
            to: "c2c-network-demo".into(),
            across_nodes: i % 2 == 1,
        })
        .collect();
    let mut rec = Recorder::create(&path, pairs).map_err(|e| e.to_string())?;
    let (start, _) = memory_kb()?;
    let mut six = 0;
    let mut noise: u64 = 0x2545_f491_4f6c_dd1d;
    let t0 = Instant::now();
    for tick in 0..TICKS {
        if tick == TICKS_6_MIN {
            six = memory_kb()?.0;
        }
        let lost = tick % GAP_EVERY >= GAP_EVERY - GAP_TICKS;
        for index in 0..PAIRS {
            for kind in KINDS {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                let rtt = 0.15 + (noise % 1000) as f64 / 2000.0;
                let probe = Probe {
                    kind,
                    seq: tick,
                    sent_ms: tick as f64 * 100.0 + (noise % 7) as f64 / 10.0,
                    rtt_ms: (!lost).then_some(rtt),
                    error: lost.then(|| "no echo reply within the interval".to_string()),
                };
                rec.record(index, &probe);
            }
        }
    }
    if let Some(e) = rec.finish() {
        return Err(e);
    }
    let seconds = t0.elapsed().as_secs_f64();
    let (sixty, peak) = memory_kb()?;
    let want = (TICKS / GAP_EVERY) as usize;
    for log in &rec.pairs {
        let gaps = log.gaps(Kind::Icmp, TICKS as f64 * 100.0);
        if gaps.len() != want || log.kind(Kind::LongConnection).sent != TICKS {
            return Err(format!("{}: {} gaps, not {want}", log.pair, gaps.len()));
        }
    }
    let log_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&path);
    Ok(One {
        start,
        six,
        sixty,
        peak,
        seconds,
        log_bytes,
    })
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Runs this bench with `--one` and reads its line.
fn child() -> Result<One, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this bench's path: {e}"))?;
    let out = std::process::Command::new(&exe)
        .arg("--one")
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("one "));
    let fields: Vec<f64> = (line.unwrap_or_default().split(' '))
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields[..] {
        [start, six, sixty, peak, seconds, log_bytes] if out.status.success() => Ok(One {
            start: start as u64,
            six: six as u64,
            sixty: sixty as u64,
            peak: peak as u64,
            seconds,
            log_bytes: log_bytes as u64,
        }),
        _ => Err(format!(
            "{} --one: {}{}",
            exe.display(),
            text,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--one") {
        return match one() {
            Ok(o) => {
                println!(
                    "one {} {} {} {} {} {}",
                    o.start, o.six, o.sixty, o.peak, o.seconds, o.log_bytes
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("watch_memory bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runs: usize = std::env::var("WATCH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut all = Vec::new();
    for _ in 0..runs {
        match child() {
            Ok(o) => all.push(o),
            Err(e) => {
                eprintln!("watch_memory bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    report(&all)
}

/// The medians, the verdict.
fn report(all: &[One]) -> ExitCode {
    let m = |f: fn(&One) -> u64| median(all.iter().map(f).collect());
    let start = m(|o| o.start);
    let grew_6 = m(|o| o.six.saturating_sub(o.start));
    let grew_60 = m(|o| o.sixty.saturating_sub(o.start));
    let peak_growth = m(|o| o.peak.saturating_sub(o.start));
    let seconds = median(all.iter().map(|o| o.seconds).collect());
    let log_mb = m(|o| o.log_bytes) as f64 / 1e6;
    let probes = TICKS * (PAIRS * KINDS.len()) as u64;
    // What the log held in memory before (one `Probe` per probe, not counting error texts).
    let kept_mb = (probes as usize * std::mem::size_of::<Probe>()) as f64 / 1e6;
    println!(
        "watch memory, an hour of probes at 100 ms on {PAIRS} pairs x 3 kinds ({probes} probes), \
         medians of {} runs:",
        all.len()
    );
    println!(
        "| resident at start | growth after 6 min | growth after 60 min | peak growth | 60/6 | time for the hour | probes.jsonl |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {start} kB | {grew_6} kB | {grew_60} kB | {peak_growth} kB | {:.2}x | {seconds:.2} s | {log_mb:.1} MB |",
        grew_60 as f64 / grew_6.max(1) as f64
    );
    println!("(kept in memory, these probes would have been at least {kept_mb:.0} MB)");
    if grew_60.max(peak_growth) >= LIMIT_KB {
        eprintln!(
            "watch_memory bench: the hour grew memory by {grew_60} kB (peak {peak_growth} kB): the limit is {LIMIT_KB} kB"
        );
        return ExitCode::FAILURE;
    }
    if grew_60 > 2 * grew_6 + SLACK_KB {
        eprintln!(
            "watch_memory bench: not flat: {grew_60} kB after 60 min, {grew_6} kB after 6 min (allowed: 2x + {SLACK_KB} kB)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
