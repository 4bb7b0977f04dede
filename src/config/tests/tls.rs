//! HTTPS configuration: certificates read and matched at startup, errors named.

use super::*;

fn write_cert(dir: &Path, name: &str) {
    let ck = rcgen::generate_simple_self_signed(vec![format!("{name}.test")]).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), ck.cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), ck.key_pair.serialize_pem()).unwrap();
}

fn with_tls(dir: &Path, cert: &str, key: &str) -> String {
    MINIMAL
        .replace(
            "admin = \"127.0.0.1:9090\"",
            "https = [\"127.0.0.1:8443\"]\nadmin = \"127.0.0.1:9090\"",
        )
        .replace(
            "hosts = [\"localhost\"]",
            &format!(
                "hosts = [\"localhost\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}",
                dir.join(cert).display(),
                dir.join(key).display()
            ),
        )
}

#[test]
fn a_sites_certificate_and_key_are_loaded_and_matched() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), "a");
    write_cert(dir.path(), "b");
    let rt = parse_str(&with_tls(dir.path(), "a.pem", "a.key")).unwrap();
    assert!(rt.sites[0].tls.is_some());
    assert_eq!(
        rt.listen.https,
        ["127.0.0.1:8443".parse::<std::net::SocketAddr>().unwrap()]
    );

    let e = one_error(&with_tls(dir.path(), "a.pem", "b.key"));
    assert_eq!(e.key, "sites[0].tls.key");
    assert!(e.reason.contains("does not go with"), "{e}");

    let e = one_error(&with_tls(dir.path(), "missing.pem", "a.key"));
    assert_eq!(e.key, "sites[0].tls.cert");
    assert!(e.reason.starts_with("cannot read"), "{e}");

    let e = one_error(&with_tls(dir.path(), "a.key", "a.key"));
    assert_eq!(e.key, "sites[0].tls.cert");
    assert!(e.reason.ends_with("holds no PEM certificate"), "{e}");
}

#[test]
fn https_without_certificates_and_a_bad_sni_policy_are_errors() {
    let text = MINIMAL.replace(
        "admin = \"127.0.0.1:9090\"",
        "https = [\"127.0.0.1:8443\"]\nadmin = \"127.0.0.1:9090\"",
    );
    let e = one_error(&text);
    assert_eq!(e.key, "listen.https");

    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), "a");
    let text = format!(
        "{}\n[tls]\nunknown_sni = \"maybe\"\n",
        with_tls(dir.path(), "a.pem", "a.key")
    );
    let e = one_error(&text);
    assert_eq!(e.key, "tls.unknown_sni");
}

#[test]
fn an_expired_certificate_and_a_non_der_ocsp_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("old.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("old.key"), key.serialize_pem()).unwrap();
    let e = one_error(&with_tls(dir.path(), "old.pem", "old.key"));
    assert_eq!(e.key, "sites[0].tls.cert");
    assert!(e.reason.contains("expired at 2021-01-01"), "{e}");

    write_cert(dir.path(), "a");
    let rt = parse_str(&with_tls(dir.path(), "a.pem", "a.key")).unwrap();
    assert!(rt.sites[0].tls_not_after.is_some(), "notAfter read");
    let text = with_tls(dir.path(), "a.pem", "a.key").replace(
        "a.key\" }",
        &format!(
            "a.key\", ocsp = \"{}\" }}",
            dir.path().join("a.pem").display()
        ),
    );
    let e = one_error(&text);
    assert_eq!(e.key, "sites[0].tls.ocsp");
    assert!(e.reason.contains("not a DER OCSP response"), "{e}");
}

#[test]
fn origin_tls_is_read_at_startup_and_its_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), "ca");
    let region_tls = |table: &str| {
        MINIMAL.replace(
            "origins = [\"127.0.0.1:9101\"]\n",
            &format!(
                "origins = [\"127.0.0.1:9101\"]\nhttp2 = true\n[regions.health_check]\nkind = \"tcp\"\n\
                 [regions.tls]\n{table}\n"
            ),
        )
    };
    let ca = dir.path().join("ca.pem");
    let key = dir.path().join("ca.key");
    let rt = parse_str(&region_tls(&format!(
        "sni = \"api.test\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
        ca.display(),
        ca.display(),
        key.display()
    )))
    .unwrap();
    let tls = rt.regions[1].tls.as_ref().unwrap();
    assert_eq!(tls.sni, "api.test");
    assert!(tls.verify && tls.ca.is_some() && tls.client.is_some());
    assert!(rt.regions[1].http2);

    let e = one_error(&region_tls(&format!("cert = \"{}\"", ca.display())));
    assert_eq!(e.key, "regions[1].tls");
    assert!(e.reason.contains("needs both cert and key"), "{e}");
    let e = one_error(&region_tls(&format!("ca = \"{}\"", key.display())));
    assert_eq!(e.key, "regions[1].tls.ca");

    let http_checked = MINIMAL.replace(
        "origins = [\"127.0.0.1:9101\"]\n",
        "origins = [\"127.0.0.1:9101\"]\n[regions.tls]\nsni = \"api.test\"\n",
    );
    let e = one_error(&http_checked);
    assert_eq!(e.key, "regions[1].health_check.kind");
}
