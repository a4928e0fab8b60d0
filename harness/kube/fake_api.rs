//! A fake Kubernetes API server for the kube target's unit tests: a `tower::service_fn` behind
//! `kube::Client::new`, answering `<METHOD> <path>` from scripted routes.
//!
//! What it answers beyond the script follows the recorded real API server
//! (`fixtures/recorded/kube-api/`, kube-apiserver v1.36.2), never what one would expect:
//! - a path of an API group/version the fake does not serve (no route names it) gets `404` with
//!   `content-type: text/plain; charset=utf-8` and the body `404 page not found` — not a
//!   `Status` (`get-installation-group-not-served`, `get-apis-operator-group-not-served`,
//!   `list-v3-clusterinformations-not-served`);
//! - a missing object of a served resource gets `404` with a `Status` whose reason is
//!   `NotFound` (`get-v1-clusterinformation-missing-object`, `get-pod-missing-in-existing-ns`);
//! - anything else unscripted (a list, a watch, a collection delete of a served resource) is
//!   not recorded, so the fake answers `500` with a message naming the request: a test that
//!   needs it must script it.
//!
//! The core group `/api/v1` is always served; a group/version under `/apis/` is served when a
//! route names a path under it.
//!
//! Test scaffolding (the `fake-api` feature, on for every test build): it may unwrap what it
//! made itself.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

/// Environment variables are process-global: tests that set them take this lock.
pub static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sets or removes an environment variable (hold [`ENV`]).
pub fn set_env(key: &str, value: Option<&std::ffi::OsStr>) {
    // SAFETY: every test that touches the environment holds `ENV`, and nothing in this
    // crate's tests reads these variables from another thread meanwhile.
    unsafe {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

/// A kubeconfig with one context `context` pointing at `server`.
pub fn write_kubeconfig(dir: &std::path::Path, context: &str, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The requests the fake got, as `<METHOD> <path>` (or with the query, see [`fake_api_with_uris`]).
pub type Log = Arc<Mutex<Vec<String>>>;

/// A fake API server: answers `<METHOD> <path>` (query ignored; a GET with `watch=true` is
/// `WATCH <path>`) from `routes`, anything else as the module docs say, and records the
/// requests it got. A WATCH body is the newline-separated events, as the API sends.
pub fn fake_api<K: AsRef<str> + Send + Sync + 'static>(
    routes: Vec<(K, u16, serde_json::Value)>,
) -> (kube::Client, Log) {
    let (client, seen, _) = fake_api_with_uris(routes);
    (client, seen)
}

/// A request path split the way the API server routes it.
struct ApiPath {
    /// `/api/v1` or `/apis/<group>/<version>`.
    group_version: String,
    /// The group (`""` for core).
    group: String,
    /// The resource (`pods`, `clusterinformations`).
    resource: String,
    /// The object's name, when the path names one.
    name: Option<String>,
}

fn split_path(path: &str) -> Option<ApiPath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, group, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (format!("/api/{v}"), String::new(), rest),
        ["apis", g, v, rest @ ..] => (format!("/apis/{g}/{v}"), g.to_string(), rest),
        _ => return None,
    };
    let (resource, name) = match rest {
        ["namespaces", _, resource, more @ ..] => (*resource, more.first()),
        [resource, more @ ..] => (*resource, more.first()),
        [] => ("", None),
    };
    Some(ApiPath {
        group_version,
        group,
        resource: resource.to_string(),
        name: name.map(|n| n.to_string()),
    })
}

/// What the recorded server sends for a group/version it does not serve.
fn not_served() -> (u16, &'static str, Vec<u8>) {
    let body =
        crate::fixtures::read_bytes("recorded/kube-api/get-installation-group-not-served.body");
    let headers = crate::fixtures::read_text(
        "recorded/kube-api/get-installation-group-not-served.headers.txt",
    );
    let content_type = if headers.contains("content-type: text/plain; charset=utf-8") {
        "text/plain; charset=utf-8"
    } else {
        panic!("the recording of an unserved group changed: {headers}")
    };
    (404, content_type, body)
}

