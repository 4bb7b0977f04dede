//! Minification and compression, phase by phase: negotiate the client's coding, ask the
//! origin for identity, plan the body at the response header, transform it chunk by chunk.
//! For stored responses this runs once, during the cache fill; hits send the stored bytes.

use super::{EdgeProxy, RequestCtx};
use crate::cache::freshness::FreshnessDefaults;
use crate::cache::policy;
use crate::transform::negotiate::negotiate;
use crate::transform::plan::{plan, weaken_etag, Wants};
use crate::transform::Coding;
use bytes::Bytes;
use http::header::ACCEPT_ENCODING;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

impl EdgeProxy {
    /// The coding this client gets, when its route compresses.
    pub(super) fn negotiate_coding(&self, req: &RequestHeader, ctx: &RequestCtx) -> Option<Coding> {
        let route = ctx.resolved.and_then(|r| r.route(&ctx.gen.rt))?;
        route.compress.then(|| {
            negotiate(
                req.headers.get(ACCEPT_ENCODING).map(|v| v.as_bytes()),
                &route.compression.preference,
            )
        })
    }

    /// Origins of compressing routes send identity: Meridian picks the coding per client.
    pub(super) fn ask_for_identity(
        &self,
        upstream: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        if ctx.coding.is_some() {
            upstream.insert_header(ACCEPT_ENCODING, "identity")?;
        }
        Ok(())
    }

    /// Decides the body's transform at the origin's response header. Minification needs the
    /// whole body, so only stored responses get it: paid once, not on every request.
    pub(super) fn plan_body(
        &self,
        session: &Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.coding.is_none() && !ctx.minify {
            return Ok(());
        }
        if resp.status == http::StatusCode::NOT_MODIFIED {
            weaken_etag(resp);
            return Ok(());
        }
        // Stored responses are compressed hard, once; the rest fast, every time.
        let stored = session.cache.enabled()
            && policy::response_cacheability(
                session.req_header(),
                resp,
                FreshnessDefaults::default(),
            )
            .is_cacheable();
        let wants = Wants {
            coding: ctx.coding,
            minify: ctx.minify && stored,
            stored,
            max_size: ctx.gen.rt.cache.max_object_bytes,
        };
        let settings = ctx
            .resolved
            .and_then(|r| r.route(&ctx.gen.rt))
            .map_or(&ctx.gen.rt.compression, |route| &*route.compression);
        ctx.body = plan(settings, wants, resp)
            .map_err(|e| Error::because(ErrorType::InternalError, "setting up compression", e))?;
        Ok(())
    }

    /// Runs the planned transform over one chunk of the origin's body.
    pub(super) fn transform_chunk(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(t) = ctx.body.as_mut() else {
            return Ok(());
        };
        let fail = |e| {
            Error::because(
                ErrorType::HTTPStatus(502),
                "transforming the origin's body",
                e,
            )
        };
        let mut out = match body.take() {
            Some(chunk) => t.feed(&chunk).map_err(fail)?,
            None => Bytes::new(),
        };
        if end_of_stream {
            let (last, outcome) = t.finish().map_err(fail)?;
            if let Some(outcome) = outcome {
                self.minify_metrics.observe(outcome);
            }
            out = if out.is_empty() {
                last
            } else {
                [out, last].concat().into()
            };
        }
        *body = (!out.is_empty()).then_some(out);
        Ok(())
    }
}
