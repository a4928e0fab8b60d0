//! The conformance suite: `cargo test` runs every claim of claims.md against the selected
//! target (`CALICO_TARGET`; the lab in both modes by default) and the fault self-test.
//! `cargo test pod_r1` runs exactly that claim; `cargo test pod_r1 -- arp_1` runs both;
//! `cargo test -- --list` lists them all.

#[path = "mod.rs"]
#[allow(dead_code)] // the matrix writer serves the `calico-conformance` command
mod claims;

fn main() -> std::process::ExitCode {
    let (args, more_filters) = claims::runner::parse_args(std::env::args_os());
    claims::runner::main(args, more_filters)
}
