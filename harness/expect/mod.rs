//! Expectations as data. A claim states what it expects as a [`Check`], built by this module's
//! vocabulary: [`eq`] for two values, [`link`] for links and addresses, [`route`] for routes,
//! [`frames`] for captured packets, [`ttl`], [`body`], [`sysctls`], [`neighbour`] for the rest.
//! A check holds the expected and the observed value twice: as the text a failure prints and as
//! a structured [`Value`] a report keeps (an MTU, a MAC, route fields, TTLs, an encapsulation),
//! and it names the evidence files it judged. The failure message is generated from the check,
//! so what a claim says it expected cannot drift from what it compared.
//!
//! [`Checks`] records every check a claim case made, passed or failed, for its result.

pub mod frames;
pub mod link;
pub mod mtu;
pub mod reconcile;
pub mod route;
pub mod value;

pub use value::{Disagreement, EchoFields, NeighbourFields, UnderlayFields, Value};

use crate::evidence::observed_name;
use crate::observe::Observed;
use crate::observe::ip::Neighbour;
use crate::observe::packet::{Mac, mac_str};
use crate::observe::sysctl::{Sysctls, iface_key};
use crate::traffic::EchoReply;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

fn list(items: &[String], sep: &str, empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(sep)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Mtu(n) => write!(f, "{n}"),
            Value::Mac(m) | Value::Kind(m) => f.write_str(m.as_deref().unwrap_or("none")),
            Value::Name(s) => f.write_str(s),
            Value::Index(i) => match i {
                Some(i) => write!(f, "{i}"),
                None => f.write_str("none"),
            },
            Value::Flags(v) => write!(f, "[{}]", v.join(",")),
            Value::Addresses(v) | Value::Interfaces(v) => f.write_str(&list(v, ", ", "none")),
            Value::Sysctls(m) => {
                let kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                f.write_str(&list(&kv, ", ", "none"))
            }
            Value::Route(r) => write!(f, "{r}"),
            Value::Routes(v) => {
                let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
                f.write_str(&list(&shown, "; ", "none"))
            }
            Value::Neighbour(n) => write!(
                f,
                "{} lladdr {} state {}",
                n.ip,
                n.lladdr.as_deref().unwrap_or("none"),
                n.states.join(",")
            ),
            Value::Ttl(t) => write!(f, "{t}"),
            Value::Ttls(v) if v.is_empty() => f.write_str("no reply"),
            Value::Ttls(v) => write!(f, "{v:?}"),
            Value::Encapsulation(e) => write!(f, "{e}"),
            Value::Frames(v) => f.write_str(&list(v, "; ", "no frames")),
            Value::Count(n) => write!(f, "{n}"),
            Value::Body(b) => write!(f, "{b:?}"),
            Value::Disagreements(v) => {
                let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
                f.write_str(&list(&shown, "; ", "none"))
            }
            Value::Mtus(m) => {
                let shown: Vec<String> = m
                    .iter()
                    .map(|(k, v)| match v {
                        Some(mtu) => format!("{k} {mtu}"),
                        None => format!("{k} missing"),
                    })
                    .collect();
                f.write_str(&list(&shown, ", ", "none"))
            }
            Value::Echo(e) => write!(f, "{} bytes: {}", e.payload, e.outcomes.join(" or ")),
            Value::UnderlayFrames(u) => write!(
                f,
                "largest {}, {} fragments, full-size echo {}",
                u.largest.map_or("none".into(), |l| l.to_string()),
                u.fragments,
                if u.full_size_seen { "seen" } else { "not seen" }
            ),
            Value::Mss(m) => match m {
                Some(m) => write!(f, "{m}"),
                None => f.write_str("no MSS option"),
            },
        }
    }
}

/// One side of a check: the text a message prints and the value a report keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Shown {
    /// `<what>: <value>`.
    pub fn of(what: &str, value: Value) -> Shown {
        Shown {
            text: format!("{what}: {value}"),
            value: Some(value),
        }
    }

    /// A text with a value behind it.
    pub fn text(text: impl Into<String>, value: Value) -> Shown {
        Shown {
            text: text.into(),
            value: Some(value),
        }
    }
}

/// One comparison a claim made: what, the expected and observed sides, whether it held, and the
/// evidence files (names in the case's evidence folder) it judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub what: String,
    pub expected: Shown,
    pub observed: Shown,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

