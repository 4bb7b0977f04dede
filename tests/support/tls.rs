//! Test certificates.

use std::path::Path;

/// A self-signed certificate for `host`, written as `<host>.pem` / `<host>.key` in `dir`.
pub fn certificate(dir: &Path, host: &str) {
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{host}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{host}.key")), key.serialize_pem()).unwrap();
}

/// Runs a shell script (certificate work with the openssl command line) in `dir`; fails the
/// test with its stderr if it fails.
pub fn run_script(dir: &Path, script: &str) {
    let made = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("sh and openssl are needed by this test: {e}"));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}
