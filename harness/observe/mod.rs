//! Observations: typed values parsed from what runs in a place. One parser serves every target.
//!
//! - [`ip`]: links, addresses, routes and neighbours from `ip -j` (iproute2 JSON);
//! - [`sysctl`]: per-interface sysctls under `/proc/sys/net`;
//! - [`packet`]: frames from pcap data (a native capture or `tcpdump -U -w -`).

pub mod ip;
pub mod packet;
pub mod sysctl;
