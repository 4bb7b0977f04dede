//! `[compression]` and the route's `compress` key.

use super::*;
use crate::vocab::Coding;

#[test]
fn compression_defaults_and_overrides_reach_the_runtime_model() {
    let rt = parse_str(&MINIMAL.replace("path = \"/\"", "path = \"/\"\ncompress = true")).unwrap();
    assert!(rt.sites[0].routes[0].compress);
    let c = &rt.compression;
    assert_eq!(c.preference, [Coding::Br, Coding::Zstd, Coding::Gzip]);
    assert_eq!(
        (c.fill_levels.br, c.fill_levels.zstd, c.fill_levels.gzip),
        (9, 15, 9)
    );
    assert!(c.types.iter().any(|t| t == "text/html"));
    assert_eq!(c.min_size, 256);

    let text = format!(
        "{MINIMAL}\n[compression]\ncodings = [\"gzip\", \"br\"]\nlevels = {{ br = 11 }}\n\
         types = [\"text/*\", \"Application/JSON\"]\nmin_size = \"1KiB\"\n"
    );
    let rt = parse_str(&text).unwrap();
    let c = &rt.compression;
    assert_eq!(c.preference, [Coding::Gzip, Coding::Br]);
    assert_eq!((c.fill_levels.br, c.fill_levels.zstd), (11, 15));
    assert_eq!(c.types, ["text/*", "application/json"]);
    assert_eq!(c.min_size, 1024);
    assert!(!rt.sites[0].routes[0].compress, "off unless a route asks");
}

#[test]
fn compression_mistakes_are_named() {
    for (table, key, reason) in [
        (
            "codings = [\"deflate\"]",
            "compression.codings[0]",
            "\"deflate\" is not a coding",
        ),
        (
            "codings = [\"br\", \"br\"]",
            "compression.codings[1]",
            "\"br\" is listed twice",
        ),
        (
            "levels = { gzip = 10 }",
            "compression.levels.gzip",
            "10 is outside 1..=9",
        ),
        (
            "fast_levels = { br = 12 }",
            "compression.fast_levels.br",
            "12 is outside 0..=11",
        ),
        (
            "types = [\"html\"]",
            "compression.types[0]",
            "\"html\" is not a media type",
        ),
        (
            "types = [\"image/png\"]",
            "compression.types[0]",
            "image/png is compressed already",
        ),
        (
            "types = [\"video/mp4\"]",
            "compression.types[0]",
            "video/mp4 is compressed already",
        ),
        (
            "min_size = \"big\"",
            "compression.min_size",
            "\"big\" is not a size",
        ),
    ] {
        let e = one_error(&format!("{MINIMAL}\n[compression]\n{table}\n"));
        assert_eq!(e.key, key, "{table}");
        assert!(e.reason.starts_with(reason), "{table}: {e}");
    }
}

#[test]
fn a_route_overrides_the_node_wide_compression_keys_it_names() {
    let text = MINIMAL.replace(
        "path = \"/\"",
        "path = \"/\"\ncompress = true\n\n[sites.routes.compression]\ncodings = [\"gzip\"]\n\
         levels = { gzip = 4 }\nmin_size = \"1B\"",
    ) + "\n[compression]\nlevels = { br = 11, gzip = 8 }\n";
    let rt = parse_str(&text).unwrap();
    let route = &rt.sites[0].routes[0].compression;
    assert_eq!(route.preference, [Coding::Gzip]);
    assert_eq!(
        (route.fill_levels.br, route.fill_levels.gzip),
        (11, 4),
        "br from [compression]"
    );
    assert_eq!(route.min_size, 1);
    assert_eq!(route.types, rt.compression.types);
    assert_eq!(rt.compression.fill_levels.gzip, 8);

    let bad = MINIMAL.replace(
        "path = \"/\"",
        "path = \"/\"\n\n[sites.routes.compression]\ncodings = [\"lzma\"]",
    );
    let e = one_error(&bad);
    assert_eq!(e.key, "sites[0].routes[0].compression.codings[0]");
}
