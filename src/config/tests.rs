use super::*;

mod cache_disk;
mod compression;
mod dns;
mod images;
mod reference;
mod shield;
mod tls;
mod tracing;
use runtime::{AccessLogTarget, HealthCheckKind, RegionChoice};
use std::path::PathBuf;

fn shipped_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no configs in {}", dir.display());
    out
}

const MINIMAL: &str = r#"
[node]
name = "edge-1"
location = { lat = 53.35, lon = -6.26 }

[listen]
http = ["127.0.0.1:8080"]
admin = "127.0.0.1:9090"

[[regions]]
name = "eu-west"
location = { lat = 53.35, lon = -6.26 }
origins = ["127.0.0.1:9001"]

[[regions]]
name = "us-east"
location = { lat = 39.04, lon = -77.49 }
origins = ["127.0.0.1:9101"]

[[sites]]
name = "demo"
hosts = ["localhost"]

[[sites.routes]]
path = "/"
"#;

fn parse_str(text: &str) -> Result<Runtime, ConfigErrors> {
    parse(&Source::new("test.toml", text))
}

/// Parses `text`, expecting it to fail, and returns every error as `line: key: reason`.
fn errors_of(text: &str) -> Vec<ConfigError> {
    match parse_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(ConfigErrors(errs)) => errs,
    }
}

