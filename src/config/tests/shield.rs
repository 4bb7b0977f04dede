//! `[cluster]` and `[shield]`: the shield nodes become the last region, routes take the
//! shield by default, and every mistake names its key.

use super::*;
use crate::config::runtime::RegionKind;

fn with(tables: &str) -> String {
    format!("{MINIMAL}\n{tables}\n")
}

const SHIELD: &str = "[shield]\nnodes = [\"127.0.0.1:8181\", \"127.0.0.1:8182\"]\n";

#[test]
fn shield_nodes_join_the_regions_last_and_routes_use_them_by_default() {
    let rt = parse_str(&with(SHIELD)).unwrap();
    let id = rt.shield.unwrap();
    assert_eq!(id, rt.regions.len() - 1);
    let shield = &rt.regions[id];
    assert_eq!(
        (shield.name.as_str(), shield.kind),
        ("shield", RegionKind::Shield)
    );
    assert_eq!(shield.origins.len(), 2);
    assert_eq!(
        shield.health_check.kind,
        HealthCheckKind::Tcp,
        "tcp unless told"
    );
    let route = &rt.sites[0].routes[0];
    assert!(route.shield);
    assert!(
        !route.region_order.contains(&id),
        "no route proxies to the shield as a region"
    );
    assert_eq!(rt.cluster.cdn_id, "meridian", "without [cluster]");

    let text = with(&format!("{SHIELD}[cluster]\nname = \"prod\"\n"));
    let rt = parse_str(&text.replace("path = \"/\"", "path = \"/\"\nshield = false")).unwrap();
    assert!(!rt.sites[0].routes[0].shield);
    assert_eq!(rt.cluster.cdn_id, "meridian-prod");
    assert_eq!(rt.cluster.name.as_deref(), Some("prod"));

    let rt = parse_str(MINIMAL).unwrap();
    assert!(rt.shield.is_none() && !rt.sites[0].routes[0].shield);
}

#[test]
fn shield_mistakes_name_their_keys() {
    let e = one_error(&MINIMAL.replace("path = \"/\"", "path = \"/\"\nshield = true"));
    assert_eq!(e.key, "sites[0].routes[0].shield");
    assert!(e.reason.contains("no [shield]"), "{e}");

    let e = one_error(&with("[shield]\nnodes = []\n"));
    assert_eq!(e.key, "shield.nodes");

    let e = one_error(&with(
        "[shield]\nnodes = [\"127.0.0.1:8181\", \"127.0.0.1:8181\"]\n",
    ));
    assert_eq!(e.key, "shield.nodes[1]");
    assert!(e.reason.contains("twice"), "{e}");

    let e = one_error(&with("[shield]\nnodes = [\"shield-host\"]\n"));
    assert_eq!(e.key, "shield.nodes[0]");

    let e = one_error(&with(SHIELD).replace("name = \"us-east\"", "name = \"shield\""));
    assert_eq!(e.key, "shield");

    let e = one_error(&with("[cluster]\nname = \"prod east\"\n"));
    assert_eq!(e.key, "cluster.name");
}

#[test]
fn cluster_nats_settings_reach_the_runtime_and_their_mistakes_name_their_keys() {
    let rt = parse_str(&with(
        "[cluster]\nname = \"prod\"\nnats = [\"nats://127.0.0.1:4222\", \"10.0.0.9:4222\"]\n\
         purge_timeout = \"750ms\"\n",
    ))
    .unwrap();
    assert_eq!(rt.cluster.nats, ["nats://127.0.0.1:4222", "10.0.0.9:4222"]);
    assert_eq!(
        rt.cluster.purge_timeout,
        std::time::Duration::from_millis(750)
    );
    assert!(rt.cluster.credentials.is_none());
    assert_eq!(
        parse_str(MINIMAL).unwrap().cluster.nats,
        Vec::<String>::new()
    );

    let e = one_error(&with("[cluster]\nname = \"prod\"\nnats = []\n"));
    assert_eq!(e.key, "cluster.nats");
    let e = one_error(&with(
        "[cluster]\nname = \"prod\"\nnats = [\"http://127.0.0.1:4222\"]\n",
    ));
    assert_eq!(e.key, "cluster.nats[0]");
    let e = one_error(&with(
        "[cluster]\nname = \"prod\"\ncredentials = \"no-such.creds\"\n",
    ));
    assert_eq!(e.key, "cluster.credentials");
    let e = one_error(&with(
        "[cluster]\nname = \"prod\"\npurge_timeout = \"soon\"\n",
    ));
    assert_eq!(e.key, "cluster.purge_timeout");
}
