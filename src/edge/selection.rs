//! Where a request goes: the shield node that owns a cacheable miss, then the client's region
//! order and the origin for each attempt, and what a failed attempt teaches the health view.

use super::upstream::Pick;
use super::{upstream, EdgeProxy, RequestCtx};
use crate::config::runtime::RegionChoice;
use crate::regions::select;
use pingora_cache::key::CacheHashKey;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_proxy::Session;
use std::sync::Arc;

impl EdgeProxy {
    /// The origin for the next attempt: nearest healthy region first (from the client's
    /// location when it is known), bounded in attempts by the cursor and in time by
    /// `upstream.total_timeout`.
    pub(super) fn next_peer(&self, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let retry = ctx.pick.is_some();
        // Attempts are bounded in number (the shield's and the cursor's) and in time (here).
        if retry && ctx.started.elapsed() >= ctx.gen.rt.upstream.total_timeout {
            return Err(Error::create(
                ErrorType::ConnectTimedout,
                ErrorSource::Upstream,
                Some("upstream.total_timeout spent before an origin answered".into()),
                None,
            ));
        }
        if let Some(pick) = self.next_shield(ctx) {
            if retry {
                self.site_metrics(ctx).retries.inc();
            }
            ctx.pick = Some(pick);
            return Ok(upstream::http_peer(
                pick.addr,
                &ctx.gen.rt.upstream,
                ctx.gen.rt.regions.get(pick.region),
            ));
        }
        if ctx.cursor.attempts == 0 && ctx.client_order.is_none() {
            ctx.client_order = self.client_region_order(ctx);
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
        if retry && pick.is_some() {
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

    /// The shield nodes a request tries before the regions, in reverse (popped from the end):
    /// the owners of its cache key on the ring when its route uses the shield and the cache
    /// took it (uncacheable requests gain nothing from a parent cache); else none.
    pub(super) fn shield_parents(&self, session: &Session, ctx: &RequestCtx) -> Vec<usize> {
        let Some(ring) = &self.shield else {
            return Vec::new();
        };
        if !ctx.route().is_some_and(|r| r.shield) || !session.cache.enabled() {
            return Vec::new();
        }
        // The primary key: every variant of a URL lives on one shield, as its purges expect.
        let Some(key) = session.cache.maybe_cache_key() else {
            return Vec::new();
        };
        let mut parents = ring.parents(&key.primary_bin(), &self.view);
        parents.reverse();
        parents
    }

    /// The next shield node to try, if any is left.
    fn next_shield(&self, ctx: &mut RequestCtx) -> Option<Pick> {
        let ring = self.shield.as_ref()?;
        let node = ctx.parents.as_mut()?.pop()?;
        let addr = ctx
            .gen
            .rt
            .regions
            .get(ring.region())?
            .origins
            .get(node)?
            .addr;
        Some(Pick {
            region: ring.region(),
            origin: node,
            addr,
        })
    }

    /// Whether this attempt went to a shield node.
    pub(super) fn via_shield(&self, ctx: &RequestCtx) -> bool {
        match (&self.shield, ctx.pick) {
            (Some(ring), Some(p)) => p.region == ring.region(),
            _ => false,
        }
    }

    /// Whether another attempt is left: a shield node, or an origin.
    pub(super) fn has_next_peer(&self, ctx: &RequestCtx) -> bool {
        ctx.parents.as_ref().is_some_and(|p| !p.is_empty())
            || ctx.cursor.has_next(
                self.region_order(ctx),
                &ctx.gen.rt.regions,
                &self.view,
                ctx.gen.rt.upstream.max_attempts,
            )
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