impl Check {
    /// A check of `what` that `passed`, with both sides.
    pub fn new(what: impl Into<String>, passed: bool, expected: Shown, observed: Shown) -> Check {
        Check {
            what: what.into(),
            expected,
            observed,
            passed,
            evidence: Vec::new(),
        }
    }

    /// Says why this is the expectation: appended to the expected text, ` (<why>)`.
    pub fn because(mut self, why: impl fmt::Display) -> Check {
        self.expected.text += &format!(" ({why})");
        self
    }

    /// Names an evidence file this check judged.
    pub fn judging(mut self, evidence: impl Into<String>) -> Check {
        self.evidence.push(evidence.into());
        self
    }

    /// Names the evidence file of an observation this check judged.
    pub fn judging_output<T>(self, o: &Observed<T>) -> Check {
        self.judging(observed_name(o))
    }
}

/// `what` equals `want`: expected `<what>: <want>`, observed `<what>: <got>`.
pub fn eq(what: impl Into<String>, want: Value, got: Value) -> Check {
    let what = what.into();
    Check::new(
        what.clone(),
        want == got,
        Shown::of(&what, want),
        Shown::of(&what, got),
    )
}

/// At least `min` of `what`.
pub fn at_least(what: impl Into<String>, min: usize, got: usize) -> Check {
    let what = what.into();
    Check::new(
        what.clone(),
        got >= min,
        Shown::text(format!("{what}: at least {min}"), Value::Count(min)),
        Shown::of(&what, Value::Count(got)),
    )
}

/// Every echo reply from `to` came back with TTL `want` (and at least one came back).
pub fn ttl(to: Ipv4Addr, replies: &[EchoReply], want: u8) -> Check {
    let got: Vec<u8> = replies.iter().map(|r| r.ttl).collect();
    let what = format!("TTL of the replies from {to}");
    Check::new(
        what.clone(),
        !got.is_empty() && got.iter().all(|t| *t == want),
        Shown::of(&what, Value::Ttl(want)),
        Shown::of(&what, Value::Ttls(got)),
    )
}

/// An HTTP response body is `want` (trailing whitespace aside).
pub fn body(got: &[u8], want: &str) -> Check {
    let got = String::from_utf8_lossy(got).trim_end().to_string();
    eq("the body", Value::Body(want.into()), Value::Body(got))
}

/// The per-interface sysctls `wanted` (`("conf.proxy_arp", "1")`) of `iface` have those values.
pub fn sysctls(observed: &Observed<Sysctls>, iface: &str, wanted: &[(&str, &str)]) -> Check {
    let key = |leaf: &str| iface_key(iface, leaf);
    sysctls_keyed(observed, format!("sysctls of {iface}"), wanted, key)
}

/// The IPv6 sysctls `wanted` (`("proxy_ndp", "1")`) of `iface` have those values.
pub fn sysctls6(observed: &Observed<Sysctls>, iface: &str, wanted: &[(&str, &str)]) -> Check {
    let key = |leaf: &str| crate::observe::sysctl::iface_key6(iface, leaf);
    sysctls_keyed(observed, format!("IPv6 sysctls of {iface}"), wanted, key)
}

/// The sysctls `wanted` (leaf, value), each named by `key(leaf)`, have those values.
fn sysctls_keyed(
    observed: &Observed<Sysctls>,
    what: String,
    wanted: &[(&str, &str)],
    key: impl Fn(&str) -> String,
) -> Check {
    let want = wanted
        .iter()
        .map(|(leaf, v)| (key(leaf), v.to_string()))
        .collect();
    let got = wanted
        .iter()
        .map(|(leaf, _)| {
            let v = observed.value.get(&key(leaf)).unwrap_or("missing");
            (key(leaf), v.to_string())
        })
        .collect();
    eq(what, Value::Sysctls(want), Value::Sysctls(got)).judging_output(observed)
}

/// Every echo reply from the IPv6 address `to` came back with hop limit `want` (and at least
/// one came back).
pub fn hop_limit(to: std::net::Ipv6Addr, replies: &[EchoReply], want: u8) -> Check {
    let got: Vec<u8> = replies.iter().map(|r| r.ttl).collect();
    let what = format!("hop limit of the replies from {to}");
    Check::new(
        what.clone(),
        !got.is_empty() && got.iter().all(|t| *t == want),
        Shown::of(&what, Value::Ttl(want)),
        Shown::of(&what, Value::Ttls(got)),
    )
}

