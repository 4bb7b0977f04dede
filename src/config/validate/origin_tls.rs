//! Validation of `[regions.tls]`: TLS to a region's origins (server name, trust, and an
//! optional client certificate), read and checked at startup like the site certificates.

use super::*;
use crate::config::file::OriginTlsFile;
use crate::config::runtime::OriginTls;
use pingora_core::utils::tls::{CertKey, WrappedX509};
use std::sync::Arc;

impl Builder<'_> {
    pub(super) fn origin_tls(&mut self, t: &OriginTlsFile, key: &str) -> Option<OriginTls> {
        let sni = t.sni.as_ref().map(|s| s.get_ref().trim().to_owned());
        if let Some(s) = &t.sni {
            if s.get_ref().trim().is_empty() {
                self.push(s.span(), format!("{key}.sni"), "an empty server name");
            }
        }
        let ca = match &t.ca {
            Some(v) => {
                let certs = self.x509_list(v, &format!("{key}.ca"))?;
                Some(Arc::from(certs.into_boxed_slice()))
            }
            None => None,
        };
        let client = match (&t.cert, &t.key) {
            (Some(cert), Some(k)) => {
                let file = crate::config::file::TlsFile {
                    cert: cert.clone(),
                    key: k.clone(),
                    ocsp: None,
                };
                // Read and matched exactly as a site's certificate is.
                self.certified_key(&file, key)?;
                let chain = self.x509_list(cert, &format!("{key}.cert"))?;
                let der_key = self
                    .pem_key(k, &format!("{key}.key"))?
                    .secret_der()
                    .to_vec();
                let raw = chain.iter().map(|c| c.borrow_raw_cert().clone()).collect();
                Some(Arc::new(CertKey::new(raw, der_key)))
            }
            (None, None) => None,
            (Some(v), None) | (None, Some(v)) => {
                self.push_hint(
                    v.span(),
                    key,
                    "a client certificate needs both cert and key",
                    "give cert = \"client.pem\" and key = \"client.key\", or neither",
                );
                None
            }
        };
        Some(OriginTls {
            sni: sni.unwrap_or_default(),
            verify: t.verify.unwrap_or(true),
            ca,
            client,
        })
    }

    /// PEM certificates parsed as X.509 (pingora's per-peer CA type wants parsed ones).
    fn x509_list(&mut self, v: &Spanned<String>, key: &str) -> Option<Vec<WrappedX509>> {
        let path = self.relative_to_config(v.get_ref());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.push(
                    v.span(),
                    key,
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        };
        let ders: Vec<Vec<u8>> = rustls_pemfile::certs(&mut bytes.as_slice())
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect();
        // pingora's parser panics on a bad certificate: only ones x509-parser read get there.
        if ders.is_empty()
            || ders
                .iter()
                .any(|d| x509_parser::parse_x509_certificate(d).is_err())
        {
            self.push_hint(
                v.span(),
                key,
                format!("{} holds no readable PEM certificate", path.display()),
                "give a PEM file with -----BEGIN CERTIFICATE----- blocks",
            );
            return None;
        }
        Some(
            ders.into_iter()
                .map(|d| WrappedX509::new(d, pingora_core::utils::tls::parse_x509))
                .collect(),
        )
    }
}