fn one_error(text: &str) -> ConfigError {
    let errs = errors_of(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn every_shipped_config_parses_and_validates() {
    for path in shipped_configs() {
        if let Err(e) = load(&path) {
            panic!("{} does not validate:\n{e}", path.display());
        }
    }
}

#[test]
fn demo_config_values_reach_the_runtime_model() {
    let rt = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH)).unwrap();
    assert_eq!(rt.node.name, "edge-1");
    assert_eq!(rt.node.via, "1.1 edge-1");
    assert_eq!(
        rt.listen.http,
        vec!["127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert_eq!(rt.cache.memory_bytes, 256 * 1024 * 1024);
    assert_eq!(rt.cache.max_object_bytes, 8 * 1024 * 1024);
    assert_eq!(rt.admin.token.as_deref(), Some("change-me"));
    assert_eq!(rt.log.access, AccessLogTarget::Stdout);
    let eu = &rt.regions[0];
    assert_eq!(eu.origins[1].weight, 2);
    match &eu.health_check.kind {
        HealthCheckKind::Http(check) => {
            assert_eq!(check.path, "/healthz");
            assert_eq!(check.method, http::Method::GET);
            assert!(check.expect_status.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(eu.health_check.interval, Duration::from_secs(1));
    let site = &rt.sites[rt.site_for_host("demo.test").unwrap()];
    assert_eq!(site.route_for_path("/api/time").unwrap().path, "/api/");
    assert_eq!(site.route_for_path("/index.html").unwrap().path, "/");
    assert_eq!(
        site.route_for_path("/api/x").unwrap().regions,
        RegionChoice::Nearest
    );
    assert!(rt.geoip.is_some());
    assert_eq!(rt.listen.trusted_proxies.len(), 1);
}

use std::time::Duration;

#[test]
fn nearest_orders_regions_by_distance_from_the_node() {
    // Node in Ashburn: us-east (listed second) comes first.
    let text = MINIMAL.replace(
        "name = \"edge-1\"\nlocation = { lat = 53.35, lon = -6.26 }",
        "name = \"edge-1\"\nlocation = { lat = 39.0, lon = -77.0 }",
    );
    let rt = parse_str(&text).unwrap();
    let route = &rt.sites[0].routes[0];
    assert_eq!(route.regions, RegionChoice::Nearest);
    assert_eq!(route.region_order, vec![1, 0]);
}

#[test]
fn the_node_default_order_counts_region_bias() {
    // Node in Dublin: eu-west first, unless its bias pushes it beyond us-east.
    let text = MINIMAL.replace(
        "origins = [\"127.0.0.1:9001\"]",
        "origins = [\"127.0.0.1:9001\"]\nbias_km = 20000.0",
    );
    let rt = parse_str(&text).unwrap();
    assert_eq!(rt.sites[0].routes[0].region_order, vec![1, 0]);
}

/// Adds `spurious_key = 1` to every table of `value`, one at a time, yielding each variant.
fn with_spurious_key_in_each_table(value: &toml::Value) -> Vec<(String, toml::Value)> {
    fn walk(
        v: &toml::Value,
        path: String,
        root: &toml::Value,
        out: &mut Vec<(String, toml::Value)>,
    ) {
        match v {
            toml::Value::Table(t) => {
                let mut copy = root.clone();
                insert_at(&mut copy, &path);
                out.push((path.clone(), copy));
                for (k, child) in t {
                    walk(child, format!("{path}/{k}"), root, out);
                }
            }
            toml::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{path}/{i}"), root, out);
                }
            }
            _ => {}
        }
    }
    fn insert_at(root: &mut toml::Value, path: &str) {
        let mut cur = root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = match cur {
                toml::Value::Table(t) => t.get_mut(part).unwrap(),
                toml::Value::Array(a) => &mut a[part.parse::<usize>().unwrap()],
                _ => unreachable!(),
            };
        }
        if let toml::Value::Table(t) = cur {
            t.insert("spurious_key".into(), toml::Value::Integer(1));
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), value, &mut out);
    out
}

#[test]
fn a_spurious_key_in_any_table_of_any_shipped_config_is_rejected() {
    for path in shipped_configs() {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        let variants = with_spurious_key_in_each_table(&value);
        assert!(
            variants.len() > 10,
            "walked too few tables: {}",
            variants.len()
        );
        for (where_, variant) in variants {
            let text = toml::to_string(&variant).unwrap();
            let errs = errors_of(&text);
            assert!(
                errs.iter()
                    .any(|e| e.reason == "unknown key \"spurious_key\""),
                "{}: spurious key at {where_:?} not rejected: {errs:#?}",
                path.display()
            );
        }
    }
}

#[test]
fn unknown_key_names_its_path_position_and_the_closest_valid_key() {
    let text = MINIMAL.replace("[listen]\n", "[listen]\nhtpp = [\"127.0.0.1:1\"]\n");
    let e = one_error(&text);
    assert_eq!(e.key, "listen.htpp");
    assert_eq!(e.reason, "unknown key \"htpp\"");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"http\"?"));
    assert_eq!((e.line, e.col), (7, 1));
    assert!(
        e.to_string()
            .starts_with("test.toml:7:1: listen.htpp: unknown key"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_the_key_path() {
    let text = MINIMAL.replace("path = \"/\"", "path = 5");
    let e = one_error(&text);
    assert_eq!(e.key, "sites[0].routes[0].path");
    assert!(e.reason.contains("invalid type"), "{e}");
}

#[test]
fn syntax_error_points_at_its_line() {
    let e = one_error("[node\nname = 1");
    assert_eq!(e.line, 1);
}

#[test]
fn bad_listen_address_is_an_error_with_a_hint() {
    let e = one_error(&MINIMAL.replace("\"127.0.0.1:8080\"", "\"localhost:80x\""));
    assert_eq!(e.key, "listen.http[0]");
    assert_eq!(e.reason, "\"localhost:80x\" is not an address");
    assert_eq!(e.line, 7);
}

#[test]
fn bad_origin_address_and_weight_are_errors() {
    let text = MINIMAL.replace(
        "origins = [\"127.0.0.1:9001\"]",
        "origins = [\"127.0.0.1\", { addr = \"127.0.0.1:9002\", weight = 0 }]",
    );
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["regions[0].origins[0]", "regions[0].origins[1].weight"]
    );
    assert_eq!(errs[0].reason, "\"127.0.0.1\" has no port");
    assert_eq!(errs[1].reason, "weight 0 is outside 1..=1000");
}

#[test]
fn unknown_region_in_a_route_suggests_the_closest() {
    let text = format!("{MINIMAL}regions = [\"eu-wset\"]\n");
    let e = one_error(&text);
    assert_eq!(e.key, "sites[0].routes[0].regions[0]");
    assert_eq!(e.reason, "unknown region \"eu-wset\"");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"eu-west\"?"));
}

