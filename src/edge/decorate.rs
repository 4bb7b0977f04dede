//! The header fields every response gets on its way out, stored or not: `Cache-Status`
//! (RFC 9211), `Via`, HSTS over TLS, `X-Served-By`; and cache-only fields removed.

use super::{EdgeProxy, RequestCtx, CACHE_STATUS, SERVED_BY};
use crate::cache::policy;
use crate::cache::tiered::FromDisk;
use crate::cache::CacheResult;
use http::header::VIA;
use http::HeaderValue;
use pingora_cache::CachePhase;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

impl EdgeProxy {
    /// Decorates `resp` for the client; also the moment unsafe methods invalidate (before a
    /// client that reads this response can ask again).
    pub(super) fn decorate_response(
        &self,
        session: &Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let phase = session.cache.phase();
        ctx.cache_result = CacheResult::from_phase(phase, ctx.bypass);
        let stale_while_revalidate = phase == CachePhase::StaleUpdating;
        let collapsed = session.cache.enabled() && session.cache.lock_duration().is_some();
        let upstream_status = ctx.upstream_status.unwrap_or(resp.status.as_u16());
        // A hit the disk tier served says so (RFC 9211 detail), for operators and benchmarks.
        let from_disk = ctx.cache_result == CacheResult::Hit
            && !collapsed
            && session.cache.enabled()
            && session.cache.phase() == CachePhase::Hit
            && session
                .cache
                .cache_meta()
                .extensions()
                .get::<FromDisk>()
                .is_some();
        ctx.from_disk = from_disk;
        let value = if from_disk {
            Some(ctx.gen.cache_status.disk_hit())
        } else {
            ctx.gen.cache_status.value(
                ctx.cache_result,
                ctx.bypass,
                collapsed,
                stale_while_revalidate,
                upstream_status,
                ctx.not_stored,
            )
        };
        // An image variant is named as an extension parameter of this cache's entry.
        ctx.image_served = Self::take_image_variant(resp, ctx.from_peer);
        let value = match (value, ctx.image_served) {
            (Some(v), Some(image)) => {
                let mut line = v.as_bytes().to_vec();
                line.extend_from_slice(b"; image=");
                line.extend_from_slice(image.as_bytes());
                HeaderValue::from_bytes(&line).ok()
            }
            (value, _) => value,
        };
        // RFC 9211 §2: each cache appends its entry, so the caches nearer the origin (a
        // shield, or a cache at the origin) come first.
        let cache_status = value
            .map(|v| super::forwarded::appended(&resp.headers, &CACHE_STATUS, &v))
            .transpose()?;
        policy::strip_cache_only_headers(resp);
        // Before the response leaves: a client that reads it and asks again must not get the
        // invalidated copy.
        self.invalidate_after_unsafe_method(session, resp, ctx);
        let site = ctx.resolved.and_then(|r| ctx.gen.rt.sites.get(r.site));
        // RFC 6797 §7.2: only over a secure transport.
        let hsts = site.and_then(|site| site.hsts.as_ref()).filter(|_| ctx.tls);
        let served_by = match ctx.pick {
            Some(p) if ctx.gen.rt.upstream.served_by_header && ctx.upstream_status.is_some() => {
                let region = ctx.pick_region().unwrap_or("");
                HeaderValue::try_from(format!("{region}/{}", p.addr)).ok()
            }
            _ => None,
        };
        // One edit of the map itself: pingora's insert_header costs allocations per field
        // (see `fields`).
        super::fields::edit_response(resp, |fields| {
            if let Some(v) = cache_status {
                fields.insert(CACHE_STATUS, v);
            }
            fields.append(VIA, ctx.gen.rt.node.via.clone());
            if let Some(hsts) = hsts {
                fields.insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            if let Some(v) = served_by {
                fields.insert(SERVED_BY, v);
            }
        })?;
        Ok(())
    }
}
