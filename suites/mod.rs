//! The claims of `claims.md`, one module per section, and the runner that turns them into
//! tests. Compiled into the `conformance` test binary (`cargo test`) and into the
//! `calico-conformance` command (`cargo run -- check`, `cargo run -- faults --matrix`).

#[cfg(test)]
mod cont3_tests;
pub mod context;
#[cfg(test)]
mod kube_over_lab;
pub mod runner;
pub mod support;
pub mod sweep_cases;
#[cfg(test)]
mod sweep_tests;
pub mod verdict;
#[cfg(test)]
pub mod watch_tests;

pub mod across_nodes;
pub mod container_to_container;
pub mod faults;
pub mod host_routes;
// MTU along the path (MTU-1..4).
pub mod mtu;
pub mod pod_identity;
pub mod pod_routes;
pub mod pod_to_pod;
pub mod proxy_arp;
pub mod veth;

// Beyond the article: datastore and dataplane agree (REC-*).
pub mod reconcile;

// Beyond the article: the same wiring in IPv6 (IP6-*).
pub mod ipv6;

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
        // MTU along the path (MTU-1..4).
        mtu::claims(),
        // Datastore and dataplane agree (REC-1..3).
        reconcile::claims(),
        // IPv6 and dual stack (IP6-1..6).
        ipv6::claims(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    /// The most lines a claim function's body may take: places, observe, expect.
    const MOST: usize = 15;

    /// The number of lines between the opening line of `pub async fn <name>(` (the first line
    /// from it that ends in `{`) and its closing `}` at the start of a line.
    fn body_lines(source: &str, name: &str) -> Option<usize> {
        let lines: Vec<&str> = source.lines().collect();
        let signature = format!("pub async fn {name}(");
        let start = lines.iter().position(|l| l.starts_with(&signature))?;
        let open = start + lines[start..].iter().position(|l| l.ends_with('{'))?;
        let close = open + lines[open..].iter().position(|l| *l == "}")?;
        Some(close - open - 1)
    }

    /// Every claim registered in a `claims()` reads in at most [`MOST`] lines; prints the
    /// longest (`cargo test --bin calico-conformance claim_bodies -- --nocapture`).
    #[test]
    fn claim_bodies_are_at_most_15_lines() {
        use std::path::PathBuf;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suites");
        let mut lengths = Vec::new();
        for claim in super::all() {
            let path = dir.join(format!("{}.rs", claim.group));
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let n = body_lines(&source, claim.test)
                .unwrap_or_else(|| panic!("{}: no `pub async fn {}(`", path.display(), claim.test));
            lengths.push((n, claim.id, claim.test));
        }
        lengths.sort();
        if let Some((n, id, test)) = lengths.last() {
            println!("longest claim function: {id} {test}, {n} lines (at most {MOST})");
        }
        let long: Vec<_> = lengths.iter().filter(|(n, ..)| *n > MOST).collect();
        assert!(
            long.is_empty(),
            "claim functions over {MOST} lines: {long:?}"
        );
        assert_eq!(lengths.len(), super::all().len());
    }

    #[test]
    fn body_lines_counts_between_the_braces() {
        let source =
            "pub async fn a_claim(\n    cx: &Cx<'_>,\n) -> Outcome {\n    one;\n    two\n}\n";
        assert_eq!(body_lines(source, "a_claim"), Some(2));
        assert_eq!(body_lines(source, "another"), None);
    }
}
