//! The DNS part of the admin `/status`: each geo record's candidates with their health, and
//! what it answers right now for clients at sample locations.

use super::geo_answer::choose;
use super::handler::DnsHandler;
use super::zone::{Candidates, GeoNode};
use crate::geo::distance::GeoPoint;
use serde_json::{json, Value};

impl DnsHandler {
    /// JSON for `/status`.
    pub fn status(&self) -> Value {
        let rt = self.runtime();
        let mut geo: Vec<&GeoNode> = self.zones().geo_nodes().collect();
        geo.sort_by(|a, b| a.label.cmp(&b.label));
        // Samples: the node itself (clients GeoIP cannot place) and each region's own spot.
        let mut samples: Vec<(String, GeoPoint)> = vec![("node".into(), rt.node.location)];
        samples.extend(
            rt.regions
                .iter()
                .map(|r| (format!("near {}", r.name), r.location)),
        );
        json!({
            "listen": rt.dns.as_ref().map(|d| d.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
            "zones": self.zones().apexes().map(|a| a.to_string()).collect::<Vec<_>>(),
            "geo_records": geo.iter().map(|g| json!({
                "name": g.label,
                "ttl": g.ttl,
                "answers": g.answers,
                "candidates": g.regions.iter().filter_map(|&id| {
                    let r = rt.regions.get(id)?;
                    Some(json!({
                        "region": r.name,
                        "usable": self.view().region_usable(id),
                        "addresses": r.dns_addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    }))
                }).collect::<Vec<_>>(),
                "answer_for": samples.iter().map(|(name, point)| {
                    let mut addrs = self.sample(&g.v4, g.answers, *point);
                    addrs.extend(self.sample(&g.v6, g.answers, *point));
                    (name.clone(), json!(addrs))
                }).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        })
    }

    fn sample(&self, candidates: &Candidates, answers: usize, from: GeoPoint) -> Vec<String> {
        if candidates.regions.is_empty() {
            return Vec::new();
        }
        let choice = choose(
            candidates,
            answers,
            &self.runtime().regions,
            self.view(),
            from,
        );
        let records: Vec<_> = if choice.none_healthy && !candidates.fallback.is_empty() {
            candidates.fallback.iter().collect()
        } else {
            choice
                .picked
                .iter()
                .filter_map(|&i| candidates.records.get(i))
                .flatten()
                .collect()
        };
        records.iter().map(|r| r.data.to_string()).collect()
    }
}