/// The neighbour entry for `ip` on `dev` is dynamic (REACHABLE, STALE or DELAY, never PERMANENT)
/// with link-layer address `mac`.
pub fn neighbour(observed: &Observed<Vec<Neighbour>>, ip: IpAddr, dev: &str, mac: Mac) -> Check {
    const DYNAMIC: [&str; 3] = ["REACHABLE", "STALE", "DELAY"];
    let what = format!(
        "the neighbour entry for {ip} on {dev} in {}",
        observed.place
    );
    let want = NeighbourFields {
        ip,
        dev: dev.into(),
        lladdr: Some(mac_str(&mac)),
        states: DYNAMIC.iter().map(|s| s.to_string()).collect(),
    };
    let expected = Shown::text(
        format!(
            "{what}: {ip} lladdr {}, state REACHABLE, STALE or DELAY (dynamic, never PERMANENT)",
            mac_str(&mac)
        ),
        Value::Neighbour(want),
    );
    let entry = observed
        .value
        .iter()
        .find(|n| n.dst == ip && n.dev.as_deref() == Some(dev));
    let check = match entry {
        None => {
            let all: Vec<String> = observed.value.iter().map(|n| n.dst.to_string()).collect();
            let text = format!("{what}: none; neighbours: {}", list(&all, ", ", "none"));
            Check::new(&what, false, expected, Shown::text(text, Value::Count(0)))
        }
        Some(n) => {
            let passed = n.mac() == Some(mac)
                && !n.has_state("PERMANENT")
                && DYNAMIC.iter().any(|s| n.has_state(s));
            let got = Value::Neighbour(NeighbourFields {
                ip,
                dev: dev.into(),
                lladdr: n.lladdr.clone(),
                states: n.state.clone(),
            });
            Check::new(&what, passed, expected, Shown::of(&what, got))
        }
    };
    check.judging_output(observed)
}

/// The checks one claim case made, in order.
#[derive(Debug, Default)]
pub struct Checks(Mutex<Vec<Check>>);

impl Checks {
    /// Records `check`; returns it as the error when it failed.
    pub fn record(&self, check: Check) -> Result<(), Box<Check>> {
        self.lock().push(check.clone());
        if check.passed {
            Ok(())
        } else {
            Err(Box::new(check))
        }
    }

    /// Records checks made elsewhere (by a recording several claims judge).
    pub fn extend(&self, checks: &[Check]) {
        self.lock().extend(checks.iter().cloned());
    }

    /// Every check recorded so far.
    pub fn all(&self) -> Vec<Check> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Check>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equality_check_prints_what_it_compared() {
        let c = eq("eth0 MTU", Value::Mtu(1450), Value::Mtu(1400)).because("VXLAN");
        assert!(!c.passed);
        assert_eq!(c.expected.text, "eth0 MTU: 1450 (VXLAN)");
        assert_eq!(c.observed.text, "eth0 MTU: 1400");
        assert_eq!(
            serde_json::to_string(&c.expected.value).expect("serializes"),
            r#"{"mtu":1450}"#
        );
    }

    #[test]
    fn ttls_need_a_reply_and_every_reply_at_the_ttl() {
        let reply = |ttl| EchoReply { seq: 1, ttl };
        let to = Ipv4Addr::new(192, 168, 1, 10);
        assert!(ttl(to, &[reply(63), reply(63)], 63).passed);
        assert!(!ttl(to, &[reply(63), reply(64)], 63).passed);
        let none = ttl(to, &[], 63);
        assert!(!none.passed);
        assert_eq!(
            none.observed.text,
            "TTL of the replies from 192.168.1.10: no reply"
        );
    }

    #[test]
    fn a_recorded_failure_is_kept_and_returned() {
        let checks = Checks::default();
        assert!(checks.record(at_least("containers", 2, 2)).is_ok());
        let failed = checks
            .record(at_least("containers", 2, 1))
            .expect_err("one is fewer than two");
        assert_eq!(failed.observed.text, "containers: 1");
        assert_eq!(checks.all().len(), 2);
    }
}
