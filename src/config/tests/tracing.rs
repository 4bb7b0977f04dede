//! `[tracing]`: defaults, the traces URL, and every mistake named by its key.

use super::*;

#[test]
fn tracing_settings_reach_the_runtime_with_their_defaults() {
    let rt = parse_str(&format!(
        "{MINIMAL}\n[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/\"\n"
    ))
    .unwrap();
    let t = rt.tracing.unwrap();
    assert_eq!(t.traces_url, "http://127.0.0.1:4318/v1/traces");
    assert_eq!(t.service_name, "meridian");
    assert_eq!(t.sample_ratio, 0.01);
    assert_eq!(t.queue, 4096);
    assert!(parse_str(MINIMAL).unwrap().tracing.is_none());
}

#[test]
fn tracing_mistakes_name_their_keys() {
    for (table, key) in [
        (
            "otlp_endpoint = \"127.0.0.1:4318\"",
            "tracing.otlp_endpoint",
        ),
        (
            "otlp_endpoint = \"https://collector:4318\"",
            "tracing.otlp_endpoint",
        ),
        (
            "otlp_endpoint = \"http://c:4318\"\nsample_ratio = 1.5",
            "tracing.sample_ratio",
        ),
        (
            "otlp_endpoint = \"http://c:4318\"\nservice_name = \" \"",
            "tracing.service_name",
        ),
        (
            "otlp_endpoint = \"http://c:4318\"\nqueue = 0",
            "tracing.queue",
        ),
    ] {
        let e = one_error(&format!("{MINIMAL}\n[tracing]\n{table}\n"));
        assert_eq!(e.key, key, "{table}");
    }
}
