//! CONT-3 on the lab: every claim case run before a watch and at its end. A route an
//! "upgrade" removed during the watch and never put back fails CONT-3, naming the cases it
//! breaks; put back, every case passes again and CONT-3 holds.

#[test]
fn cont_3_fails_while_a_route_is_left_removed_and_holds_once_it_is_back() {
    use super::watch_tests::{ip, watched};
    use calico_conformance::continuity::cont_3;
    use calico_conformance::facts::Encapsulation;
    use calico_conformance::target::{Target, TargetKind};
    use std::time::Duration;
    let rt = super::runner::runtime().unwrap();
    let target = rt
        .block_on(Target::open(&TargetKind::Lab(Encapsulation::None)))
        .unwrap();
    let target = std::sync::Arc::new(target);
    // Each run with a Shared of its own: nothing recorded before is reused after.
    let every_case = |t: &std::sync::Arc<Target>| {
        let shared = std::sync::Arc::new(super::support::Shared::default());
        let cases = rt.block_on(super::faults::every_case(t, &shared)).unwrap();
        cases.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
    };
    let before = every_case(&target);
    let block = target.facts.node("k8s-worker-1").unwrap().blocks[0];
    let (_, ()) = watched(&target, "cont-3", Duration::from_secs(2), |t| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            ip(t, "k8s-worker-2", format!("route del {block}")).await;
        })
    });
    let broken = cont_3(&before, &every_case(&target));
    let back = format!("route add {block} via 10.12.22.2 dev ens192 proto bird");
    rt.block_on(ip(&target, "k8s-worker-2", back));
    let whole = cont_3(&before, &every_case(&target));
    let Ok(target) = std::sync::Arc::try_unwrap(target) else {
        panic!("the target is still shared")
    };
    rt.block_on(target.close()).unwrap();
    assert!(before.len() > 40, "{} cases", before.len());
    assert!(!broken.passed, "{broken:?}");
    for id in ["REC-3", "HOST-R3", "XN-1"] {
        let named = broken.newly_failing.iter().any(|c| c.starts_with(id));
        assert!(named, "{id} not among {:?}", broken.newly_failing);
    }
    assert!(
        broken.message.contains(&block.to_string()),
        "{}",
        broken.message
    );
    assert!(whole.passed, "{}", whole.message);
    assert!(
        whole.message.ends_with(", as before it"),
        "{}",
        whole.message
    );
}