/// What the recorded server sends for a missing object of a served resource: its `Status`,
/// with this request's names.
fn missing_object(p: &ApiPath, name: &str) -> serde_json::Value {
    let mut status: serde_json::Value = serde_json::from_str(&crate::fixtures::read_text(
        "recorded/kube-api/get-v1-clusterinformation-missing-object.body",
    ))
    .unwrap();
    let qualified = if p.group.is_empty() {
        p.resource.clone()
    } else {
        format!("{}.{}", p.resource, p.group)
    };
    status["message"] = format!("{qualified} \"{name}\" not found").into();
    status["details"] = if p.group.is_empty() {
        serde_json::json!({"name": name, "kind": p.resource})
    } else {
        serde_json::json!({"name": name, "group": p.group, "kind": p.resource})
    };
    status
}

/// The scripted routes and what the recorded server answers beyond them: shared by the
/// in-process fake ([`fake_api_with_uris`]) and the loopback one ([`super::fake_server`]).
pub struct Answerer<K> {
    routes: Vec<(K, u16, serde_json::Value)>,
    /// The group/versions served: `/api/v1` and every one a route names.
    served: Vec<String>,
}

/// One answer: the request's `<METHOD> <path>` key, status code, content type and body.
pub struct Answer {
    pub key: String,
    pub code: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl<K: AsRef<str>> Answerer<K> {
    /// An answerer for `routes` (`<METHOD> <path>`, status, JSON body).
    pub fn new(routes: Vec<(K, u16, serde_json::Value)>) -> Self {
        let served: Vec<String> = routes
            .iter()
            .filter_map(|(k, _, _)| k.as_ref().split_once(' ').map(|(_, p)| p.to_string()))
            .filter_map(|p| split_path(&p).map(|a| a.group_version))
            .chain(["/api/v1".to_string()])
            .collect();
        Answerer { routes, served }
    }

    /// The route of `key` answered with `code` and `body` from now on.
    pub fn set(&mut self, key: &str, code: u16, body: serde_json::Value)
    where
        K: From<String>,
    {
        match self.routes.iter_mut().find(|(k, _, _)| k.as_ref() == key) {
            Some(route) => (route.1, route.2) = (code, body),
            None => self.routes.push((K::from(key.to_string()), code, body)),
        }
    }

    /// The answer to `method uri` (see the module docs).
    pub fn answer(&self, method: &str, uri: &http::Uri) -> Answer {
        let watch = uri.query().is_some_and(|q| q.contains("watch=true"));
        let method = if watch { "WATCH" } else { method };
        let path = uri.path().to_string();
        let key = format!("{method} {path}");
        let selector = field_selector(uri.query().unwrap_or(""));
        // Only the matching objects are copied: a list of thousands of pods asked for one
        // node's would otherwise be copied whole on every request.
        let scripted =
            self.routes.iter().find(|(k, _, _)| k.as_ref() == key).map(
                |(_, c, b)| match &selector {
                    Some((field, value)) => (*c, matching_copy(b, field, value)),
                    None => (*c, b.clone()),
                },
            );
        let (code, content_type, body) = match scripted {
            Some((code, body)) => {
                let bytes = match (watch, body) {
                    (true, serde_json::Value::Array(events)) => events
                        .iter()
                        .flat_map(|e| {
                            let mut line = serde_json::to_vec(e).unwrap();
                            line.push(b'\n');
                            line
                        })
                        .collect(),
                    (_, body) => serde_json::to_vec(&body).unwrap(),
                };
                (code, "application/json", bytes)
            }
            None => match split_path(&path) {
                Some(p) if self.served.contains(&p.group_version) => match (&p.name, method) {
                    (Some(name), "GET" | "DELETE" | "PATCH") if !p.resource.is_empty() => (
                        404,
                        "application/json",
                        serde_json::to_vec(&missing_object(&p, name)).unwrap(),
                    ),
                    _ => (
                        500,
                        "application/json",
                        serde_json::to_vec(&api_status(
                            500,
                            &format!("the fake API has no recorded answer for {key}"),
                        ))
                        .unwrap(),
                    ),
                },
                _ => not_served(),
            },
        };
        Answer {
            key,
            code,
            content_type,
            body,
        }
    }
}

/// [`fake_api`], also recording each request as `<METHOD> <path and query>[ <body>]`.
pub fn fake_api_with_uris<K: AsRef<str> + Send + Sync + 'static>(
    routes: Vec<(K, u16, serde_json::Value)>,
) -> (kube::Client, Log, Log) {
    let seen = Log::default();
    let uris = Log::default();
    let (log, uri_log) = (seen.clone(), uris.clone());
    let answerer = Arc::new(Answerer::new(routes));
    let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let (req, body) = req.into_parts();
        let answer = answerer.answer(req.method.as_str(), &req.uri);
        log.lock().unwrap().push(answer.key.clone());
        let method = answer.key.split(' ').next().unwrap_or_default().to_string();
        let uri = format!("{method} {}", req.uri);
        let uri_log = uri_log.clone();
        async move {
            // The request body (DeleteOptions, an applied object) goes to the URI log after
            // the URI, so tests can check what was sent.
            let sent = http_body_util::BodyExt::collect(body)
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            uri_log.lock().unwrap().push(if sent.is_empty() {
                uri
            } else {
                format!("{uri} {sent}")
            });
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(answer.code)
                    .header("content-type", answer.content_type)
                    .body(kube::client::Body::from(answer.body))
                    .unwrap(),
            )
        }
    });
    (kube::Client::new(svc, "default"), seen, uris)
}

