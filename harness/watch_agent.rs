//! The watch agent: what `watch` runs on a cluster (`harness/watch_agent.py`, python3 in the
//! node probe, entered into a pod's network namespace), where the suite cannot open sockets in
//! the pod's namespace itself. Its argv, and its output read back.
//!
//! The agent probes as the local watch does (an ICMP echo, a TCP request, a byte over one
//! long-lived connection, each every interval; a probe not answered within its interval is
//! lost), clocked by the node it runs on, and prints one JSON line per probe.

use std::time::Duration;

/// The agent's source, as shipped in the exec (comment lines left out).
const SOURCE: &str = include_str!("watch_agent.py");

/// The agent's source without its comment lines: what the exec carries.
pub fn source() -> String {
    SOURCE
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `python3 -c <agent> serve IP PORT SECONDS`: an echo server on `port` of `ip`'s family,
/// for `seconds`.
pub fn serve_argv(ip: std::net::IpAddr, port: u16, seconds: Duration) -> Vec<String> {
    vec![
        "python3".into(),
        "-c".into(),
        source(),
        "serve".into(),
        ip.to_string(),
        port.to_string(),
        format!("{:.3}", seconds.as_secs_f64()),
    ]
}

/// `python3 -c <agent> probe IP PORT INTERVAL SECONDS`.
pub fn probe_argv(
    ip: std::net::IpAddr,
    port: u16,
    interval: Duration,
    seconds: Duration,
) -> Vec<String> {
    vec![
        "python3".into(),
        "-c".into(),
        source(),
        "probe".into(),
        ip.to_string(),
        port.to_string(),
        format!("{:.3}", interval.as_secs_f64()),
        format!("{:.3}", seconds.as_secs_f64()),
    ]
}

/// Which probe a line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// `"icmp"`.
    Icmp,
    /// `"tcp"`: a new connection per probe.
    Tcp,
    /// `"long"`: the long-lived connection.
    Long,
}

/// One line of the agent's stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentLine {
    /// Probing started, at this node time (seconds since the epoch).
    Start { t: f64 },
    /// A probe sent at node time `t`: answered after `rtt_ms`, or lost with `error`.
    Probe {
        kind: AgentKind,
        seq: u64,
        t: f64,
        rtt_ms: Option<f64>,
        error: Option<String>,
    },
    /// The long-lived connection was lost at `t`.
    Lost { t: f64, why: String },
    /// It was opened again at `t`.
    Reconnected { t: f64 },
    /// The agent could not probe at all.
    Fatal { why: String },
}

/// Reads one line; what is wrong with it otherwise.
pub fn parse_line(line: &str) -> std::result::Result<AgentLine, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
    let t = || {
        v.get("t")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("no time `t`: {line}"))
    };
    let text = |key: &str| v.get(key).and_then(|s| s.as_str()).map(str::to_string);
    if let Some(ev) = v.get("ev").and_then(|e| e.as_str()) {
        return match ev {
            "start" => Ok(AgentLine::Start { t: t()? }),
            "lost" => Ok(AgentLine::Lost {
                t: t()?,
                why: text("why").unwrap_or_default(),
            }),
            "reconnected" => Ok(AgentLine::Reconnected { t: t()? }),
            "fatal" => Ok(AgentLine::Fatal {
                why: text("why").unwrap_or_default(),
            }),
            other => Err(format!("unknown event `{other}`: {line}")),
        };
    }
    let kind = match v.get("k").and_then(|k| k.as_str()) {
        Some("icmp") => AgentKind::Icmp,
        Some("tcp") => AgentKind::Tcp,
        Some("long") => AgentKind::Long,
        _ => return Err(format!("neither an event nor a probe kind: {line}")),
    };
    let seq = (v.get("seq").and_then(serde_json::Value::as_u64))
        .ok_or_else(|| format!("no `seq`: {line}"))?;
    let rtt_ms = v.get("rtt").and_then(serde_json::Value::as_f64);
    let error = text("err");
    if rtt_ms.is_none() == error.is_none() {
        return Err(format!(
            "a probe needs exactly one of `rtt` and `err`: {line}"
        ));
    }
    Ok(AgentLine::Probe {
        kind,
        seq,
        t: t()?,
        rtt_ms,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_lines_are_read_and_bad_ones_named() {
        let answered = r#"{"k": "icmp", "seq": 6, "t": 1796352055.1383293, "rtt": 0.103}"#;
        assert_eq!(
            parse_line(answered),
            Ok(AgentLine::Probe {
                kind: AgentKind::Icmp,
                seq: 6,
                t: 1796352055.1383293,
                rtt_ms: Some(0.103),
                error: None
            })
        );
        let lost =
            r#"{"k": "long", "seq": 9, "t": 2.5, "err": "[Errno 104] Connection reset by peer"}"#;
        assert!(matches!(
            parse_line(lost),
            Ok(AgentLine::Probe { kind: AgentKind::Long, error: Some(e), .. }) if e.contains("104")
        ));
        assert_eq!(
            parse_line(r#"{"ev": "start", "t": 1.0}"#),
            Ok(AgentLine::Start { t: 1.0 })
        );
        assert!(parse_line("Traceback (most recent call last):").is_err());
        let both = r#"{"k": "tcp", "seq": 1, "t": 1.0, "rtt": 1.0, "err": "x"}"#;
        assert!(parse_line(both).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn the_exec_carries_the_agent_without_its_comments_and_messages_leave_it_out() {
        let argv = probe_argv(
            "10.0.0.1".parse().unwrap(),
            7777,
            Duration::from_millis(100),
            Duration::from_secs(30),
        );
        assert!(!argv[2].lines().any(|l| l.trim_start().starts_with('#')));
        assert!(argv[2].contains("def probe("));
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        let brief = crate::place::brief_command_line(&words);
        assert!(brief.starts_with("python3 -c <a script of "), "{brief}");
        assert!(
            brief.ends_with(" bytes> probe 10.0.0.1 7777 0.100 30.000"),
            "{brief}"
        );
    }
}
