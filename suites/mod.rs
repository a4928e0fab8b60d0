//! The claims of `claims.md`, one module per section, and the runner that turns them into
//! tests. Compiled into the `conformance` test binary (`cargo test`) and into the
//! `calico-conformance` command (`cargo run -- check`, `cargo run -- faults --matrix`).

pub mod context;
pub mod runner;
pub mod support;

pub mod across_nodes;
pub mod container_to_container;
pub mod faults;
pub mod host_routes;
pub mod pod_identity;
pub mod pod_routes;
pub mod pod_to_pod;
pub mod proxy_arp;
pub mod veth;

use support::Claim;

/// Every claim, in the order of claims.md: the table of contents of the suite.
pub fn all() -> Vec<Claim> {
    [
        container_to_container::claims(),
        pod_identity::claims(),
        pod_routes::claims(),
        veth::claims(),
        proxy_arp::claims(),
        host_routes::claims(),
        pod_to_pod::claims(),
        across_nodes::claims(),
    ]
    .concat()
}
