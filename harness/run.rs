//! A run: its id, and where its evidence goes.
//!
//! Everything a run creates carries its id: the kube namespace and labels, evidence folders.
//! (Lab namespaces have no names at all: they are held by descriptors and parked threads of the run's own
//! process, and container namespaces by its `cat` children.)

use std::path::{Path, PathBuf};
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

/// Writes `text` to `path` whole: to a temporary file beside it (named after this process),
/// then renamed over it, so a reader never sees half a file.
pub fn write_whole(path: &Path, text: &str) -> crate::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| crate::Error::File {
            path: path.to_path_buf(),
            problem: format!("writing it (through {}): {e}", tmp.display()),
        })
}

/// Takes an exclusive `flock` on `path` (created if missing, with its folder), waiting at most
/// `deadline` for another process to release it. Blocking: call it off the async runtime's
/// worker threads for long waits. The lock goes with the returned file.
pub fn lock_exclusive(
    path: &Path,
    deadline: std::time::Duration,
) -> crate::Result<nix::fcntl::Flock<std::fs::File>> {
    lock_file(path, true, deadline)
}

/// [`lock_exclusive`], or a shared lock when `exclusive` is false (many holders at once, none
/// while an exclusive one is held).
pub fn lock_file(
    path: &Path,
    exclusive: bool,
    deadline: std::time::Duration,
) -> crate::Result<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let at_fault = |problem: String| crate::Error::File {
        path: path.to_path_buf(),
        problem,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| at_fault(format!("creating its folder: {e}")))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| at_fault(format!("opening it to lock: {e}")))?;
    let started = std::time::Instant::now();
    loop {
        let how = if exclusive {
            FlockArg::LockExclusiveNonblock
        } else {
            FlockArg::LockSharedNonblock
        };
        match Flock::lock(file, how) {
            Ok(locked) => return Ok(locked),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if started.elapsed() < deadline => {
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err((_, e)) => {
                return Err(at_fault(format!(
                    "locking it (waited {:.1} s for another process of this run): {e}",
                    started.elapsed().as_secs_f64()
                )));
            }
        }
    }
}

/// Holds the run's cross-process state lock (see [`lock_state`]).
pub type StateLock = Option<nix::fcntl::Flock<std::fs::File>>;

/// Between the processes of a shared run (cargo-nextest), what the target's in-process
/// `state_lock` is within one: claims that change shared state (flush a pod's neighbour table)
/// take it exclusively, all others shared, so no process's claim sees another's change. `None`
/// when this process runs alone.
pub async fn lock_state(
    exclusive: bool,
    deadline: std::time::Duration,
) -> crate::Result<StateLock> {
    if !shared_with_other_processes() {
        return Ok(None);
    }
    let path = evidence_root().join("state.lock");
    tokio::task::spawn_blocking(move || lock_file(&path, exclusive, deadline))
        .await
        .map_err(|e| crate::Error::Internal(format!("waiting for the run's state lock: {e}")))?
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Shared holders coexist; an exclusive one waits for them, and gives up at its deadline
    /// with an error naming the file. (flock conflicts between open files, also in one process.)
    #[test]
    fn shared_locks_coexist_and_an_exclusive_one_waits_for_them_until_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.lock");
        let a = lock_file(&path, false, Duration::from_secs(1)).unwrap();
        let b = lock_file(&path, false, Duration::from_millis(50)).unwrap();
        let started = Instant::now();
        let e = lock_exclusive(&path, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(e.contains("state.lock") && e.contains("waited"), "{e}");
        drop((a, b));
        let x = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        assert!(lock_file(&path, false, Duration::from_millis(50)).is_err());
        drop(x);
    }
}
