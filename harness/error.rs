//! The harness's typed errors. Every variant names the thing at fault: a file and field,
//! a pod, an interface, a command.

use std::path::PathBuf;

/// Everything the harness can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be started, or ended badly.
    #[error("{place}: `{command}` {problem}")]
    Command {
        place: String,
        command: String,
        problem: String,
    },
    /// A command did not finish before its deadline.
    #[error("{place}: `{command}` did not finish within {seconds:.1} s")]
    Timeout {
        place: String,
        command: String,
        seconds: f64,
    },
    /// Output of a command or a file could not be parsed.
    #[error("{source_name}: {problem}")]
    Parse {
        source_name: String,
        problem: String,
    },
    /// A file (fixture, topology file, kubeconfig) is wrong.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    /// The machine cannot run what was asked (not root, missing tool, missing kernel feature).
    #[error("{0}")]
    Preflight(String),
    /// A network namespace could not be entered or created.
    #[error("network namespace {netns}: {problem}")]
    Netns { netns: String, problem: String },
    /// Something the target was asked for does not exist (a pod, a node, an interface).
    #[error("{0}")]
    NotFound(String),
    /// The Kubernetes API refused or failed.
    #[error("{0}")]
    Kube(String),
    /// Plain I/O with context.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result with the harness error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A parse error naming its source (a command and place, or a file).
    pub fn parse(source_name: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Parse {
            source_name: source_name.into(),
            problem: problem.into(),
        }
    }
}
