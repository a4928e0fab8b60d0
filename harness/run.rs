//! A run: its id, and where its evidence goes.
//!
//! Everything a run creates carries its id: the kube namespace and labels, evidence folders.
//! (Lab namespaces have no names at all: they are held by the run's child processes.)

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// This process's run id: `<unix seconds in hex>-<pid in hex>`, unique per machine and short
/// enough for a Kubernetes namespace name. Under cargo-nextest, which runs every test in a
/// process of its own, all processes of one nextest run share `nx-<run>` (from
/// `NEXTEST_RUN_ID`), so on a cluster they share one deployment instead of making one each.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        if let Some(shared) = nextest_run() {
            return shared;
        }
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        format!("{secs:x}-{:x}", std::process::id())
    })
}

/// `nx-` + the first 12 hex digits of `NEXTEST_RUN_ID`, when this process is one test of a
/// cargo-nextest run.
fn nextest_run() -> Option<String> {
    let id = std::env::var("NEXTEST_RUN_ID").ok()?;
    let hex: String = id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(12)
        .collect::<String>()
        .to_lowercase();
    (!hex.is_empty()).then(|| format!("nx-{hex}"))
}

/// True when other processes share this run (cargo-nextest): a cluster deployment must then
/// outlive this process, and is removed by `cargo run -- cleanup` after the run.
pub fn shared_with_other_processes() -> bool {
    nextest_run().is_some()
}

/// `target/` of this package, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// `target/calico-conformance/<run-id>/`: this run's evidence.
pub fn evidence_root() -> PathBuf {
    target_dir().join("calico-conformance").join(run_id())
}
