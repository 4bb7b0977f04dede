//! Where a request goes: the client's region order, the origin for each attempt, and what a
//! failed attempt teaches the health view.

use super::{upstream, EdgeProxy, RequestCtx};
use crate::config::runtime::RegionChoice;
use crate::regions::select;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use std::sync::Arc;

impl EdgeProxy {
    /// The origin for the next attempt: nearest healthy region first (from the client's
    /// location when it is known), bounded in attempts by the cursor and in time by
    /// `upstream.total_timeout`.
    pub(super) fn next_peer(&self, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        if ctx.cursor.attempts == 0 && ctx.client_order.is_none() {
            ctx.client_order = self.client_region_order(ctx);
        }
        // Attempts are bounded in number (the cursor) and in time (here).
        if ctx.cursor.attempts > 0 && ctx.started.elapsed() >= ctx.gen.rt.upstream.total_timeout {
            return Err(Error::create(
                ErrorType::ConnectTimedout,
                ErrorSource::Upstream,
                Some("upstream.total_timeout spent before an origin answered".into()),
                None,
            ));
        }
        // Taken out for the call: the cursor is borrowed mutably beside it.
        let client_order = ctx.client_order.take();
        // Borrowed from the generation, not through `ctx`, so the cursor can move beside it.
        let gen = Arc::clone(&ctx.gen);
        let route_order = ctx
            .resolved
            .and_then(|r| r.route(&gen.rt))
            .map_or(&[][..], |route| route.region_order.as_slice());
        let order = client_order.as_deref().unwrap_or(route_order);
        let was_panic = ctx.cursor.panic;
        let pick = ctx.cursor.next(
            order,
            &ctx.gen.rt.regions,
            &self.balancers,
            &self.view,
            ctx.gen.rt.upstream.max_attempts,
        );
        ctx.client_order = client_order;
        if ctx.cursor.panic && !was_panic {
            self.site_metrics(ctx).panic.inc();
        }
        if ctx.cursor.attempts > 1 && pick.is_some() {
            self.site_metrics(ctx).retries.inc();
        }
        let Some(pick) = pick else {
            return Err(Error::create(
                ErrorType::ConnectNoRoute,
                ErrorSource::Upstream,
                Some("no origin left to try; check the route's regions and their origins".into()),
                None,
            ));
        };
        ctx.pick = Some(pick);
        Ok(upstream::http_peer(
            pick.addr,
            &ctx.gen.rt.upstream,
            ctx.gen.rt.regions.get(pick.region),
        ))
    }

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
