//! Per-interface sysctls.
