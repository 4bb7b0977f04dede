//! Validation of `[cluster]` and `[shield]`: the cluster's name (its `CDN-Loop` entry) and the
//! parent nodes, which join the region list as one shield region, health-checked like origins.

use super::*;
use crate::config::runtime::ClusterSettings;

/// How long `POST /purge` waits for JetStream by default: well above a healthy round trip,
/// well below a client's patience.
const DEFAULT_PURGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The region name the shield nodes go by in `/status`, metrics and `X-Served-By`.
pub const SHIELD_REGION: &str = "shield";

impl Builder<'_> {
    pub(super) fn cluster(&mut self, f: &FileConfig) -> ClusterSettings {
        let Some(c) = &f.cluster else {
            return ClusterSettings::default();
        };
        let nats = self.nats_servers(c.nats.as_ref());
        let credentials = c.credentials.as_ref().and_then(|p| {
            let path = self.relative_to_config(p.get_ref());
            if path.is_file() {
                Some(path)
            } else {
                self.push(
                    p.span(),
                    "cluster.credentials",
                    format!("{} is not a readable file", path.display()),
                );
                None
            }
        });
        let purge_timeout = self.duration(
            &c.purge_timeout,
            "cluster.purge_timeout",
            DEFAULT_PURGE_TIMEOUT,
        );
        let shared_config = match &c.shared_config {
            Some(v) if *v.get_ref() && c.nats.is_none() => {
                self.push_hint(
                    v.span(),
                    "cluster.shared_config",
                    "shared_config = true and no NATS server to read it from",
                    "add nats = [\"nats://host:4222\"] to [cluster]",
                );
                false
            }
            Some(v) => *v.get_ref(),
            None => false,
        };
        let name = c.name.get_ref().trim();
        // The name is a CDN-Loop pseudonym (RFC 8586 §2: a token) and a NATS subject part.
        let usable = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        match HeaderValue::try_from(format!("meridian-{name}")) {
            Ok(cdn_id) if usable => ClusterSettings {
                name: Some(name.to_owned()),
                cdn_id,
                nats,
                credentials,
                purge_timeout,
                shared_config,
            },
            _ => {
                self.push_hint(
                    c.name.span(),
                    "cluster.name",
                    format!("{:?} is not a usable cluster name", c.name.get_ref()),
                    "use letters, digits, '-' or '_', e.g. \"prod\"",
                );
                ClusterSettings::default()
            }
        }
    }

    /// `cluster.nats`: server URLs as the NATS client takes them.
    fn nats_servers(&mut self, list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
        let Some(list) = list else {
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            self.push_hint(
                list.span(),
                "cluster.nats",
                "no NATS server is listed",
                "e.g. nats = [\"nats://127.0.0.1:4222\"], or remove the key",
            );
        }
        let mut out = Vec::new();
        for (i, s) in list.get_ref().iter().enumerate() {
            let text = s.get_ref().trim();
            match text.parse::<async_nats::ServerAddr>() {
                Ok(_) => out.push(text.to_owned()),
                Err(e) => self.push_hint(
                    s.span(),
                    format!("cluster.nats[{i}]"),
                    format!("{text:?} is not a NATS server address: {e}"),
                    "write nats://host:port",
                ),
            }
        }
        out
    }

    /// The shield region, or `None` without `[shield]`. `regions` are the ones already
    /// built, whose names the shield's must not take.
    pub(super) fn shield(&mut self, f: &FileConfig, regions: &[Region]) -> Option<Region> {
        let s = f.shield.as_ref()?;
        if let Some(r) = regions.iter().find(|r| r.name == SHIELD_REGION) {
            self.push_hint(
                s.nodes.span(),
                "shield",
                format!(
                    "a {} named {SHIELD_REGION:?} already exists, and the shield nodes go by that name",
                    if r.kind == RegionKind::DnsEdge { "dns edge" } else { "region" }
                ),
                "rename that region",
            );
        }
        if s.nodes.get_ref().is_empty() {
            self.push_hint(
                s.nodes.span(),
                "shield.nodes",
                "a shield tier needs at least one node",
                "e.g. nodes = [\"10.0.0.8:80\"], or remove [shield]",
            );
        }
        let mut origins: Vec<Origin> = Vec::with_capacity(s.nodes.get_ref().len());
        for (i, n) in s.nodes.get_ref().iter().enumerate() {
            let key = format!("shield.nodes[{i}]");
            let Some(addr) = self.origin_addr(n.get_ref().trim(), n.span(), &key) else {
                continue;
            };
            if origins.iter().any(|o| o.addr == addr) {
                self.push(n.span(), key, format!("{addr} is listed twice"));
                continue;
            }
            origins.push(Origin {
                addr,
                weight: 1,
                health_check: None,
            });
        }
        let mut health_check = self.health_check(s.health_check.as_ref(), "shield");
        // A shield is another Meridian whose "/" wants a Host it serves: by default check
        // that it accepts connections, as for DNS edges.
        if s.health_check.as_ref().is_none_or(|h| h.kind.is_none()) {
            health_check.kind = HealthCheckKind::Tcp;
        }
        Some(Region {
            name: SHIELD_REGION.to_owned(),
            location: GeoPoint { lat: 0.0, lon: 0.0 },
            origins,
            health_check,
            bias_km: 0.0,
            dns_addresses: Vec::new(),
            kind: RegionKind::Shield,
            tls: None,
            http2: false,
        })
    }

    /// A route's `shield`: default on when `[shield]` is set; on without it is an error.
    pub(super) fn route_shield(&mut self, r: &RouteFile, key: &str) -> bool {
        let has_shield = self.has_shield;
        match &r.shield {
            None => has_shield,
            Some(v) if *v.get_ref() && !has_shield => {
                self.push_hint(
                    v.span(),
                    format!("{key}.shield"),
                    "shield = true and there is no [shield] table",
                    "add [shield] nodes = [\"host:port\", ...], or remove the key",
                );
                false
            }
            Some(v) => *v.get_ref(),
        }
    }
}
