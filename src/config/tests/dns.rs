//! `[dns]` validation: every mistake is a named error, and a good zone reaches the runtime.

use super::*;
use crate::config::dns::RecordValue;
use crate::config::runtime::RegionKind;

/// MINIMAL with DNS addresses on both regions and a zone whose records are `records`.
fn with_zone(records: &str) -> String {
    let regions = MINIMAL
        .replace(
            "origins = [\"127.0.0.1:9001\"]",
            "origins = [\"127.0.0.1:9001\"]\ndns_addresses = [\"192.0.2.1\", \"2001:db8::1\"]",
        )
        .replace(
            "origins = [\"127.0.0.1:9101\"]",
            "origins = [\"127.0.0.1:9101\"]\ndns_addresses = [\"192.0.2.2\"]",
        );
    format!(
        "{regions}\n[dns]\nlisten = [\"127.0.0.1:5353\"]\n\n[[dns.zones]]\nname = \"example.test\"\n\
         ns = [\"ns1.example.test\"]\nhostmaster = \"hostmaster@example.test\"\n\n{records}"
    )
}

fn record(name: &str, kind: &str, rest: &str) -> String {
    format!("[[dns.zones.records]]\nname = \"{name}\"\ntype = \"{kind}\"\n{rest}\n\n")
}

