//! Entering network namespaces without touching the caller's own.
//!
//! Two ways: [`in_netns`] runs a closure on a fresh thread that has joined the namespace (sockets
//! created there stay bound to it after the thread ends), and [`command_in`] makes a
//! `std::process::Command` join the namespace in the child between fork and exec. The calling
//! thread never changes namespace.

use crate::error::{Error, Result};
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Opens a network namespace handle (`/proc/PID/ns/net`, `/run/netns/NAME`, ...).
pub fn open(netns: &Path) -> Result<File> {
    File::open(netns).map_err(|e| Error::Netns {
        netns: netns.display().to_string(),
        problem: format!("cannot open: {e}"),
    })
}

/// Runs `f` on a new thread that has joined `netns`, and returns its result.
pub fn in_netns<T, F>(netns: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let file = open(netns)?;
    let name = netns.display().to_string();
    let handle = std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                netns: name,
                problem: format!("setns failed: {e}"),
            })?;
            f()
        })
        .map_err(|e| Error::io("spawning a thread to enter a network namespace", e))?;
    handle
        .join()
        .map_err(|_| Error::Internal(format!("a thread in {} panicked", netns.display())))?
}

/// A command whose child joins `netns` before exec. The namespace file is opened now, so a
/// missing namespace is an error here rather than in the child.
pub fn command_in(netns: &Path, program: &str) -> Result<Command> {
    let file = open(netns)?;
    let mut cmd = Command::new(program);
    // SAFETY: between fork and exec only setns(2), an async-signal-safe system call, runs.
    unsafe {
        cmd.pre_exec(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    Ok(cmd)
}

/// The namespace of a process, as a path any target accepts.
pub fn of_pid(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// The identity of a namespace (device and inode of its nsfs file), to tell two apart.
pub fn identity(netns: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(netns).map_err(|e| Error::Netns {
        netns: netns.display().to_string(),
        problem: format!("cannot stat: {e}"),
    })?;
    Ok((meta.dev(), meta.ino()))
}
