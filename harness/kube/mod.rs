//! The kube target: the claims against a real cluster running Calico.

pub mod place;
