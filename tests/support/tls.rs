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
