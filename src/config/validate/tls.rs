//! Validation of TLS: each site's certificate and key, read and matched at startup, so a bad
//! path or a key of another certificate is a configuration error, never a failed handshake.

use super::*;
use crate::config::file::TlsFile;
use pingora_rustls::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

impl Builder<'_> {
    pub(super) fn certified_key(&mut self, t: &TlsFile, key: &str) -> Option<Arc<CertifiedKey>> {
        let certs = self.pem_certs(&t.cert, &format!("{key}.cert"))?;
        let private = self.pem_key(&t.key, &format!("{key}.key"))?;
        let provider = rustls::crypto::ring::default_provider();
        match CertifiedKey::from_der(certs, private, &provider) {
            Ok(ck) => Some(Arc::new(ck)),
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

    fn pem_key(&mut self, v: &Spanned<String>, key: &str) -> Option<PrivateKeyDer<'static>> {
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
