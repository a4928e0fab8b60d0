//! What keeps the lab's network namespaces alive, and nothing longer than this process.
//!
//! Node and pod namespaces are [`HeldNs`]: an open, close-on-exec descriptor of the namespace
//! in this process, and no process of their own. [`new_namespaces`] makes them on short-lived
//! threads that `unshare(CLONE_NEWNET)` (which changes only the calling thread's namespace) and
//! open `/proc/thread-self/ns/net`; the threads exit right after, so no thread that changed
//! namespace ever runs anything else. When this process ends in any way — even SIGKILL — the
//! kernel closes its descriptors, and a namespace nobody else references is freed with every
//! veth in it. Their path for others is `/proc/<this pid>/fd/<n>`, which `setns` and `open`
//! accept (it is how `nsenter --net=/proc/PID/fd/N` works).
//!
//! Pods' "containers" are [`Holder`] processes, because a claim observes from each container's
//! own process. A holder is `cat` reading a pipe whose write end only this process holds (std
//! creates it close-on-exec, so no other child inherits it). When this process ends in any way
//! the pipe closes, `cat` reads end-of-file and exits. `PR_SET_PDEATHSIG = SIGKILL` is a second
//! guard.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, not the process, so
//! holders are spawned only from a few long-lived spawner threads that never end (a holder
//! spawned from a test's thread would die with that test).
//!
//! A container holder `setns`es into its pod's namespace before exec, so "each container" of a
//! pod is a process of its own in the shared namespace. ([`Ns::New`] — a holder with a new
//! namespace of its own — remains for the preflight's throw-away namespace.)

use crate::error::{Error, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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
    let parent = nix::unistd::getpid();
    let HolderSpec { label, ns } = spec;
    // The closure owns the pod's namespace descriptor (close-on-exec): it closes when `cmd`
    // is dropped, after the spawn.
    let join = match ns {
        Ns::New => None,
        Ns::Join(fd) => Some(fd),
    };
    // SAFETY: `pre_exec` has no safe form. Between fork and exec only async-signal-safe
    // system calls run (prctl, getppid, unshare, setns), through nix wrappers that neither
    // allocate nor lock; an error becomes an io::Error from its errno alone.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent may have died between fork and prctl: then nobody holds the pipe.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            match &join {
                None => nix::sched::unshare(CloneFlags::CLONE_NEWNET)?,
                Some(fd) => nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)?,
            }
            Ok(())
        });
    }
    // spawn() returns after the child's exec succeeded, so its namespace is in place.
    let child = cmd.spawn().map_err(|e| Error::Netns {
        netns: label.clone(),
        problem: format!(
            "cannot start the holder process (`cat` with a new network namespace): {e}"
        ),
    })?;
    Ok(Holder { label, child })
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
            .map_err(|_| Error::Internal("a lab holder-spawner thread panicked".into()))?
            .send(job);
        if sent.is_err() {
            return Err(Error::Internal(
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
        return Err(Error::Internal("a lab holder-spawner thread died".into()));
    }
    Ok(holders)
}

/// Opens a holder's namespace file (kept open while veth peers are moved into it).
pub fn open_ns(holder: &Holder) -> Result<File> {
    crate::netns::open(&holder.netns())
}

/// A network namespace held by an open descriptor of this process: it lives while the
/// descriptor is open (or anything else — a process, a bind mount — references it).
pub struct HeldNs {
    /// What it holds, `calico-lab:<run id>:<what>` (the kernel knows no name; for diagnostics).
    pub label: String,
    file: File,
}

impl std::fmt::Debug for HeldNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldNs")
            .field("label", &self.label)
            .field("path", &self.path())
            .finish()
    }
}

impl HeldNs {
    /// The namespace as a path any process of this machine can `open` or `setns` to while
    /// this process lives: `/proc/<this pid>/fd/<n>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }

    /// The open namespace file (for `setns`, or to move a veth peer into it by descriptor).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The namespace's inode number in nsfs (what `/proc/PID/ns/net` shows as `net:[<ino>]`).
    pub fn inode(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.ino())
            .map_err(|e| Error::io(format!("stat of namespace {}", self.label), e))
    }
}

