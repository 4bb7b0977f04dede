//! Minification and compression, phase by phase: negotiate the client's coding, ask the
//! origin for identity, plan the body at the response header, transform it chunk by chunk.
//! For stored responses this runs once, during the cache fill; hits send the stored bytes.

use super::{EdgeProxy, RequestCtx};
use crate::cache::freshness::{FreshnessDefaults, Storable};
use crate::cache::Refinement;
use crate::metrics::transform::JobResult;
use crate::transform::negotiate::negotiate;
use crate::transform::plan::{plan, weaken_etag, DeferredJob, ImageOutcome, Wants};
use crate::transform::pool::QueueFull;
use crate::vocab::Coding;
use bytes::Bytes;
use http::header::ACCEPT_ENCODING;
use pingora_cache::key::CacheHashKey;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

impl EdgeProxy {
    /// Whether the origin's `resp` may be stored, under the route's defaults.
    pub(super) fn storable(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &RequestCtx,
    ) -> Storable {
        let defaults = FreshnessDefaults {
            stale_if_error: ctx
                .route()
                .map_or(Duration::ZERO, |route| route.stale_if_error),
        };
        crate::cache::freshness::evaluate(
            &session.req_header().headers,
            resp.status.as_u16(),
            &resp.headers,
            SystemTime::now(),
            defaults,
        )
    }

    /// Queues a large fill's whole-body work on the transform pool. When it is done, the
    /// smaller body replaces what the fill stored (`stored_len` bytes), unless the object was
    /// purged or rewritten meanwhile; the client of the fill already has its response.
    /// `parent` is the request's server span, when it is traced: the job gets a span of its
    /// own under it.
    fn defer(
        &self,
        session: &Session,
        job: DeferredJob,
        stored_len: u64,
        parent: Option<(u128, u64)>,
    ) {
        let Some(key) = session
            .cache
            .maybe_cache_key()
            .filter(|_| session.cache.enabled())
        else {
            return;
        };
        // Only the request writing the fill has a ticket: nothing is stored otherwise.
        let Some(ticket) = self.storage.memory().fill_ticket(&key.combined_bin()) else {
            return;
        };
        let metrics = Arc::clone(&self.metrics.transform);
        let all_metrics = Arc::clone(&self.metrics);
        let minify_metrics = Arc::clone(&self.minify_metrics);
        let storage = self.storage.memory();
        let pool = Arc::clone(&self.pool);
        let traced = self.telemetry.clone().zip(parent);
        let queued_at = SystemTime::now();
        let submitted = self.pool.submit(job.cost(), move || job.run());
        metrics.queued_bytes.set(gauge(pool.queued_bytes()));
        match submitted {
            Err(QueueFull) => metrics.observe(JobResult::QueueFull),
            Ok(running) => {
                tokio::spawn(async move {
                    let mut refined_bytes = None;
                    let result = match running.await {
                        Some(Ok(refined)) => {
                            if let Some(outcome) = refined.minified {
                                minify_metrics.observe(outcome);
                            }
                            let image = refined.image;
                            // A kept image is stored again as it is, marked final.
                            let kept = matches!(image, Some(ImageOutcome::Kept(_)));
                            let refinement = Refinement {
                                body: refined.body,
                                fields: refined.fields,
                            };
                            let refined_len = refinement.body.len() as u64;
                            refined_bytes = Some(refined_len);
                            let result = if refined_len >= stored_len && !kept {
                                JobResult::NotSmaller
                            } else if !storage.refine(ticket, refinement) {
                                JobResult::Stale
                            } else if kept {
                                JobResult::NotSmaller
                            } else {
                                all_metrics.traffic.transform_in.inc_by(stored_len);
                                all_metrics.traffic.transform_out.inc_by(refined_len);
                                JobResult::Refined
                            };
                            match image {
                                Some(ImageOutcome::Optimised(format))
                                    if result == JobResult::Refined =>
                                {
                                    all_metrics.images.observe("optimised");
                                    all_metrics.images.saved(format, stored_len, refined_len);
                                }
                                Some(ImageOutcome::Kept(why)) => {
                                    all_metrics.images.observe(why.label());
                                }
                                _ => {}
                            }
                            result
                        }
                        Some(Err(e)) => {
                            log::debug!("deferred transform failed: {e}");
                            JobResult::Failed
                        }
                        None => JobResult::Failed,
                    };
                    metrics.observe(result);
                    metrics.queued_bytes.set(gauge(pool.queued_bytes()));
                    if let Some((telemetry, parent)) = traced {
                        let mut attributes = vec![
                            opentelemetry::KeyValue::new(
                                "meridian.transform.bytes_in",
                                gauge(stored_len),
                            ),
                            opentelemetry::KeyValue::new(
                                "meridian.transform.result",
                                result.label(),
                            ),
                        ];
                        if let Some(out) = refined_bytes {
                            attributes.push(opentelemetry::KeyValue::new(
                                "meridian.transform.bytes_out",
                                gauge(out),
                            ));
                        }
                        crate::telemetry::spans::record_child(
                            &telemetry,
                            parent,
                            "transform.deferred",
                            queued_at,
                            attributes,
                        );
                    }
                });
            }
        }
    }

