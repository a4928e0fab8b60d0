//! Holder processes: the lab's network namespaces live exactly as long as these do.
//!
//! A holder is `cat` reading a pipe whose write end only this process holds (std creates it
//! close-on-exec, so no other child inherits it). When this process ends in any way — even
//! SIGKILL — the pipe closes, `cat` reads end-of-file and exits, and the kernel frees its
//! network namespace with every veth in it. `PR_SET_PDEATHSIG = SIGKILL` is a second guard.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, not the process, so
//! holders are spawned only from a few long-lived spawner threads that never end (a holder
//! spawned from a test's thread would die with that test).
//!
//! A node or pod holder `unshare(CLONE_NEWNET)`s before exec: its namespace is new and empty
//! (only `lo`). A container holder `setns`es into its pod's namespace instead, so "each
//! container" of a pod is a process of its own in the shared namespace.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// How a holder gets its namespace.
pub enum Ns {
    /// A new, empty network namespace.
    New,
    /// Join an existing one (a pod's, for a container holder).
    Join(OwnedFd),
}

/// What to spawn.
pub struct HolderSpec {
    /// `argv[0]` of the holder, so `ps` shows what it holds: `calico-lab:<run id>:<what>`.
    pub label: String,
    /// Where its namespace comes from.
    pub ns: Ns,
}

/// A running holder process.
pub struct Holder {
    /// `argv[0]`, as given.
    pub label: String,
    child: Child,
}

impl Holder {
    /// The holder's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The holder's network namespace, as a path (`/proc/<pid>/ns/net`).
    pub fn netns(&self) -> PathBuf {
        crate::netns::of_pid(self.pid())
    }

    /// Kills the holder (SIGKILL) and reaps it. Killing one that already exited is fine.
    pub fn kill_and_reap(&mut self) -> Result<()> {
        // kill() fails only when the child was already reaped or is gone; wait() tells.
        let _ = self.child.kill();
        self.child
            .wait()
            .map(|_| ())
            .map_err(|e| Error::io(format!("reaping holder {}", self.label), e))
    }
}

fn spawn_one(spec: HolderSpec) -> Result<Holder> {
    let mut cmd = Command::new("cat");
    cmd.arg0(&spec.label)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let parent = std::process::id() as libc::pid_t;
    let join_fd = match &spec.ns {
        Ns::New => None,
        Ns::Join(fd) => Some(fd.as_raw_fd()),
    };
    // SAFETY: between fork and exec only async-signal-safe system calls run (prctl, getppid,
    // unshare, setns); errno is read through last_os_error, which only reads errno.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody holds the pipe.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            let rc = match join_fd {
                None => libc::unshare(libc::CLONE_NEWNET),
                Some(fd) => libc::setns(fd, libc::CLONE_NEWNET),
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // spawn() returns after the child's exec succeeded, so its namespace is in place.
    let child = cmd.spawn().map_err(|e| Error::Netns {
        netns: spec.label.clone(),
        problem: format!(
            "cannot start the holder process (`cat` with a new network namespace): {e}"
        ),
    })?;
    drop(spec.ns);
    Ok(Holder {
        label: spec.label,
        child,
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// The long-lived spawner threads (see the module documentation for why they never end).
fn spawners() -> &'static [Mutex<mpsc::Sender<Job>>] {
    static POOL: OnceLock<Vec<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    POOL.get_or_init(|| {
        // One per CPU: spawning is fork + exec + a new namespace, CPU-bound in the kernel.
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        (0..n)
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("lab-holder-spawner-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })
                    .ok()
                    .map(|_| Mutex::new(tx))
            })
            .collect()
    })
}

/// Spawns holders concurrently on the spawner threads; results come back in input order. On
/// any failure the holders that did start are killed and reaped, and the first error returned.
pub fn spawn_all(specs: Vec<HolderSpec>) -> Result<Vec<Holder>> {
    let pool = spawners();
    if pool.is_empty() {
        return Err(Error::Preflight(
            "cannot start the lab's holder-spawner threads".into(),
        ));
    }
    let (tx, rx) = mpsc::channel::<(usize, Result<Holder>)>();
    let count = specs.len();
    // Contiguous slices per thread keep the number of jobs (and wake-ups) small.
    let per = count.div_ceil(pool.len()).max(1);
    let mut specs = specs.into_iter().enumerate().collect::<Vec<_>>();
    let mut t = 0;
    while !specs.is_empty() {
        let rest = specs.split_off(per.min(specs.len()));
        let slice = std::mem::replace(&mut specs, rest);
        let tx = tx.clone();
        let job: Job = Box::new(move || {
            for (i, spec) in slice {
                let _ = tx.send((i, spawn_one(spec)));
            }
        });
        let sent = pool[t % pool.len()]
            .lock()
            .map_err(|_| Error::Preflight("a lab holder-spawner thread panicked".into()))?
            .send(job);
        if sent.is_err() {
            return Err(Error::Preflight(
                "a lab holder-spawner thread is gone".into(),
            ));
        }
        t += 1;
    }
    drop(tx);
    let mut slots: Vec<Option<Holder>> = (0..count).map(|_| None).collect();
    let mut first_error = None;
    for (i, result) in rx.iter() {
        match result {
            Ok(h) => slots[i] = Some(h),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        for h in slots.iter_mut().flatten() {
            let _ = h.kill_and_reap();
        }
        return Err(e);
    }
    let holders: Vec<Holder> = slots.into_iter().flatten().collect();
    if holders.len() != count {
        return Err(Error::Preflight("a lab holder-spawner thread died".into()));
    }
    Ok(holders)
}

/// Opens a holder's namespace file (kept open while veth peers are moved into it).
pub fn open_ns(holder: &Holder) -> Result<File> {
    crate::netns::open(&holder.netns())
}