impl AsFd for HeldNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Makes one new, empty network namespace (only `lo`, down) per label, held by a descriptor
/// (see [`HeldNs`]). The work runs on a few threads made for it that end when it is done:
/// `unshare(CLONE_NEWNET)` switches the calling thread for good, so those threads run nothing
/// else. The calling thread's namespace never changes. On error, the namespaces already made
/// are closed (and so freed) before returning.
pub fn new_namespaces(labels: Vec<String>) -> Result<Vec<HeldNs>> {
    if labels.is_empty() {
        return Ok(Vec::new());
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
        .min(labels.len());
    let per = labels.len().div_ceil(threads).max(1);
    let chunks: Vec<Vec<String>> = labels.chunks(per).map(<[String]>::to_vec).collect();
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.into_iter().enumerate() {
            let h = std::thread::Builder::new()
                .name(format!("lab-unshare-{i}"))
                .spawn_scoped(scope, move || -> Result<Vec<HeldNs>> {
                    chunk.into_iter().map(unshare_here).collect()
                })
                .map_err(|e| Error::io("starting a thread to make network namespaces", e))?;
            handles.push(h);
        }
        // Join them all before looking at results, so every thread has ended.
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let mut held = Vec::new();
        for r in results {
            match r {
                Ok(Ok(chunk)) => held.extend(chunk),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(Error::Internal(
                        "a thread making network namespaces panicked".into(),
                    ));
                }
            }
        }
        Ok(held)
    })
}

/// On a thread that will run nothing else afterwards: a new namespace for this thread, opened.
fn unshare_here(label: String) -> Result<HeldNs> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
        netns: label.clone(),
        problem: format!("unshare(CLONE_NEWNET) failed: {e}"),
    })?;
    // std opens with O_CLOEXEC: no child this process starts inherits the descriptor.
    let file = File::open(Path::new("/proc/thread-self/ns/net")).map_err(|e| Error::Netns {
        netns: label.clone(),
        problem: format!("cannot open /proc/thread-self/ns/net: {e}"),
    })?;
    Ok(HeldNs { label, file })
}

/// A thread of this process parked inside a namespace, so the namespace also has a
/// `/proc/<thread id>/ns/net` path: `ip link set DEV netns <id>` takes a (thread) id, not a
/// descriptor path, and a fault of the suite moves a link to a node that way. The thread joins
/// the namespace, waits to be dropped, and ends: it runs nothing else. It ends with this
/// process, whatever ends it.
pub struct Anchor {
    tid: libc::pid_t,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Anchor {
    /// Parks a new thread in `ns`'s namespace; returns once it is there.
    pub fn new(ns: &HeldNs) -> Result<Anchor> {
        let file = ns
            .file()
            .try_clone()
            .map_err(|e| Error::io("duplicating a namespace descriptor", e))?;
        let label = ns.label.clone();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<libc::pid_t, String>>();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lab-anchor".into())
            .spawn(move || {
                let joined = nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET);
                drop(file);
                let sent = match joined {
                    Ok(()) => ready_tx.send(Ok(nix::unistd::gettid().as_raw())),
                    Err(e) => ready_tx.send(Err(format!("setns failed: {e}"))),
                };
                if sent.is_ok() {
                    // Returns when the Anchor (the sender) is dropped.
                    let _ = stopped.recv();
                }
            })
            .map_err(|e| Error::io("starting a namespace anchor thread", e))?;
        let mut anchor = Anchor {
            tid: 0,
            stop: Some(stop),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(tid)) => {
                anchor.tid = tid;
                Ok(anchor)
            }
            Ok(Err(problem)) => Err(Error::Netns {
                netns: label,
                problem,
            }),
            Err(_) => Err(Error::Netns {
                netns: label,
                problem: "the anchor thread ended early".into(),
            }),
        }
    }

    /// `/proc/<thread id>/ns/net`: the namespace, openable by any process while this lives.
    pub fn netns(&self) -> PathBuf {
        crate::netns::of_pid(self.tid as u32)
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
