//! Where a request goes: the client's region order, and what a failed attempt teaches the
//! health view.

use super::{client, client_ip, EdgeProxy, RequestCtx, X_FORWARDED_FOR};
use crate::config::runtime::RegionChoice;
use crate::regions::select;
use pingora_proxy::Session;

impl EdgeProxy {
    /// For a "nearest" route, the route's regions ordered by distance from the client
    /// (GeoIP on its address); `None` keeps the route's order (by distance from the node).
    pub(super) fn client_region_order(
        &self,
        session: &Session,
        ctx: &RequestCtx,
    ) -> Option<Vec<usize>> {
        let geoip = ctx.gen.rt.geoip.as_ref()?;
        let route = ctx.resolved.and_then(|r| r.route(&ctx.gen.rt))?;
        if route.regions != RegionChoice::Nearest {
            return None;
        }
        let ip = client::client_ip(
            client_ip(session),
            session.req_header().headers.get_all(X_FORWARDED_FOR).iter(),
            &ctx.gen.rt.listen.trusted_proxies,
        )?;
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
