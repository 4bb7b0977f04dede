//! Validation of `[[dns.edges]]`: edge nodes that geo records answer, health-checked like
//! regions (they join the region list, after every route has taken its regions).

use super::*;
use crate::config::file::EdgeFile;

impl Builder<'_> {
    pub(super) fn dns_edges(&mut self, f: &FileConfig, regions: &[Region]) -> Vec<Region> {
        let Some(dns) = &f.dns else {
            return Vec::new();
        };
        let mut names: HashMap<String, String> = regions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), format!("regions[{i}]")))
            .collect();
        let mut out = Vec::with_capacity(dns.edges.len());
        for (i, e) in dns.edges.iter().enumerate() {
            let key = format!("dns.edges[{i}]");
            let name = e.name.get_ref().trim();
            if name.is_empty() {
                self.push(e.name.span(), format!("{key}.name"), "edge name is empty");
            } else if let Some(first) = names.insert(name.to_owned(), key.clone()) {
                self.push(
                    e.name.span(),
                    format!("{key}.name"),
                    format!("{name:?} is already the name of {first}"),
                );
            }
            if let Some(edge) = self.edge(e, &key, name) {
                out.push(edge);
            }
        }
        out
    }

    fn edge(&mut self, e: &EdgeFile, key: &str, name: &str) -> Option<Region> {
        let location = self.location(&e.location, &format!("{key}.location"));
        let addresses = self.ip_list(Some(&e.addresses), &format!("{key}.addresses"));
        if e.addresses.get_ref().is_empty() {
            self.push_hint(
                e.addresses.span(),
                format!("{key}.addresses"),
                "an edge needs at least one address",
                "e.g. addresses = [\"192.0.2.21\"]",
            );
        }
        let mut health_check = self.health_check(e.health_check.as_ref(), key);
        // An edge is usually another front door, whose "/" wants a Host it serves: by default
        // check that it accepts connections.
        if e.health_check.as_ref().is_none_or(|h| h.kind.is_none()) {
            health_check.kind = HealthCheckKind::Tcp;
        }
        let check = match &e.check {
            Some(c) => self.origin_addr(c.get_ref(), c.span(), &format!("{key}.check"))?,
            None => SocketAddr::new(*addresses.first()?, 80),
        };
        Some(Region {
            name: name.to_owned(),
            location,
            origins: vec![Origin {
                addr: check,
                weight: 1,
                health_check: None,
            }],
            health_check,
            bias_km: 0.0,
            dns_addresses: addresses,
            kind: RegionKind::DnsEdge,
            tls: None,
            http2: false,
        })
    }
}
