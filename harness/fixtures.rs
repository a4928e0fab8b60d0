//! The article's pod manifests, loaded into `k8s-openapi` types and checked strictly.
//!
//! `fixtures/article/` holds `c2c-network-demo.yaml` and `test-tools.yaml` exactly as the
//! article publishes them, with only the indentation its blog lost restored;
//! `fixtures/article/flattened/` keeps the blog's flattened text as a negative fixture, and
//! `fixtures/test-tools-remote.yaml` is `test-tools` under another name for cross-node claims.
//! What the harness changes at deploy time (placement, images) is configuration, never an
//! edited manifest.
//!
//! [`load_pod`] refuses anything Kubernetes would refuse or silently drop, with one line naming
//! the file and the field: `fixtures/article/flattened/c2c-network-demo.yaml: field
//! metadata.name is missing (...)`.

use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The article's manifests, relative to [`fixtures_dir`]: `c2c-network-demo`, then `test-tools`.
pub const ARTICLE_POD_FILES: [&str; 2] =
    ["article/c2c-network-demo.yaml", "article/test-tools.yaml"];

/// `test-tools` under the name `test-tools-remote`, without the article's nodeSelector,
/// relative to [`fixtures_dir`].
pub const TEST_TOOLS_REMOTE_FILE: &str = "test-tools-remote.yaml";

