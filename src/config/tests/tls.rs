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
