//! claims.md "Pod network identity" routes: everything via 169.254.1.1, an address no device
//! holds.

use super::support::*;
use crate::claim;
use calico_conformance::calico::LINK_LOCAL_GATEWAY;
use calico_conformance::expect::link;
use calico_conformance::expect::route::{self, RouteSpec};

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
    let routes = cx.routes(&cx.pod_place()?).await?;
    let calico = [RouteSpec::pod_default(), RouteSpec::pod_gateway()];
    cx.expect(route::exactly(&routes, &calico))
}

/// POD-R2: neither the pod nor its host holds 169.254.1.1 on any interface.
pub async fn pod_r2_gateway_is_no_address(cx: &Cx<'_>) -> Outcome {
    let pod = cx.pod_name()?;
    for place in [cx.target.pod(pod)?, cx.target.host_of(pod)?] {
        let ifs = cx.interfaces(&place).await?;
        cx.expect(link::holders(&ifs, LINK_LOCAL_GATEWAY.into(), &[]))?;
    }
    Ok(())
}
