//! Where a request goes: the client's region order, and what a failed attempt teaches the
//! health view.

use super::{EdgeProxy, RequestCtx};
use crate::config::runtime::RegionChoice;
use crate::regions::select;

impl EdgeProxy {
    /// For a "nearest" route, the route's regions ordered by distance from the client
    /// (GeoIP on its address); `None` keeps the route's order (by distance from the node).
    pub(super) fn client_region_order(&self, ctx: &RequestCtx) -> Option<Vec<usize>> {
        let geoip = ctx.gen.rt.geoip.as_ref()?;
        let route = ctx.route()?;
        if route.regions != RegionChoice::Nearest {
            return None;
        }
        let ip = ctx.client?;
        let location = geoip.lookup(ip)?;
        Some(select::nearest_first(
            &ctx.gen.rt.regions,
            &route.region_order,
            location.point,
        ))
    }

    /// Feeds passive outlier detection with a failure of the origin this attempt used.
    pub(super) fn record_origin_failure(&self, ctx: &RequestCtx) {
        let Some(p) = ctx.pick else { return };
        if let Some(backoff) = self.view.record_failure(p.region, p.origin) {
            if let Some(c) = self.ejections.get(p.region).and_then(|r| r.get(p.origin)) {
                c.inc();
            }
            log::warn!(
                "origin {} ejected for {} after {} consecutive failures",
                p.addr,
                humantime::format_duration(backoff),
                ctx.gen.rt.upstream.ejection.after_failures
            );
        }
    }
}