/// The field and value a `fieldSelector=<field>=<value>` asks for: `metadata.name` (what
/// kube-runtime's waits send) or `spec.nodeName` (the workloads of a node).
fn field_selector(query: &str) -> Option<(String, String)> {
    query.split('&').find_map(|kv| {
        let value = kv.strip_prefix("fieldSelector=")?;
        let decoded = value.replace("%3D", "=").replace("%3d", "=");
        let (field, value) = decoded.split_once('=')?;
        ["metadata.name", "spec.nodeName"]
            .contains(&field)
            .then(|| (field.to_string(), value.to_string()))
    })
}

/// A copy of a list with only the items, or of a watch's events with only the objects, whose
/// `field` is `value`, as the API server applies a field selector.
fn matching_copy(body: &serde_json::Value, field: &str, value: &str) -> serde_json::Value {
    use serde_json::Value;
    let matches = |o: &Value| {
        field
            .split('.')
            .fold(o, |v, k| &v[k])
            .as_str()
            .is_some_and(|v| v == value)
    };
    match body {
        Value::Object(list) if list.get("items").is_some_and(Value::is_array) => Value::Object(
            list.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("items", Value::Array(items)) => {
                        let kept = items.iter().filter(|i| matches(i)).cloned().collect();
                        (k.clone(), Value::Array(kept))
                    }
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        ),
        Value::Array(events) => Value::Array(
            events
                .iter()
                .filter(|e| matches(&e["object"]))
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A `Status` failure as the API sends it.
pub fn api_status(code: u16, reason: &str) -> serde_json::Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": format!("{reason} (fake API)"), "reason": reason,
        "code": code})
}

