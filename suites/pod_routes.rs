//! claims.md "Pod network identity" routes: everything via 169.254.1.1, an address no device
//! holds.

use super::support::*;
use crate::claim;
use calico_conformance::calico::LINK_LOCAL_GATEWAY;
use calico_conformance::observe::{self, ip::RouteType};
use std::net::IpAddr;

/// The claims of this section.
pub fn claims() -> Vec<Claim> {
    vec![
        claim!(
            "POD-R1",
            "The pod's default route goes via the link-local gateway",
            Per::EachPod,
            pod_r1_default_via_link_local
        ),
        claim!(
            "POD-R2",
            "The gateway 169.254.1.1 is no device's address",
            Per::EachPod,
            pod_r2_gateway_is_no_address
        ),
    ]
}

/// POD-R1: exactly `default via 169.254.1.1 dev eth0` and `169.254.1.1 dev eth0 scope link`.
pub async fn pod_r1_default_via_link_local(cx: &Cx<'_>) -> Outcome {
    let pod = cx.target.pod(cx.pod_name()?)?;
    let routes = observe::routes(&pod, true).await?;
    cx.evidence.observed(&routes);
    let gw = IpAddr::V4(LINK_LOCAL_GATEWAY);
    let is_default = |r: &calico_conformance::observe::ip::Route| {
        r.kind == RouteType::Unicast
            && r.dst.is_default()
            && r.gateway == Some(gw)
            && r.via_dev("eth0")
    };
    let is_gateway = |r: &calico_conformance::observe::ip::Route| {
        r.kind == RouteType::Unicast
            && r.dst.is_host(gw)
            && r.gateway.is_none()
            && r.via_dev("eth0")
            && r.scope.as_deref() == Some("link")
    };
    let ok = routes.value.len() == 2
        && routes.value.iter().filter(|r| is_default(r)).count() == 1
        && routes.value.iter().filter(|r| is_gateway(r)).count() == 1;
    ensure(
        ok,
        "exactly two IPv4 routes: default via 169.254.1.1 dev eth0; 169.254.1.1 dev eth0 scope link",
        format!(
            "{} route(s): {}",
            routes.value.len(),
            show_routes(&routes.value)
        ),
    )?;
    Ok(Verdict::Verified)
}

/// POD-R2: neither the pod nor its host holds 169.254.1.1 on any interface.
pub async fn pod_r2_gateway_is_no_address(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_name()?;
    let gw = IpAddr::V4(LINK_LOCAL_GATEWAY);
    for place in [cx.target.pod(pod)?, cx.target.host_of(pod)?] {
        let ifs = observe::interfaces(&place).await?;
        cx.evidence.observed(&ifs);
        let holders: Vec<&str> = ifs
            .value
            .iter()
            .filter(|i| i.holds(gw))
            .map(|i| i.link.ifname.as_str())
            .collect();
        ensure(
            holders.is_empty(),
            format!("no interface in {} holds 169.254.1.1", place.label()),
            format!("held by {}", holders.join(", ")),
        )?;
    }
    Ok(Verdict::Verified)
}