    /// The coding this client gets, when its route compresses.
    pub(super) fn negotiate_coding(&self, req: &RequestHeader, ctx: &RequestCtx) -> Option<Coding> {
        let route = ctx.route()?;
        route.compress.then(|| {
            negotiate(
                req.headers.get(ACCEPT_ENCODING).map(|v| v.as_bytes()),
                &route.compression.preference,
            )
        })
    }

    /// Origins of compressing routes send identity: Meridian picks the coding per client. A
    /// shield node is asked for the client's negotiated coding instead: it compresses (and
    /// minifies) once for every edge, and its answer is this client's variant as it stands.
    pub(super) fn ask_for_coding(
        &self,
        upstream: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        if let Some(coding) = ctx.coding {
            let wanted = if self.via_shield(ctx) {
                coding.token()
            } else {
                "identity"
            };
            upstream.insert_header(ACCEPT_ENCODING, wanted)?;
        }
        Ok(())
    }

    /// Decides the body's transform at the origin's response header. Minification needs the
    /// whole body, so only stored responses get it: paid once, not on every request.
    pub(super) fn plan_body(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        if self.plan_image_body(resp, ctx) {
            return Ok(());
        }
        let minify = ctx.route().is_some_and(|r| r.minify);
        if ctx.coding.is_none() && !minify {
            return Ok(());
        }
        if resp.status == http::StatusCode::NOT_MODIFIED {
            weaken_etag(resp);
            return Ok(());
        }
        // Stored responses are compressed hard, once; the rest fast, every time.
        let stored = matches!(ctx.storable, Some(Storable::Yes(_)));
        let wants = Wants {
            coding: ctx.coding,
            minify: minify && stored,
            stored,
            max_size: ctx.gen.rt.cache.max_object_bytes,
        };
        let settings = ctx
            .route()
            .map_or(&ctx.gen.rt.compression, |route| &*route.compression);
        if self.via_shield(ctx) {
            // The shield did the work: its answer passes as it is. One that still wants work
            // (a large fill the shield serves as it came while its pool compresses it) goes
            // to this client unstored, so the edge never keeps or remakes a lesser copy. Only
            // the coding tells: a minified body looks like any other.
            let coding_only = Wants {
                minify: false,
                ..wants
            };
            let would_transform = plan(settings, coding_only, &mut resp.clone())
                .map_err(|e| Error::because(ErrorType::InternalError, "planning the body", e))?
                .is_some();
            if would_transform && stored {
                ctx.storable = Some(Storable::No("shield-unrefined"));
            }
            return Ok(());
        }
        ctx.body = plan(settings, wants, resp)
            .map_err(|e| Error::because(ErrorType::InternalError, "setting up compression", e))?;
        if ctx.body.is_some() && ctx.spans.is_some() {
            ctx.transform_started = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Runs the planned transform over one chunk of the origin's body; at its end, hands the
    /// whole-body work of a large fill to the transform pool.
    pub(super) fn transform_chunk(
        &self,
        session: &Session,
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
            Some(chunk) => t.feed(chunk).map_err(fail)?,
            None => Bytes::new(),
        };
        if end_of_stream {
            let (last, outcome) = t.finish().map_err(fail)?;
            if let Some(outcome) = outcome {
                self.minify_metrics.observe(outcome);
            }
            let stored_len = t.bytes_out() + last.len() as u64;
            let bytes_in = t.bytes_in();
            let deferred = match t.take_deferred() {
                Some(job) => {
                    let parent = ctx.spans.as_ref().map(|s| s.ids());
                    self.defer(session, job, stored_len, parent);
                    true
                }
                None => {
                    self.metrics.traffic.transform_in.inc_by(bytes_in);
                    self.metrics.traffic.transform_out.inc_by(stored_len);
                    false
                }
            };
            out = if out.is_empty() {
                last
            } else {
                [out, last].concat().into()
            };
            if ctx.spans.is_some() {
                let started = ctx.transform_started.map_or_else(SystemTime::now, |t| {
                    SystemTime::now()
                        .checked_sub(t.elapsed())
                        .unwrap_or_else(SystemTime::now)
                });
                let coding = ctx.coding.map_or("identity", Coding::token);
                self.span_transform(
                    ctx,
                    started,
                    vec![
                        opentelemetry::KeyValue::new(
                            "meridian.transform.bytes_in",
                            gauge(bytes_in),
                        ),
                        opentelemetry::KeyValue::new(
                            "meridian.transform.bytes_out",
                            gauge(stored_len),
                        ),
                        opentelemetry::KeyValue::new("meridian.transform.coding", coding),
                        opentelemetry::KeyValue::new("meridian.transform.deferred", deferred),
                    ],
                );
            }
        }
        *body = (!out.is_empty()).then_some(out);
        Ok(())
    }
}

fn gauge(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
