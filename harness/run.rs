//! A run: its id, and where its evidence goes.
//!
//! Everything a run creates carries its id: the kube namespace and labels, evidence folders.
//! (Lab namespaces have no names at all: they are held by the run's child processes.)

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// This process's run id: `<unix seconds in hex>-<pid in hex>`, unique per machine and short
/// enough for a Kubernetes namespace name.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        format!("{secs:x}-{:x}", std::process::id())
    })
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