#[test]
fn a_zone_with_static_and_geo_records_reaches_the_runtime_model() {
    let text = with_zone(&format!(
        "{}{}{}{}",
        record("www", "geo", "answers = 2"),
        record("@", "MX", "values = [\"10 mail.example.test\"]"),
        record("Mail.", "A", "values = [\"192.0.2.25\"]").replace("Mail.", "mail.example.test."),
        record("_dmarc", "TXT", "values = [\"v=DMARC1; p=none\"]\nttl = 60"),
    ));
    let rt = parse_str(&text).unwrap();
    let dns = rt.dns.unwrap();
    assert_eq!(
        dns.listen,
        ["127.0.0.1:5353".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert_eq!(dns.max_udp_payload, 1232);
    let zone = &dns.zones[0];
    assert_eq!(zone.apex.to_ascii(), "example.test.");
    assert_eq!(zone.hostmaster.to_ascii(), "hostmaster.example.test.");
    assert_eq!((zone.ttl, zone.negative_ttl), (3600, 300));
    let names: Vec<String> = zone.records.iter().map(|r| r.name.to_ascii()).collect();
    assert_eq!(
        names,
        [
            "www.example.test.",
            "example.test.",
            "mail.example.test.",
            "_dmarc.example.test."
        ]
    );
    let RecordValue::Geo(geo) = &zone.records[0].value else {
        panic!("www is a geo record")
    };
    assert_eq!((geo.answers, geo.regions.as_slice()), (2, &[0, 1][..]));
    assert_eq!(
        zone.records[0].ttl, 30,
        "geo records default to a short TTL"
    );
    assert_eq!(
        zone.records[1].ttl, 3600,
        "static records take the zone TTL"
    );
    assert_eq!(zone.records[3].ttl, 60);
    assert_eq!(rt.regions[0].dns_addresses.len(), 2);
}

#[test]
fn each_zone_mistake_is_a_named_error() {
    let cases: &[(&str, &str, &str)] = &[
        (
            &record("www.other.test.", "A", "values = [\"192.0.2.1\"]"),
            "dns.zones[0].records[0].name",
            "www.other.test. is outside the zone example.test.",
        ),
        (
            &record("www.example.test", "A", "values = [\"192.0.2.1\"]"),
            "dns.zones[0].records[0].name",
            "\"www.example.test\" is relative to the zone",
        ),
        (
            &record("www", "A", "values = [\"192.0.2.300\"]"),
            "dns.zones[0].records[0].values[0]",
            "\"192.0.2.300\" is not an IPv4 address",
        ),
        (
            &record("www", "A", "values = [\"2001:db8::1\"]"),
            "dns.zones[0].records[0].values[0]",
            "2001:db8::1 is not an IPv4 address",
        ),
        (
            &record("www", "geo", "regions = [\"eu-wset\"]"),
            "dns.zones[0].records[0].regions[0]",
            "unknown region \"eu-wset\"",
        ),
        (
            &record("www", "A", "values = [\"192.0.2.1\"]\nttl = 2147483648"),
            "dns.zones[0].records[0].ttl",
            "2147483648 is outside 0..=2147483647",
        ),
        (
            &record("www", "SRV", "values = [\"x\"]"),
            "dns.zones[0].records[0].type",
            "\"SRV\" is not a record type Meridian serves",
        ),
        (
            &record("www", "geo", "values = [\"192.0.2.1\"]"),
            "dns.zones[0].records[0].values",
            "a geo record takes no values",
        ),
        (
            &record("www", "A", "answers = 2\nvalues = [\"192.0.2.1\"]"),
            "dns.zones[0].records[0].answers",
            "only geo records take answers, not A",
        ),
        (
            &record("www", "MX", "values = [\"mail.example.test\"]"),
            "dns.zones[0].records[0].values[0]",
            "\"mail.example.test\" is not \"preference host\"",
        ),
        (
            &record("www", "CAA", "values = [\"0 issue\"]"),
            "dns.zones[0].records[0].values[0]",
            "\"0 issue\" is not a CAA value",
        ),
        (
            &record("@", "CNAME", "values = [\"www.example.test\"]"),
            "dns.zones[0].records[0].name",
            "a CNAME cannot be at the zone apex",
        ),
        (
            &record("bad name", "A", "values = [\"192.0.2.1\"]"),
            "dns.zones[0].records[0].name",
            "\"bad name\" contains whitespace",
        ),
    ];
    for (records, key, reason) in cases {
        let e = one_error(&with_zone(records));
        assert_eq!(e.key, *key, "{records}");
        assert!(e.reason.starts_with(reason), "{records}\ngot: {e}");
    }
}

#[test]
fn a_cname_beside_other_data_and_a_repeated_type_are_errors() {
    let cname_after = format!(
        "{}{}",
        record("www", "TXT", "values = [\"hello\"]"),
        record("www", "CNAME", "values = [\"other.example.test\"]"),
    );
    let e = one_error(&with_zone(&cname_after));
    assert_eq!(e.key, "dns.zones[0].records[1].name");
    assert!(e.reason.contains("has other data (records[0])"), "{e}");

    let geo_and_a = format!(
        "{}{}",
        record("www", "geo", ""),
        record("www", "A", "values = [\"192.0.2.1\"]"),
    );
    let e = one_error(&with_zone(&geo_and_a));
    assert_eq!(e.key, "dns.zones[0].records[1].name");
    assert!(
        e.reason
            .contains("already has A data from dns.zones[0].records[0]"),
        "{e}"
    );
}

#[test]
fn bad_dns_addresses_unknown_regions_and_colliding_listeners_are_named() {
    let text = with_zone(&record("www", "geo", "")).replace("\"192.0.2.2\"", "\"192.0.2\"");
    let e = one_error(&text);
    assert_eq!(e.key, "regions[1].dns_addresses[0]");
    assert_eq!(e.reason, "\"192.0.2\" is not an IP address");

    let text = with_zone(&record("www", "geo", "")).replace(
        "listen = [\"127.0.0.1:5353\"]",
        "listen = [\"127.0.0.1:8080\"]",
    );
    let e = one_error(&text);
    assert_eq!(e.key, "dns.listen[0]");
    assert_eq!(e.reason, "127.0.0.1:8080 is already used by listen.http[0]");

    // A geo record needs somewhere to send clients.
    let text = with_zone(&record("www", "geo", ""))
        .replace("dns_addresses = [\"192.0.2.1\", \"2001:db8::1\"]", "")
        .replace("dns_addresses = [\"192.0.2.2\"]", "");
    let e = one_error(&text);
    assert_eq!(e.key, "dns.zones[0].records[0].type");
    assert!(e.reason.contains("no region has any"), "{e}");

    let text = with_zone(&record("www", "geo", "regions = [\"us-east\"]"))
        .replace("dns_addresses = [\"192.0.2.2\"]", "");
    let e = one_error(&text);
    assert_eq!(e.key, "dns.zones[0].records[0].regions[0]");
    assert_eq!(e.reason, "region \"us-east\" has no dns_addresses");
}

#[test]
fn a_zone_defined_twice_and_a_zone_without_ns_are_errors() {
    let twice = format!(
        "{}\n[[dns.zones]]\nname = \"EXAMPLE.test.\"\nns = [\"ns1.example.test\"]\nhostmaster = \"h.example.test\"\n",
        with_zone("")
    );
    let e = one_error(&twice);
    assert_eq!(e.key, "dns.zones[1].name");
    assert_eq!(
        e.reason,
        "zone example.test. is already defined by dns.zones[0]"
    );

    let no_ns = with_zone("").replace("ns = [\"ns1.example.test\"]", "ns = []");
    let e = one_error(&no_ns);
    assert_eq!(e.key, "dns.zones[0].ns");
}

#[test]
fn edges_are_health_checked_targets_that_no_route_uses() {
    let edge = "[[dns.edges]]\nname = \"edge-fra\"\nlocation = { lat = 50.11, lon = 8.68 }\n\
                addresses = [\"192.0.2.21\", \"2001:db8::21\"]\n\n";
    let text = with_zone(&format!(
        "{}{}",
        record(
            "www",
            "geo",
            "edges = [\"edge-fra\"]\nregions = [\"us-east\"]"
        ),
        record("all", "geo", ""),
    ))
    .replace("[[dns.zones]]", &format!("{edge}[[dns.zones]]"));
    let rt = parse_str(&text).unwrap();
    let fra = rt
        .regions
        .iter()
        .position(|r| r.name == "edge-fra")
        .unwrap();
    let edge = &rt.regions[fra];
    assert_eq!(edge.kind, RegionKind::DnsEdge);
    assert_eq!(
        edge.origins[0].addr,
        "192.0.2.21:80".parse::<std::net::SocketAddr>().unwrap(),
        "default check"
    );
    assert_eq!(
        edge.health_check.kind,
        HealthCheckKind::Tcp,
        "edges default to TCP checks"
    );
    assert!(
        rt.sites[0].routes[0].region_order.iter().all(|&r| r != fra),
        "no route sends requests to an edge"
    );
    let zone = &rt.dns.unwrap().zones[0];
    let geo = |i: usize| match &zone.records[i].value {
        RecordValue::Geo(g) => g.regions.clone(),
        RecordValue::Static(_) => panic!("not geo"),
    };
    assert_eq!(geo(0), [1, fra], "regions first, then edges");
    assert_eq!(geo(1), [0, 1, fra], "default: every target with addresses");
}

#[test]
fn edge_mistakes_are_named() {
    let edge = |name: &str, addresses: &str| {
        format!(
            "[[dns.edges]]\nname = \"{name}\"\nlocation = {{ lat = 50.11, lon = 8.68 }}\n\
             addresses = [{addresses}]\n\n"
        )
    };
    let with_edge = |e: String, records: &str| {
        with_zone(records).replace("[[dns.zones]]", &format!("{e}[[dns.zones]]"))
    };
    let e = one_error(&with_edge(edge("eu-west", "\"192.0.2.21\""), ""));
    assert_eq!(e.key, "dns.edges[0].name");
    assert_eq!(e.reason, "\"eu-west\" is already the name of regions[0]");

    let e = one_error(&with_edge(edge("fra", ""), ""));
    assert_eq!(e.key, "dns.edges[0].addresses");

    let e = one_error(&with_edge(
        edge("fra", "\"192.0.2.21\""),
        &record("www", "geo", "edges = [\"fr\"]"),
    ));
    assert_eq!(e.key, "dns.zones[0].records[0].edges[0]");
    assert_eq!(e.reason, "unknown edge \"fr\"");

    let e = one_error(&with_zone(&record("www", "geo", "edges = [\"eu-west\"]")));
    assert_eq!(
        e.reason, "unknown edge \"eu-west\"",
        "a region is not an edge"
    );
}
