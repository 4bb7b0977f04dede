//! HTTPS listeners: each site's certificate chosen by the SNI the client sends (rustls
//! through pingora), h2 and http/1.1 offered by ALPN.

pub mod expiry;

use crate::config::Runtime;
use arc_swap::ArcSwap;
use pingora_core::listeners::tls::TlsSettings;
use pingora_rustls::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

/// Picks the certificate of the site that serves the SNI name, from the table of the config
/// in force (a reload replaces the table; handshakes under way keep the one they read).
#[derive(Debug)]
pub struct SniResolver {
    table: ArcSwap<SniTable>,
}

#[derive(Debug)]
struct SniTable {
    /// Lower-case host name to its site's certificate.
    by_host: HashMap<String, Arc<CertifiedKey>>,
    /// For a client naming no site: the first site's certificate, or none (refuse).
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    pub fn new(rt: &Runtime) -> SniResolver {
        SniResolver {
            table: ArcSwap::from_pointee(SniTable::new(rt)),
        }
    }

    /// Serves the certificates of `rt` to new handshakes from now on.
    pub fn replace(&self, rt: &Runtime) {
        self.table.store(Arc::new(SniTable::new(rt)));
    }

    /// The certificate for `server_name` (already lower-case, as rustls gives it).
    pub fn certificate_for(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        self.table.load().certificate_for(server_name)
    }
}

impl SniTable {
    fn new(rt: &Runtime) -> SniTable {
        let mut by_host = HashMap::new();
        for site in &rt.sites {
            if let Some(ck) = &site.tls {
                for host in &site.hosts {
                    by_host.insert(host.clone(), ck.clone());
                }
            }
        }
        let default = if rt.refuse_unknown_sni {
            None
        } else {
            rt.sites.iter().find_map(|s| s.tls.clone())
        };
        SniTable { by_host, default }
    }

    fn certificate_for(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        server_name
            .and_then(|name| self.by_host.get(name.trim_end_matches('.')))
            .or(self.default.as_ref())
            .cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(hello.server_name())
    }
}

/// pingora's settings for one HTTPS listener.
pub fn listener_settings(resolver: Arc<SniResolver>) -> pingora_error::Result<TlsSettings> {
    // The paths are unused: the resolver supplies every certificate.
    let mut settings = TlsSettings::intermediate("", "")?;
    settings.set_cert_resolver(resolver);
    settings.enable_h2();
    Ok(settings)
}
