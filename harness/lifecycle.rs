//! Nothing outlives a run: cleanups that must run on Ctrl-C or SIGTERM as well as at the end.
//!
//! Lab namespaces need none of this (they die with their holder processes, whatever kills the
//! run); a kube run's namespace does. Cleanups registered here run once, on the first signal,
//! and the process then exits 130 (SIGINT) or 143 (SIGTERM).

use futures::future::BoxFuture;
use std::sync::Mutex;

type Cleanup = Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

static CLEANUPS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());

/// A registered cleanup; dropping it unregisters (the normal end of a run cleans up itself).
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut c) = CLEANUPS.lock() {
            c.retain(|(id, _)| *id != self.0);
        }
    }
}

/// Registers `cleanup` to run if the run is interrupted.
pub fn on_interrupt(cleanup: Cleanup) -> Registration {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut c) = CLEANUPS.lock() {
        c.push((id, cleanup));
    }
    Registration(id)
}

/// Listens for SIGINT and SIGTERM on `rt` for as long as the guard lives.
pub struct CleanupOnSignal(tokio::task::JoinHandle<()>);

impl CleanupOnSignal {
    /// Starts listening.
    pub fn install(rt: &tokio::runtime::Runtime) -> Self {
        CleanupOnSignal(rt.spawn(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            let code = tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
            };
            eprintln!("calico-conformance: interrupted; cleaning up before exiting");
            let futures: Vec<BoxFuture<'static, ()>> = match CLEANUPS.lock() {
                Ok(c) => c.iter().map(|(_, f)| f()).collect(),
                Err(_) => Vec::new(),
            };
            let all = futures::future::join_all(futures);
            if tokio::time::timeout(std::time::Duration::from_secs(60), all).await.is_err() {
                eprintln!("calico-conformance: cleanup did not finish within 60 s; run `cargo run -- cleanup`");
            }
            std::process::exit(code);
        }))
    }
}

impl Drop for CleanupOnSignal {
    fn drop(&mut self) {
        self.0.abort();
    }
}