#[test]
fn duplicate_hosts_across_sites_are_an_error() {
    let text = format!(
        "{MINIMAL}\n[[sites]]\nname = \"other\"\nhosts = [\"LOCALHOST\"]\n[[sites.routes]]\npath = \"/\"\n"
    );
    let e = one_error(&text);
    assert_eq!(e.key, "sites[1].hosts[0]");
    assert_eq!(
        e.reason,
        "host \"localhost\" is already served by site \"demo\""
    );
}

#[test]
fn host_with_a_port_is_an_error_saying_the_port_is_ignored() {
    let e = one_error(&MINIMAL.replace("hosts = [\"localhost\"]", "hosts = [\"localhost:8080\"]"));
    assert_eq!(e.key, "sites[0].hosts[0]");
    assert!(e.hint.unwrap().contains("without a port"));
}

#[test]
fn bad_sizes_and_durations_are_errors() {
    let text = format!(
        "{MINIMAL}\n[cache]\nmemory = \"lots\"\nmax_object = \"0\"\nlock_timeout = \"10x\"\n"
    );
    let errs = errors_of(&text);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.key.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("cache.memory", "\"lots\" is not a size"),
            ("cache.max_object", "a size of zero is not allowed"),
            ("cache.lock_timeout", "\"10x\" is not a duration"),
        ]
    );
}

#[test]
fn duplicate_region_names_and_out_of_range_locations_are_errors() {
    let text = MINIMAL
        .replace("name = \"us-east\"", "name = \"eu-west\"")
        .replace("lat = 39.04", "lat = 139.04");
    let errs = errors_of(&text);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.key.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "regions[1].name",
                "region \"eu-west\" is already defined by regions[0]"
            ),
            (
                "regions[1].location.lat",
                "latitude 139.04 is outside -90..=90"
            ),
        ]
    );
}

#[test]
fn colliding_listeners_are_an_error() {
    let e = one_error(&MINIMAL.replace("admin = \"127.0.0.1:9090\"", "admin = \"127.0.0.1:8080\""));
    assert_eq!(e.key, "listen.admin");
    assert_eq!(e.reason, "127.0.0.1:8080 is already used by listen.http[0]");
}

#[test]
fn health_check_rules_are_enforced() {
    let text = MINIMAL.replace(
        "origins = [\"127.0.0.1:9101\"]",
        "origins = [\"127.0.0.1:9101\"]\n[regions.health_check]\nkind = \"icmp\"\ninterval = \"1s\"\ntimeout = \"2s\"\nhealthy_after = 0\n",
    );
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "regions[1].health_check.kind",
            "regions[1].health_check.timeout",
            "regions[1].health_check.healthy_after",
        ]
    );
}

