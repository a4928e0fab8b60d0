//! Client source ports, unique across every process that shares a run's pods.
//!
//! Claims tell their connections apart, and filter their captures, by the client's source
//! port. In one process a counter suffices. Under cargo-nextest every test is a process of its
//! own and all of them share one deployment on a cluster (see [`crate::run::run_id`]), so two
//! processes counting from the same start would bind the same port in the same pod
//! (`curl: (45) bind failed with errno 98`) and could count each other's packets. Processes of
//! a shared run therefore reserve blocks of [`BLOCK`] ports from a counter file in the run's
//! folder (`target/calico-conformance/<run-id>/source-ports`), under an exclusive `flock`.

use crate::error::{Error, Result};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The first source port; 20000–29999 is below the kernel's default ephemeral range
/// (32768–60999), so no other connection of the pod is given one of these by the kernel.
pub const FIRST: u16 = 20000;
/// How many source ports there are before they repeat.
pub const COUNT: u16 = 10000;
/// How many ports a process reserves at a time from the shared counter.
pub const BLOCK: u16 = 16;
/// How long taking the counter file's lock may take.
const LOCK_DEADLINE: Duration = Duration::from_secs(10);

/// Hands out source ports: from a process-local counter, or, when `shared` names a counter
/// file, from blocks reserved in it.
pub struct SourcePorts {
    shared: Option<PathBuf>,
    /// Ports of the current block not yet handed out (next, end).
    state: Mutex<(u32, u32)>,
}

impl SourcePorts {
    /// Ports for one process alone.
    pub fn local() -> SourcePorts {
        SourcePorts {
            shared: None,
            state: Mutex::new((0, 0)),
        }
    }

    /// Ports shared through the counter file `path` with every other process using it.
    pub fn shared(path: impl Into<PathBuf>) -> SourcePorts {
        SourcePorts {
            shared: Some(path.into()),
            state: Mutex::new((0, 0)),
        }
    }

    /// The next source port; never one another user of the same counter got (until all
    /// [`COUNT`] have been handed out and they wrap around).
    pub fn next(&self) -> Result<u16> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Internal("the source port counter's lock is poisoned".into()))?;
        if state.0 >= state.1 {
            *state = match &self.shared {
                None => (state.1, state.1 + u32::from(COUNT)),
                Some(path) => {
                    let start = reserve(path, u32::from(BLOCK))?;
                    (start, start + u32::from(BLOCK))
                }
            };
        }
        let n = state.0;
        state.0 += 1;
        Ok(FIRST + (n % u32::from(COUNT)) as u16)
    }
}

/// Reserves `n` ports in the counter file: returns the counter's value and advances it by `n`.
fn reserve(path: &Path, n: u32) -> Result<u32> {
    let at_fault = |problem: String| Error::File {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = crate::run::lock_exclusive(path, LOCK_DEADLINE)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| at_fault(format!("reading the source port counter: {e}")))?;
    let start: u32 = match text.trim() {
        "" => 0,
        t => t
            .parse()
            .map_err(|_| at_fault(format!("the source port counter holds `{t}`, not a number")))?,
    };
    file.rewind()
        .and_then(|()| file.set_len(0))
        .and_then(|()| write!(file, "{}", start.wrapping_add(n)))
        .and_then(|()| file.sync_data())
        .map_err(|e| at_fault(format!("writing the source port counter: {e}")))?;
    Ok(start)
}

/// This run's source ports: shared through the run's folder when other processes share the
/// run (cargo-nextest), else local to the process.
pub fn source_port() -> Result<u16> {
    static PORTS: std::sync::OnceLock<SourcePorts> = std::sync::OnceLock::new();
    PORTS
        .get_or_init(|| {
            if crate::run::shared_with_other_processes() {
                SourcePorts::shared(crate::run::evidence_root().join("source-ports"))
            } else {
                SourcePorts::local()
            }
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn local_ports_count_up_from_the_first_and_wrap() {
        let ports = SourcePorts::local();
        let first: Vec<u16> = (0..3).map(|_| ports.next().unwrap()).collect();
        assert_eq!(first, [20000, 20001, 20002]);
        for _ in 3..COUNT {
            ports.next().unwrap();
        }
        assert_eq!(ports.next().unwrap(), FIRST);
    }

    #[test]
    fn a_counter_that_is_not_a_number_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source-ports");
        std::fs::write(&path, "twenty").unwrap();
        let e = SourcePorts::shared(&path).next().unwrap_err().to_string();
        assert!(
            e.contains("source-ports") && e.contains("`twenty`, not a number"),
            "{e}"
        );
    }

    /// Run only by [`two_processes_sharing_a_run_never_get_the_same_port`], in a child
    /// process: prints 200 ports taken from the counter file `CALICO_PORTS_FILE`.
    #[test]
    #[ignore = "a helper: run in child processes by two_processes_sharing_a_run_never_get_the_same_port"]
    fn port_taker() {
        let Some(path) = std::env::var_os("CALICO_PORTS_FILE") else {
            return;
        };
        let ports = SourcePorts::shared(path);
        let taken: Vec<String> = (0..200)
            .map(|_| ports.next().unwrap().to_string())
            .collect();
        println!("PORTS {}", taken.join(" "));
    }

    /// Two processes at once, as two nextest processes of one run: no port is handed to both.
    #[test]
    fn two_processes_sharing_a_run_never_get_the_same_port() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("source-ports");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<std::process::Child> = (0..2)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--ignored",
                        "--exact",
                        "ports::tests::port_taker",
                        "--nocapture",
                    ])
                    .env("CALICO_PORTS_FILE", &file)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut all = Vec::new();
        let mut each = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            let ports: Vec<u16> = text
                .lines()
                .find_map(|l| l.strip_prefix("PORTS "))
                .expect("the child printed its ports")
                .split(' ')
                .map(|p| p.parse().unwrap())
                .collect();
            assert_eq!(ports.len(), 200);
            each.push(ports.iter().copied().collect::<BTreeSet<u16>>());
            all.extend(ports);
        }
        let distinct: BTreeSet<u16> = all.iter().copied().collect();
        assert_eq!(distinct.len(), 400, "a port was handed to both processes");
        assert!(each[0].len() == 200 && each[1].len() == 200);
        // Each took 13 blocks of 16 for its 200 ports.
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            (2 * 200u32.div_ceil(u32::from(BLOCK)) * u32::from(BLOCK)).to_string(),
            "the counter holds every reservation"
        );
    }
}
