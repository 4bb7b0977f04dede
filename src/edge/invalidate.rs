//! RFC 9111 §4.4: successful unsafe requests invalidate what the cache holds for them.

use super::{EdgeProxy, RequestCtx};
use crate::cache::{policy, target, PurgeMode};
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
        let https = ctx.tls;
        let target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut targets = vec![(https, target.to_owned())];
        for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
            if let Some(t) = resp
                .headers
                .get(&name)
                .and_then(|v| policy::same_host_target(v.as_bytes(), host))
            {
                targets.push((t.https.unwrap_or(https), t.target));
            }
        }
        let Some(site) = ctx.gen.rt.sites.get(resolved.site) else {
            return;
        };
        for (https, target) in targets {
            // Each target is keyed by the rule of the route that serves it, on its normalised
            // path (a Location may spell it differently); only caching routes hold anything.
            match target::keyed_target(site, https, host, &target) {
                Ok(keyed) if keyed.route.is_some_and(|r| r.cache) => {
                    self.storage.purge_url(&keyed.url, PurgeMode::Hard);
                }
                _ => {}
            }
        }
    }
}
