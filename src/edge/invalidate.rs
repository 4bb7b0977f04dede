//! RFC 9111 §4.4: successful unsafe requests invalidate what the cache holds for them.

use super::{EdgeProxy, RequestCtx};
use crate::cache::policy;
use crate::cache::PurgeMode;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

impl EdgeProxy {
    /// RFC 9111 §4.4: a successful unsafe request invalidates its target URI and the
    /// same-host URIs in Location and Content-Location.
    pub(super) fn invalidate_after_unsafe_method(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &RequestCtx,
    ) {
        let req = session.req_header();
        let status = resp.status.as_u16();
        if !(200..400).contains(&status) || !policy::invalidates(&req.method) {
            return;
        }
        let Some(resolved) = ctx.resolved else { return };
        let host = resolved.host(&ctx.gen.rt);
        let target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut targets = vec![target.to_owned()];
        for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
            if let Some(t) = resp
                .headers
                .get(&name)
                .and_then(|v| policy::same_host_target(v.as_bytes(), host))
            {
                targets.push(t);
            }
        }
        let site = ctx.gen.rt.sites.get(resolved.site);
        for t in targets {
            // Each target is keyed by the rule of the route that serves it.
            let path = t.split('?').next().unwrap_or("/");
            if let Some(route) = site
                .and_then(|s| s.route_for_path(path))
                .filter(|r| r.cache)
            {
                let url = policy::cache_url("http", host, &t, &route.cache_key);
                self.storage.purge_url(&url, PurgeMode::Hard);
            }
        }
    }
}
