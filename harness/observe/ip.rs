//! `ip -j` output (iproute2 JSON) as typed values.
