//! calico-conformance: the harness behind the claim suites.
//!
//! A claim never knows which target it runs on. It asks a [`target::Target`] for
//! [`place::Place`]s (a network namespace plus a way to run a command in it), runs
//! observations there ([`observe`]: `ip -j` output, sysctls, packet captures) and compares
//! them with what `claims.md` expects, chosen from the target's [`facts::Facts`].
//!
//! Targets: the [`lab`] (Calico's dataplane rebuilt in network namespaces on this machine),
//! a [`topology`] file (namespaces someone else built) and [`kube`] (a real cluster).

pub mod calico;
pub mod capture;
pub mod continuity;
pub mod df_echo;
pub mod diff;
pub mod error;
pub mod evidence;
pub mod expect;
pub mod facts;
pub mod faults;
pub mod fixtures;
pub mod flap;
pub mod junit;
pub mod kube;
pub mod lab;
pub mod lifecycle;
pub mod local;
pub mod netns;
pub mod observe;
pub mod place;
pub mod ports;
pub mod report;
pub mod report_files;
pub mod report_md;
pub mod results;
pub mod run;
pub mod sweep;
pub mod sweep_diff;
pub mod target;
pub mod topology;
pub mod traffic;
pub mod watch;
pub mod watch_agent;
pub mod watch_pods;

pub use error::{Error, Result};
