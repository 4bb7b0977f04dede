//! Validation of TLS: each site's certificate and key, read and matched at startup, so a bad
//! path or a key of another certificate is a configuration error, never a failed handshake.

use super::*;
use crate::config::file::TlsFile;
use pingora_rustls::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

impl Builder<'_> {
    /// The site's certificate, key and optional OCSP response, with the leaf's notAfter.
    pub(super) fn certified_key(
        &mut self,
        t: &TlsFile,
        key: &str,
    ) -> Option<(Arc<CertifiedKey>, Option<SystemTime>)> {
        let certs = self.pem_certs(&t.cert, &format!("{key}.cert"))?;
        let not_after = certs.first().and_then(|c| not_after(c));
        if let Some(at) = not_after {
            if at <= SystemTime::now() {
                self.push_hint(
                    t.cert.span(),
                    format!("{key}.cert"),
                    format!(
                        "the certificate in {:?} expired at {}",
                        t.cert.get_ref(),
                        humantime::format_rfc3339_seconds(at)
                    ),
                    "renew it; clients refuse an expired certificate",
                );
                return None;
            }
        }
        let private = self.pem_key(&t.key, &format!("{key}.key"))?;
        let ocsp = match &t.ocsp {
            Some(path) => Some(self.ocsp_response(path, &format!("{key}.ocsp"))?),
            None => None,
        };
        let provider = rustls::crypto::ring::default_provider();
        match CertifiedKey::from_der(certs, private, &provider) {
            Ok(mut ck) => {
                ck.ocsp = ocsp;
                Some((Arc::new(ck), not_after))
            }
            Err(e) => {
                self.push_hint(
                    t.key.span(),
                    format!("{key}.key"),
                    format!(
                        "{:?} does not go with {:?}: {e}",
                        t.key.get_ref(),
                        t.cert.get_ref()
                    ),
                    "give the private key of the first certificate in cert",
                );
                None
            }
        }
    }

    /// A DER-encoded OCSP response (as `openssl ocsp -respout` writes), stapled as is.
    fn ocsp_response(&mut self, v: &Spanned<String>, key: &str) -> Option<Vec<u8>> {
        let path = self.relative_to_config(v.get_ref());
        let bytes = self.read_pem(v, key, &path)?;
        // An OCSPResponse is a DER SEQUENCE; anything else (PEM, empty) would be stapled as
        // garbage that clients reject.
        if bytes.first() != Some(&0x30) || bytes.len() < 8 {
            self.push_hint(
                v.span(),
                key,
                format!("{} is not a DER OCSP response", path.display()),
                "give the file `openssl ocsp ... -respout FILE` writes",
            );
            return None;
        }
        Some(bytes)
    }

    fn pem_certs(
        &mut self,
        v: &Spanned<String>,
        key: &str,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let path = self.relative_to_config(v.get_ref());
        let bytes = self.read_pem(v, key, &path)?;
        let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut bytes.as_slice()).collect();
        match certs {
            Ok(c) if !c.is_empty() => Some(c),
            Ok(_) | Err(_) => {
                self.push_hint(
                    v.span(),
                    key,
                    format!("{} holds no PEM certificate", path.display()),
                    "give a PEM file with -----BEGIN CERTIFICATE----- blocks, leaf first",
                );
                None
            }
        }
    }

    pub(super) fn pem_key(
        &mut self,
        v: &Spanned<String>,
        key: &str,
    ) -> Option<PrivateKeyDer<'static>> {
        let path = self.relative_to_config(v.get_ref());
        let bytes = self.read_pem(v, key, &path)?;
        match rustls_pemfile::private_key(&mut bytes.as_slice()) {
            Ok(Some(k)) => Some(k),
            Ok(None) | Err(_) => {
                self.push_hint(
                    v.span(),
                    key,
                    format!("{} holds no PEM private key", path.display()),
                    "give a PKCS#8, PKCS#1 or SEC1 PEM key",
                );
                None
            }
        }
    }

    fn read_pem(&mut self, v: &Spanned<String>, key: &str, path: &Path) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                self.push_hint(
                    v.span(),
                    key,
                    format!("cannot read {}: {e}", path.display()),
                    "paths are relative to this configuration file",
                );
                None
            }
        }
    }

    /// `[tls] expiry_warning`: 21 days unless set (certbot renews at 30 days left).
    pub(super) fn expiry_warning(&mut self, f: &FileConfig) -> Duration {
        let v = f.tls.as_ref().and_then(|t| t.expiry_warning.clone());
        self.duration(&v, "tls.expiry_warning", Duration::from_secs(21 * 86_400))
    }

    /// `[tls] unknown_sni`: `"default"` (the first site's certificate) or `"refuse"`.
    pub(super) fn refuse_unknown_sni(&mut self, f: &FileConfig) -> bool {
        match f.tls.as_ref().and_then(|t| t.unknown_sni.as_ref()) {
            None => false,
            Some(v) if v.get_ref() == "default" => false,
            Some(v) if v.get_ref() == "refuse" => true,
            Some(v) => {
                self.push_hint(
                    v.span(),
                    "tls.unknown_sni",
                    format!("{:?} is not a choice", v.get_ref()),
                    "write \"default\" or \"refuse\"",
                );
                false
            }
        }
    }

    /// HTTPS listeners need at least one site with a certificate (one that fails to load is
    /// reported on its own key).
    pub(super) fn https_has_certificates(&mut self, f: &FileConfig) {
        let Some(https) = &f.listen.https else { return };
        if !https.get_ref().is_empty() && f.sites.iter().all(|s| s.tls.is_none()) {
            self.push_hint(
                https.span(),
                "listen.https",
                "HTTPS listeners but no site has a certificate",
                "add tls = { cert = \"site.pem\", key = \"site.key\" } to a [[sites]] table",
            );
        }
    }
}

/// The leaf certificate's notAfter (read at load for the expiry check and the gauge); none
/// when the DER does not parse as X.509.
fn not_after(leaf_der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf_der).ok()?;
    let secs = cert.validity().not_after.timestamp();
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}
