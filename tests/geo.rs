//! Client location: GeoIP on the client's address picks the nearest healthy region.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use support::{config, geoip, plain_client, Node, Origin, Reply, HOST};

/// A GeoIP2-City-layout database: TEST-NET-2 in Dublin, TEST-NET-3 in Ashburn, TEST-NET-1
/// known only as Japan (placed by the country table).
fn test_database(dir: &Path) -> PathBuf {
    let path = geoip::write(
        dir,
        "test-city.mmdb",
        &[
            ("198.51.100.0/24", geoip::city(53.35, -6.26, "IE")),
            ("203.0.113.0/24", geoip::city(39.04, -77.49, "US")),
            ("192.0.2.0/24", geoip::country_only("JP")),
        ],
    );
    std::fs::write(dir.join("country-coordinates.csv"), "JP,36.0,138.0\n").unwrap();
    path
}

struct World {
    eu: Origin,
    us: Origin,
    ap: Origin,
    node: Node,
    _dir: tempfile::TempDir,
}

async fn world(trusted: bool) -> World {
    let routes = || Origin::builder().route("/api/where", Reply::ok("here"));
    let (eu, us, ap) = (
        routes().start().await,
        routes().start().await,
        routes().start().await,
    );
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path());
    let mut cfg = config(
        &[
            ("eu", 53.35, -6.26, &[eu.addr()]),
            ("us", 39.04, -77.49, &[us.addr()]),
            ("ap", 35.68, 139.69, &[ap.addr()]),
        ],
        &format!(
            "[[sites.routes]]\npath = \"/api/\"\ncache = false\n\n[geoip]\ndatabase = \"{}\"\n",
            db.display()
        ),
    )
    .replace("[upstream]\n", "[upstream]\nserved_by_header = true\n");
    if trusted {
        cfg = support::behind_trusted_proxy(&cfg);
    }
    let node = Node::start(&cfg).await;
    World {
        eu,
        us,
        ap,
        node,
        _dir: dir,
    }
}

/// The region that served a request from `client` (as X-Forwarded-For from loopback).
async fn served_region(w: &World, client: &str) -> String {
    let r = w
        .node
        .client(&[HOST])
        .get(w.node.url(HOST, "/api/where"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let by = r.headers()["x-served-by"].to_str().unwrap();
    by.split('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn clients_on_two_continents_reach_their_nearest_region() {
    let w = world(true).await;
    assert_eq!(served_region(&w, "203.0.113.7").await, "us");
    assert_eq!(served_region(&w, "198.51.100.7").await, "eu");
    assert_eq!(
        served_region(&w, "192.0.2.9").await,
        "ap",
        "country-only, placed at JP's centroid"
    );
    // Unknown to the database: the node's own order (it stands in Dublin).
    assert_eq!(served_region(&w, "10.9.9.9").await, "eu");
    assert_eq!(
        (
            w.eu.hits("/api/where"),
            w.us.hits("/api/where"),
            w.ap.hits("/api/where")
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn a_client_cannot_steer_its_location_through_an_untrusted_peer() {
    let w = world(false).await;
    assert_eq!(
        served_region(&w, "203.0.113.7").await,
        "eu",
        "X-Forwarded-For is ignored"
    );
}

#[tokio::test]
async fn the_nearest_region_is_skipped_when_drained_and_the_next_nearest_serves() {
    let w = world(true).await;
    let drained = plain_client()
        .post(format!("http://{}/drain?region=us", w.node.admin))
        .header("authorization", "Bearer test-token")
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 200);
    // From Ashburn, Dublin (~5,500 km) is nearer than Tokyo (~10,900 km).
    assert_eq!(served_region(&w, "203.0.113.7").await, "eu");
}

#[test]
fn the_shipped_database_places_well_known_addresses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip");
    let db = meridian::geo::GeoIp::open(
        &root.join("geo-whois-asn-country.mmdb"),
        Some(&root.join("country-coordinates.csv")),
    )
    .unwrap();
    for ip in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"] {
        let loc = db.lookup(ip.parse().unwrap());
        assert!(loc.is_some_and(|l| l.country.is_some()), "{ip}: {loc:?}");
    }
    assert!(db.lookup("127.0.0.1".parse().unwrap()).is_none());
}

#[test]
fn a_missing_geoip_database_is_a_clear_config_error() {
    let text = config(
        &[("eu", 53.35, -6.26, &["127.0.0.1:1".parse().unwrap()])],
        "",
    )
    .replace("@HTTP@", "127.0.0.1:1")
    .replace("@ADMIN@", "127.0.0.1:2")
        + "\n[geoip]\ndatabase = \"/nonexistent/db.mmdb\"\n";
    let err = meridian::config::parse(&meridian::config::Source::new("m.toml", text)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("geoip.database: /nonexistent/db.mmdb: cannot open the GeoIP database"),
        "{msg}"
    );
}