/// The crate's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A file under [`fixtures_dir`], whole, for tests; panics naming the file.
#[cfg(any(test, feature = "fake-api"))]
pub(crate) fn read_bytes(path: &str) -> Vec<u8> {
    let full = fixtures_dir().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// [`read_bytes`] as text.
#[cfg(any(test, feature = "fake-api"))]
pub(crate) fn read_text(path: &str) -> String {
    let full = fixtures_dir().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The article's two pods, `c2c-network-demo` and `test-tools`, in that order.
pub fn article_pods() -> Result<Vec<Pod>> {
    let dir = fixtures_dir();
    ARTICLE_POD_FILES
        .iter()
        .map(|f| load_pod(&dir.join(f)))
        .collect()
}

/// The `test-tools-remote` pod (cross-node claims).
pub fn test_tools_remote_pod() -> Result<Pod> {
    load_pod(&fixtures_dir().join(TEST_TOOLS_REMOTE_FILE))
}

/// Loads one Pod manifest and checks it strictly: a single YAML mapping with `apiVersion: v1`,
/// `kind: Pod`, a `metadata.name` that is a valid DNS-1123 subdomain, at least one container,
/// each with a DNS-1123 label `name` and an `image`, and no field the Pod schema does not know
/// (which the API server would drop). The error is one line naming the file and the field.
pub fn load_pod(path: &Path) -> Result<Pod> {
    let fail = |problem: String| Error::File {
        path: display_path(path),
        problem: one_line(&problem),
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let yaml: serde_norway::Value =
        serde_norway::from_str(&text).map_err(|e| fail(format!("not valid YAML: {e}")))?;
    let doc: Value = serde_json::to_value(&yaml)
        .map_err(|e| fail(format!("cannot be read as a Kubernetes object: {e}")))?;
    let top = doc.as_object().ok_or_else(|| {
        fail(format!(
            "expected a mapping (one Kubernetes object), found {}",
            kind_of(&doc)
        ))
    })?;
    // Top-level keys in file order, for messages (the JSON map sorts them).
    let key_order: Vec<String> = yaml
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    expect_string(top.get("apiVersion"), "apiVersion", "v1").map_err(&fail)?;
    expect_string(top.get("kind"), "kind", "Pod").map_err(&fail)?;

    let name = top
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    let Some(name) = name else {
        return Err(fail(format!(
            "field metadata.name is missing{}",
            lost_indentation_hint(top, &key_order)
        )));
    };
    if !is_dns1123_subdomain(name) {
        return Err(fail(format!(
            "field metadata.name {name:?} is not a valid DNS-1123 subdomain (lowercase letters, \
             digits, '-' and '.', starting and ending with a letter or digit, at most 253 \
             characters)"
        )));
    }

    let containers = top
        .get("spec")
        .and_then(|s| s.get("containers"))
        .filter(|c| !c.is_null());
    let containers = match containers {
        None => {
            return Err(fail(format!(
                "field spec.containers is missing{}",
                lost_indentation_hint(top, &key_order)
            )));
        }
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(fail("field spec.containers is empty".into()));
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(fail(format!(
                "field spec.containers: expected a list, found {}",
                kind_of(other)
            )));
        }
    };
    for (i, c) in containers.iter().enumerate() {
        let field = |f: &str| format!("spec.containers[{i}].{f}");
        match c.get("name").and_then(Value::as_str) {
            None => return Err(fail(format!("field {} is missing", field("name")))),
            Some(n) if !is_dns1123_label(n) => {
                return Err(fail(format!(
                    "field {} {n:?} is not a valid DNS-1123 label",
                    field("name")
                )));
            }
            Some(_) => {}
        }
        match c.get("image").and_then(Value::as_str) {
            Some(image) if !image.trim().is_empty() => {}
            _ => return Err(fail(format!("field {} is missing", field("image")))),
        }
    }

    let pod: Pod = serde_json::from_value(doc.clone())
        .map_err(|e| fail(format!("does not match the Pod schema: {e}")))?;
    let known = serde_json::to_value(&pod)
        .map_err(|e| fail(format!("cannot be written back as a Pod: {e}")))?;
    let mut unknown = Vec::new();
    unknown_fields(&doc, &known, "", &mut unknown);
    if let Some(first) = unknown.first() {
        let more = match unknown.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(fail(format!(
            "unknown field {first}{more}: not part of a v1 Pod"
        )));
    }
    Ok(pod)
}

/// The path as given, relative to the crate when it lies inside it (shorter messages).
fn display_path(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn expect_string(
    value: Option<&Value>,
    field: &str,
    expected: &str,
) -> std::result::Result<(), String> {
    match value {
        None | Some(Value::Null) => Err(format!("field {field} is missing")),
        Some(Value::String(s)) if s == expected => Ok(()),
        Some(other) => Err(format!("field {field} is {other}, expected {expected:?}")),
    }
}

/// When keys that belong under `metadata` or `spec` sit at the top level, say so: that is what
/// a manifest whose indentation was lost parses into.
fn lost_indentation_hint(top: &serde_json::Map<String, Value>, key_order: &[String]) -> String {
    const POD_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];
    let stray: Vec<&str> = key_order
        .iter()
        .map(String::as_str)
        .filter(|k| !POD_FIELDS.contains(k))
        .collect();
    if stray.is_empty() {
        return String::new();
    }
    let empty: Vec<&str> = ["metadata", "spec"]
        .into_iter()
        .filter(|k| top.get(*k).is_some_and(Value::is_null))
        .collect();
    let empty = match empty.as_slice() {
        [] => String::new(),
        [one] => format!("{one} is empty and "),
        [a, b] => format!("{a} and {b} are empty and "),
        _ => String::new(),
    };
    format!(
        " ({empty}{} {} top-level keys: the YAML lost its indentation)",
        stray.join(", "),
        if stray.len() == 1 { "is a" } else { "are" }
    )
}

/// Paths of `input` fields (not null) that the round trip through the typed Pod dropped.
fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, value) in i {
                if value.is_null() {
                    continue;
                }
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    None => out.push(here),
                    Some(kv) => unknown_fields(value, kv, &here, out),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// A DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a
/// letter or digit (container names).
pub fn is_dns1123_label(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| alnum(c) || c == '-')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 label-like parts
/// (pod names).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| alnum(c) || c == '-')
                && part.starts_with(alnum)
                && part.ends_with(alnum)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(name: &str) -> Pod {
        article_pods()
            .expect("article pods load")
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not among the article pods"))
    }

    #[test]
    fn c2c_network_demo_is_the_articles_pod() {
        let pod = article("c2c-network-demo");
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("app").map(String::as_str),
            Some("c2c-network-demo")
        );
        let spec = pod.spec.expect("spec");
        let c = &spec.containers;
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "hello-world-server");
        assert_eq!(c[0].image.as_deref(), Some("python:2.7"));
        assert_eq!(c[0].image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(c[0].command, Some(vec!["/bin/bash".to_string()]));
        assert_eq!(
            c[0].args,
            Some(vec![
                "-c".to_string(),
                "echo \"<p>Hi from $(hostname)</p>\" > index.html; python -m SimpleHTTPServer 8080"
                    .to_string()
            ])
        );
        let ports = c[0].ports.clone().unwrap_or_default();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(ports[0].container_port, 8080);
        assert_eq!(c[1].name, "curl-client");
        assert_eq!(c[1].image.as_deref(), Some("yannxia/ubuntu-with-tcpdump"));
        assert_eq!(c[1].command, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(
            c[1].args,
            Some(vec![
                "-c".to_string(),
                "while true; do echo 'GET / HTTP/1.1\r\n\r\n' | nc localhost 8080; sleep 10; done;"
                    .to_string()
            ])
        );
        assert_eq!(spec.node_selector, None);
    }

    #[test]
    fn test_tools_is_the_articles_pod_with_its_node_selector() {
        let pod = article("test-tools");
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.containers.len(), 1);
        let c = &spec.containers[0];
        assert_eq!(c.name, "curl-client");
        assert_eq!(c.image.as_deref(), Some("yannxia/ubuntu-with-tcpdump"));
        assert_eq!(c.command, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(
            c.args,
            Some(vec![
                "-c".to_string(),
                "while true; do sleep 10; done;".to_string()
            ])
        );
        let selector = spec.node_selector.unwrap_or_default();
        assert_eq!(selector.get("worker").map(String::as_str), Some("no-1"));
    }

    #[test]
    fn test_tools_remote_is_test_tools_renamed_without_node_selector() {
        let remote = test_tools_remote_pod().expect("loads");
        let local = article("test-tools");
        assert_eq!(remote.metadata.name.as_deref(), Some("test-tools-remote"));
        let (r, l) = (remote.spec.expect("spec"), local.spec.expect("spec"));
        assert_eq!(r.containers, l.containers);
        assert_eq!(r.node_selector, None);
    }

    #[test]
    fn restored_manifests_differ_from_the_blog_text_only_in_whitespace() {
        let dir = fixtures_dir().join("article");
        for name in ["c2c-network-demo.yaml", "test-tools.yaml"] {
            let read = |p: PathBuf| {
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            };
            let squeeze = |s: String| s.split_whitespace().collect::<String>();
            assert_eq!(
                squeeze(read(dir.join(name))),
                squeeze(read(dir.join("flattened").join(name))),
                "{name}"
            );
        }
    }

    #[test]
    fn the_flattened_blog_text_fails_with_one_line_naming_file_and_field() {
        let path = fixtures_dir().join("article/flattened/c2c-network-demo.yaml");
        let msg = load_pod(&path).expect_err("flattened").to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(
            msg.starts_with(
                "fixtures/article/flattened/c2c-network-demo.yaml: field metadata.name is missing"
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "metadata and spec are empty and name, labels, app, containers are top-level keys"
            ),
            "{msg}"
        );
    }

    fn load_text(name: &str, text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let msg = load_pod(&path).expect_err("must fail").to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        msg
    }

    const GOOD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn strict_checks_name_the_field() {
        let cases = [
            (
                GOOD.replace("apiVersion: v1", "apiVersion: v2"),
                "field apiVersion is \"v2\", expected \"v1\"",
            ),
            (
                GOOD.replace("kind: Pod", "kind: Service"),
                "field kind is \"Service\", expected \"Pod\"",
            ),
            (GOOD.replace("kind: Pod\n", ""), "field kind is missing"),
            (
                GOOD.replace("name: p", "name: Bad_Name"),
                "field metadata.name \"Bad_Name\" is not a valid DNS-1123 subdomain",
            ),
            (
                GOOD.replace("metadata:\n  name: p\n", "metadata:\n  labels: {}\n"),
                "field metadata.name is missing",
            ),
            (
                GOOD.replace(
                    "  containers:\n  - name: c\n    image: busybox\n",
                    "  containers: []\n",
                ),
                "field spec.containers is empty",
            ),
            (
                GOOD.replace(
                    "spec:\n  containers:\n  - name: c\n    image: busybox\n",
                    "",
                ),
                "field spec.containers is missing",
            ),
            (
                GOOD.replace("    image: busybox\n", ""),
                "field spec.containers[0].image is missing",
            ),
            (
                GOOD.replace("  - name: c\n", "  - image2: x\n"),
                "field spec.containers[0].name is missing",
            ),
            (
                GOOD.replace("name: c", "name: C.1"),
                "field spec.containers[0].name \"C.1\" is not a valid DNS-1123 label",
            ),
            (
                format!("{GOOD}    nodeSelector:\n      worker: no-1\n"),
                "unknown field spec.containers[0].nodeSelector",
            ),
            (
                format!("{GOOD}  containerz: 1\n"),
                "unknown field spec.containerz",
            ),
            (
                format!("{GOOD}    ports:\n    - containerPort: high\n"),
                "does not match the Pod schema",
            ),
            (
                "- a\n- b\n".to_string(),
                "expected a mapping (one Kubernetes object), found a list",
            ),
            ("a: [\n".to_string(), "not valid YAML"),
        ];
        for (text, expected) in cases {
            let msg = load_text("pod.yaml", &text);
            assert!(
                msg.contains(expected),
                "expected {expected:?} in {msg:?}\n{text}"
            );
        }
        let missing = load_pod(Path::new("/nonexistent/pod.yaml")).expect_err("missing");
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/pod.yaml: cannot read")
        );
    }

    #[test]
    fn a_minimal_pod_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pod.yaml");
        std::fs::write(&path, GOOD).expect("write");
        let pod = load_pod(&path).expect("loads");
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
    }

    #[test]
    fn dns_names() {
        assert!(is_dns1123_subdomain("c2c-network-demo"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain(""));
        assert!(is_dns1123_label("hello-world-server"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }
}