#[test]
fn an_origin_can_override_its_regions_health_check() {
    let text = MINIMAL.replace(
        "origins = [\"127.0.0.1:9001\"]",
        "origins = [{ addr = \"127.0.0.1:9001\", health_check = { kind = \"tcp\" } }, \"127.0.0.1:9002\"]",
    ) + "[regions.health_check]\nexpect_status = [200, 204]\nbody_contains = \"ok\"\nmethod = \"HEAD\"\n";
    // The table above lands in the last region; the override is on the first region's origin.
    let rt = parse_str(&text).unwrap();
    let first = &rt.regions[0].origins[0];
    assert_eq!(
        first.health_check.as_ref().unwrap().kind,
        HealthCheckKind::Tcp
    );
    assert!(rt.regions[0].origins[1].health_check.is_none());
    match &rt.regions[1].health_check.kind {
        HealthCheckKind::Http(c) => {
            assert_eq!(c.expect_status, [200, 204]);
            assert_eq!(c.body_contains.as_deref(), Some("ok"));
            assert_eq!(c.method, http::Method::HEAD);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_http_check_options_are_errors() {
    let text =
        MINIMAL.to_owned() + "[regions.health_check]\nmethod = \"POST\"\nexpect_status = [99]\n";
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "regions[1].health_check.method",
            "regions[1].health_check.expect_status[0]"
        ]
    );
}

#[test]
fn admin_token_and_token_file_are_exclusive_and_token_file_must_exist() {
    let both = format!("{MINIMAL}\n[admin]\ntoken = \"a\"\ntoken_file = \"x\"\n");
    assert_eq!(one_error(&both).reason, "both token and token_file are set");
    let missing = format!("{MINIMAL}\n[admin]\ntoken_file = \"/nonexistent/token\"\n");
    let e = one_error(&missing);
    assert_eq!(e.key, "admin.token_file");
    assert!(
        e.reason.starts_with("cannot read /nonexistent/token"),
        "{e}"
    );
}

#[test]
fn token_file_is_read_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.token"), "s3cret\n").unwrap();
    let text = format!("{MINIMAL}\n[admin]\ntoken_file = \"admin.token\"\n");
    let rt = parse(&Source::new(dir.path().join("m.toml"), text)).unwrap();
    assert_eq!(rt.admin.token.as_deref(), Some("s3cret"));
}

#[test]
fn many_errors_are_all_reported_in_file_order() {
    let text = MINIMAL
        .replace("\"127.0.0.1:8080\"", "\"nope\"")
        .replace("path = \"/\"", "path = \"no-slash\"")
        .replace("lon = -77.49", "lon = -277.49");
    let errs = errors_of(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let ConfigErrors(errs) = load(Path::new("/nonexistent/meridian.toml")).unwrap_err();
    assert!(errs[0]
        .to_string()
        .starts_with("/nonexistent/meridian.toml: cannot read"));
}

#[test]
fn closest_suggests_only_near_names() {
    assert_eq!(closest("htpp", &["http", "admin"]), Some("http"));
    assert_eq!(closest("zzzzzz", &["http", "admin"]), None);
}

#[test]
fn the_admin_api_defaults_to_loopback_and_needs_a_token_beyond_it() {
    let rt = parse_str(&MINIMAL.replace("admin = \"127.0.0.1:9090\"\n", "")).unwrap();
    assert_eq!(rt.listen.admin.to_string(), "127.0.0.1:9901");
    let open = MINIMAL.replace("127.0.0.1:9090", "0.0.0.0:9090");
    let e = one_error(&open);
    assert_eq!(e.key, "listen.admin");
    assert!(e.reason.contains("admin.token is not set"), "{e}");
    let guarded = format!("{open}\n[admin]\ntoken = \"s3cret\"\n");
    assert!(
        parse_str(&guarded).is_ok(),
        "a token makes a public admin address acceptable"
    );
}

#[test]
fn limits_default_and_their_mistakes_are_named() {
    let rt = parse_str(MINIMAL).unwrap();
    assert_eq!(rt.limits.max_header_bytes, 32 << 10);
    assert_eq!(rt.limits.max_request_body, 16 << 20);
    assert!(
        rt.limits.rate.is_none(),
        "rate limiting is off unless asked for"
    );
    assert_eq!(rt.sites[0].routes[0].max_request_body, 16 << 20);
    let bad = format!("{MINIMAL}\n[limits]\nmax_header_bytes = \"2MiB\"\n");
    assert_eq!(one_error(&bad).key, "limits.max_header_bytes");
    let bad = format!("{MINIMAL}\n[limits]\nmax_headers = 300\n");
    assert_eq!(one_error(&bad).key, "limits.max_headers");
    let bad = format!("{MINIMAL}\n[limits]\nrate_per_ip = -1.0\n");
    assert_eq!(one_error(&bad).key, "limits.rate_per_ip");
    let rated = parse_str(&format!("{MINIMAL}\n[limits]\nrate_per_ip = 2.5\n")).unwrap();
    let rate = rated.limits.rate.unwrap();
    assert_eq!(
        (rate.per_second, rate.burst),
        (2.5, 3.0),
        "burst defaults to a second's worth"
    );
}
