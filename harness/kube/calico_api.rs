//! Where a cluster serves Calico's objects, and reading them (see [`cluster::CalicoApi`]).

use super::api::{get_optional, is_unusable};
use super::cluster::{self, CalicoObjects};
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};

/// Reads Calico's objects, from `projectcalico.org/v3` when the cluster serves it and from
/// `crd.projectcalico.org/v1` otherwise (see [`cluster::CalicoApi`]). A cluster without Calico
/// fails with one message naming everything missing (the Calico API, the `calico-node` pods).
pub async fn read_calico_objects(client: &Client) -> Result<CalicoObjects> {
    let mut missing = Vec::new();
    let mut unusable = Vec::new();
    let mut found = None;
    for api in cluster::CalicoApi::PREFERENCE {
        // A list, not `get_opt("default")`: a GET of an object of a resource the server does
        // not serve is a 404 like a missing object (and `get_opt` turns both into `None`); a
        // list is a 404 only when the resource is not served.
        let info_api: Api<DynamicObject> =
            Api::all_with(client.clone(), &api.cluster_information());
        match info_api.list(&ListParams::default()).await {
            Ok(list) => {
                let info = list
                    .items
                    .into_iter()
                    .find(|o| o.metadata.name.as_deref() == Some("default"));
                found = Some((api, info));
                break;
            }
            Err(e) if is_unusable(&e) => {
                unusable.push(format!("{}: {e}", api.describe("clusterinformations")));
            }
            Err(e) => {
                return Err(Error::Kube(format!(
                    "listing {}: {e}",
                    api.describe("clusterinformations")
                )));
            }
        }
    }
    let (api, cluster_information) = match found {
        Some((api, Some(info))) => (Some(api), Some(info)),
        Some((api, None)) => {
            missing.push(format!(
                "ClusterInformation `default` ({})",
                api.describe("clusterinformations")
            ));
            (Some(api), None)
        }
        None => {
            missing.push(format!(
                "the Calico API (neither group can be read: {})",
                unusable.join("; ")
            ));
            (None, None)
        }
    };
    let calico_nodes = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels("k8s-app=calico-node"))
        .await
        .map_err(|e| Error::api("listing calico-node pods", e))?;
    if calico_nodes.items.is_empty() {
        missing
            .push("calico-node pods (no pod labelled k8s-app=calico-node in any namespace)".into());
    }
    let Some(api) = api.filter(|_| missing.is_empty()) else {
        return Err(Error::Kube(format!(
            "Calico is not installed on this cluster: missing {}",
            missing.join("; ")
        )));
    };
    tracing::debug!(
        group = api.group(),
        version = api.version(),
        "reading Calico's objects"
    );
    let list = |ar: kube::core::ApiResource, what: String| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        async move {
            api.list(&ListParams::default())
                .await
                .map(|l| l.items)
                .map_err(|e| Error::api(format!("listing {what}"), e))
        }
    };
    let ip_pools = list(api.ip_pool(), api.describe("ippools")).await?;
    let block_affinities = list(api.block_affinity(), api.describe("blockaffinities")).await?;
    let installation_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &cluster::installation_resource());
    // No Installation, or no operator group at all (a manifest install): `None`.
    let installation = get_optional(&installation_api, "default")
        .await
        .map_err(|e| Error::api("reading Installation default", e))?;
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::api("listing nodes", e))?
        .items;
    Ok(CalicoObjects {
        api: Some(api),
        cluster_information,
        ip_pools,
        block_affinities,
        installation,
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fake_api::*;

    #[tokio::test]
    async fn manifest_install_without_v3_is_read_from_the_crd_storage() {
        let mut routes = common_routes(calico_node_pods());
        routes.extend(v1_routes());
        let (client, seen) = fake_api(routes);
        let objects = read_calico_objects(&client).await.unwrap();
        assert_eq!(objects.api, Some(cluster::CalicoApi::CrdV1));
        assert!(objects.cluster_information.is_some());
        assert!(objects.installation.is_none());
        let facts = cluster::facts_from_objects("kube fake", &objects, &[]).unwrap();
        assert_eq!(facts.pools.len(), 1);
        assert_eq!(facts.calico_version.as_deref(), Some("v3.30.0"));
        // v3 was asked first.
        let first = seen.lock().unwrap().first().cloned();
        assert_eq!(
            first.as_deref(),
            Some("GET /apis/projectcalico.org/v3/clusterinformations")
        );
    }

    /// An operator install whose `default` Installation is not there (yet, or renamed): the
    /// operator group is served, so the GET is a `NotFound` `Status`, read as "none".
    #[tokio::test]
    async fn an_operator_group_without_a_default_installation_is_no_installation() {
        let mut routes = common_routes(calico_node_pods());
        routes.extend(v1_routes());
        routes.push((
            "GET /apis/operator.tigera.io/v1/installations",
            200,
            api_list_of("InstallationList", vec![]),
        ));
        let (client, seen) = fake_api(routes);
        let objects = read_calico_objects(&client).await.unwrap();
        assert!(objects.installation.is_none());
        assert!(asked(
            &seen,
            "GET /apis/operator.tigera.io/v1/installations/default"
        ));
        let mut routes = common_routes(calico_node_pods());
        routes.extend(v1_routes());
        let installation: serde_json::Value = serde_json::from_str(&crate::fixtures::read_text(
            "kube/calico/installation-default.json",
        ))
        .unwrap();
        routes.push((
            "GET /apis/operator.tigera.io/v1/installations/default",
            200,
            installation,
        ));
        let (client, _) = fake_api(routes);
        let objects = read_calico_objects(&client).await.unwrap();
        assert!(objects.installation.is_some());
    }

    #[tokio::test]
    async fn native_v3_crds_are_read_without_touching_the_v1_group() {
        let mut routes = common_routes(calico_node_pods());
        routes.extend(v3_routes());
        let (client, seen) = fake_api(routes);
        let objects = read_calico_objects(&client).await.unwrap();
        assert_eq!(objects.api, Some(cluster::CalicoApi::V3));
        let facts = cluster::facts_from_objects("kube fake", &objects, &[]).unwrap();
        assert_eq!(facts.pools.len(), 1, "{:?}", facts.pools);
        assert!(facts.nodes.iter().all(|n| !n.blocks.is_empty()));
        assert!(!asked(&seen, "/apis/crd.projectcalico.org/"));
    }

    #[tokio::test]
    async fn an_unavailable_or_forbidden_v3_falls_back_to_v1() {
        for code in [503u16, 403] {
            let mut routes = common_routes(calico_node_pods());
            routes.push((
                "GET /apis/projectcalico.org/v3/clusterinformations",
                code,
                api_status(code, "ServiceUnavailable"),
            ));
            routes.extend(v1_routes());
            let (client, _) = fake_api(routes);
            let objects = read_calico_objects(&client).await.unwrap();
            assert_eq!(
                objects.api,
                Some(cluster::CalicoApi::CrdV1),
                "v3 answered {code}"
            );
        }
    }

    #[tokio::test]
    async fn another_v3_error_is_reported_not_papered_over() {
        let mut routes = common_routes(calico_node_pods());
        routes.push((
            "GET /apis/projectcalico.org/v3/clusterinformations",
            500,
            api_status(500, "InternalError"),
        ));
        routes.extend(v1_routes());
        let (client, _) = fake_api(routes);
        let e = read_calico_objects(&client).await.unwrap_err().to_string();
        assert!(
            e.contains("listing clusterinformations.projectcalico.org/v3"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_cluster_without_calico_gets_one_message_naming_what_is_missing() {
        let empty = api_list_of("PodList", vec![]);
        let (client, _) = fake_api(common_routes(empty));
        let e = read_calico_objects(&client).await.unwrap_err().to_string();
        assert!(e.contains("Calico is not installed on this cluster"), "{e}");
        assert!(
            e.contains("clusterinformations.projectcalico.org/v3"),
            "{e}"
        );
        assert!(
            e.contains("clusterinformations.crd.projectcalico.org/v1"),
            "{e}"
        );
        assert!(e.contains("calico-node pods"), "{e}");
    }

    #[tokio::test]
    async fn a_served_api_without_clusterinformation_default_says_so() {
        let mut routes = common_routes(calico_node_pods());
        let mut v1 = v1_routes();
        v1[0].2["items"] = serde_json::json!([]);
        routes.extend(v1);
        let (client, _) = fake_api(routes);
        let e = read_calico_objects(&client).await.unwrap_err().to_string();
        assert!(
            e.contains(
                "ClusterInformation `default` (clusterinformations.crd.projectcalico.org/v1)"
            ),
            "{e}"
        );
    }
}
