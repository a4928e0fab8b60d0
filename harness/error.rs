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
    /// A request to the Kubernetes API failed: what was being done, and kube-rs' error (the
    /// API server's `Status`, a transport error, ...) as the source.
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The cluster is not as the suite needs it (no Calico, a pod that did not become Ready, a
    /// kubeconfig without a current context), said in full.
    #[error("{0}")]
    Kube(String),
    /// An environment setting has a value the suite cannot use.
    #[error("{name}={value:?}: {problem}")]
    Config {
        name: String,
        value: String,
        problem: String,
    },
    /// The suite's own machinery failed (a worker thread panicked, a task could not be
    /// joined): a bug, not a verdict about the dataplane.
    #[error("internal error: {0}")]
    Internal(String),
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

    /// A failed API request, with what was being done.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            what: what.into(),
            source,
        }
    }

    /// An environment setting `name` whose `value` cannot be used.
    pub fn config(name: &str, value: &str, problem: impl Into<String>) -> Self {
        Error::Config {
            name: name.to_string(),
            value: value.to_string(),
            problem: problem.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An API error keeps kube-rs' error as its source (a caller can tell a 404 from a
    /// transport error), and its message says what was being done and what the server said.
    #[test]
    fn an_api_error_keeps_its_source() {
        let status = kube::core::Status::failure("pods \"x\" not found", "NotFound").with_code(404);
        let e = Error::api("reading pod x", kube::Error::Api(status.boxed()));
        assert!(e.to_string().starts_with("reading pod x: "), "{e}");
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<kube::Error>());
        assert!(
            matches!(source, Some(kube::Error::Api(s)) if s.code == 404),
            "{source:?}"
        );
        let c = Error::config("CALICO_READY_TIMEOUT", "soon", "not a number of seconds");
        assert_eq!(
            c.to_string(),
            "CALICO_READY_TIMEOUT=\"soon\": not a number of seconds"
        );
    }
}