/// A list as the API returns it: `kind`, `items`, and the list metadata a watch starts from.
pub fn api_list_of(kind: &str, items: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": kind,
        "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A list fixture (`kubectl get -o json` output, or one object) as the API returns it.
pub fn as_api_list(mut v: serde_json::Value) -> serde_json::Value {
    if v.get("items").is_none() {
        return api_list_of("List", vec![v]);
    }
    v["metadata"] = serde_json::json!({"resourceVersion": "1"});
    v
}

/// A Calico fixture of `fixtures/kube/calico/` as the API would list it.
pub fn api_list(fixture: &str) -> serde_json::Value {
    let text = crate::fixtures::read_text(&format!("kube/calico/{fixture}"));
    as_api_list(serde_json::from_str(&text).unwrap())
}

/// A recorded JSON file under `fixtures/recorded/` (`kube/pod-test-tools.json`).
pub fn recorded(file: &str) -> serde_json::Value {
    serde_json::from_str(&crate::fixtures::read_text(&format!("recorded/{file}"))).unwrap()
}

/// One pod as a list.
pub fn pod_list(pod: &serde_json::Value) -> serde_json::Value {
    api_list_of("PodList", vec![pod.clone()])
}

/// A `calico-node` pod list.
pub fn calico_node_pods() -> serde_json::Value {
    api_list_of(
        "PodList",
        vec![serde_json::json!({"metadata": {"name": "calico-node-x",
            "namespace": "kube-system", "labels": {"k8s-app": "calico-node"}}})],
    )
}

/// The routes every scenario shares: calico-node pods and the nodes. No operator group is
/// served (a manifest install), so the Installation is answered as the recorded server does.
pub fn common_routes(pods: serde_json::Value) -> Vec<(&'static str, u16, serde_json::Value)> {
    vec![
        ("GET /api/v1/pods", 200, pods),
        ("GET /api/v1/nodes", 200, api_list("nodes-kind.json")),
    ]
}

/// Calico's objects in `crd.projectcalico.org/v1` (a manifest install).
pub fn v1_routes() -> Vec<(&'static str, u16, serde_json::Value)> {
    vec![
        (
            "GET /apis/crd.projectcalico.org/v1/clusterinformations",
            200,
            api_list("clusterinformation-default.json"),
        ),
        (
            "GET /apis/crd.projectcalico.org/v1/ippools",
            200,
            api_list("ippools-ipip.json"),
        ),
        (
            "GET /apis/crd.projectcalico.org/v1/blockaffinities",
            200,
            api_list("blockaffinities.json"),
        ),
    ]
}

/// Calico's objects in `projectcalico.org/v3` (the API server, or the native v3 CRDs).
pub fn v3_routes() -> Vec<(&'static str, u16, serde_json::Value)> {
    let mut info = api_list("clusterinformation-default.json");
    info["items"][0]["apiVersion"] = "projectcalico.org/v3".into();
    let mut pools = api_list("ippools-vxlan-crosssubnet.json");
    for p in pools["items"].as_array_mut().unwrap() {
        p["apiVersion"] = "projectcalico.org/v3".into();
    }
    vec![
        (
            "GET /apis/projectcalico.org/v3/clusterinformations",
            200,
            info,
        ),
        ("GET /apis/projectcalico.org/v3/ippools", 200, pools),
        (
            "GET /apis/projectcalico.org/v3/blockaffinities",
            200,
            api_list("blockaffinities-v3.json"),
        ),
    ]
}

/// Whether a request whose key contains `prefix` was made.
pub fn asked(seen: &Mutex<Vec<String>>, prefix: &str) -> bool {
    seen.lock().unwrap().iter().any(|p| p.contains(prefix))
}

/// A namespace of the suite, being deleted.
pub fn namespace_json(name: &str, created: &str, uid: &str) -> serde_json::Value {
    use crate::kube::manifests::{MANAGED_BY_LABEL, MANAGER, RUN_ID_LABEL};
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": uid, "creationTimestamp": created,
            "resourceVersion": "7",
            "labels": {MANAGED_BY_LABEL: MANAGER, RUN_ID_LABEL: name}},
        "status": {"phase": "Terminating"}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::{Api, DynamicObject};

    /// The fake's own answers are the recorded ones: an unserved group is a plain-text 404
    /// that kube-rs cannot parse as a `Status`, a missing object of a served resource a
    /// `NotFound` `Status`.
    #[tokio::test]
    async fn unscripted_paths_are_answered_as_the_recorded_server_does() {
        let (client, _) = fake_api(v1_routes());
        let installations: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &crate::kube::cluster::installation_resource(),
        );
        let e = installations.get("default").await.unwrap_err();
        let kube::Error::Api(s) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(s.code, 404);
        assert_eq!(s.message, "404 page not found", "{s:?}");
        assert_ne!(s.reason, "NotFound", "{s:?}");
        let info: Api<DynamicObject> = Api::all_with(
            client,
            &crate::kube::cluster::CalicoApi::CrdV1.cluster_information(),
        );
        let e = info.get("nosuch").await.unwrap_err();
        let kube::Error::Api(s) = &e else {
            panic!("{e:?}")
        };
        assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"), "{s:?}");
        assert_eq!(
            s.message,
            "clusterinformations.crd.projectcalico.org \"nosuch\" not found"
        );
    }
}
