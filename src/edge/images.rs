//! Image optimisation, phase by phase: the client's variant negotiated from `Accept` with the
//! request, the image collected for the transform pool at the origin's response header, and
//! the variant served named on the way out.

use super::{EdgeProxy, RequestCtx};
use crate::cache::freshness::Storable;
use crate::transform::image::accept::negotiate;
use crate::transform::image::ImageWork;
use crate::transform::plan::plan_image;
use crate::vocab::image::{ImageFormat, ImageMode, ImageTarget, IMAGE_VARIANT, PENDING};
use http::header::ACCEPT;
use pingora_http::{RequestHeader, ResponseHeader};

impl EdgeProxy {
    /// The image variant this client gets, when its route optimises images. A shield serving
    /// an edge of its cluster takes the variant the edge chose (`x-meridian-image`), so both
    /// key the object alike.
    pub(super) fn negotiate_image(
        &self,
        req: &RequestHeader,
        ctx: &RequestCtx,
    ) -> Option<ImageTarget> {
        let mode = ctx.route()?.images;
        if mode == ImageMode::Off {
            return None;
        }
        let chosen = ctx
            .from_peer
            .then(|| req.headers.get(IMAGE_VARIANT))
            .flatten()
            .and_then(|v| target_of(v.as_bytes()))
            .filter(|t| mode == ImageMode::Lossy || *t != ImageTarget::Modern(ImageFormat::Avif));
        Some(chosen.unwrap_or_else(|| {
            negotiate(
                req.headers.get(ACCEPT).map(|v| v.as_bytes()),
                mode,
                &ctx.gen.rt.images.formats,
            )
        }))
    }

    /// Tells a shield the variant this edge chose; an origin never sees the field (a client's
    /// own is dropped).
    pub(super) fn ask_for_image(
        &self,
        upstream: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> pingora_error::Result<()> {
        upstream.remove_header(IMAGE_VARIANT);
        if let Some(target) = ctx.image.filter(|_| self.via_shield(ctx)) {
            upstream.insert_header(IMAGE_VARIANT, target.token())?;
        }
        Ok(())
    }

    /// At the origin's header: a stored image on an `images` route streams through untouched
    /// and is collected for the transform pool. True when it was planned so.
    pub(super) fn plan_image_body(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> bool {
        let (Some(target), Some(route)) = (ctx.image, ctx.route()) else {
            return false;
        };
        if !matches!(ctx.storable, Some(Storable::Yes(_))) {
            return false;
        }
        if self.via_shield(ctx) {
            // The shield makes the variants. One it has not made yet (its marker still says
            // "original") goes to this client unstored, so the edge never keeps a lesser copy.
            let pending = resp
                .headers
                .get(IMAGE_VARIANT)
                .is_some_and(|v| v.as_bytes() == PENDING.as_bytes());
            if pending {
                ctx.storable = Some(Storable::No("shield-unrefined"));
            }
            return false;
        }
        let settings = &ctx.gen.rt.images;
        let mode = route.images;
        let work = |source| ImageWork {
            source,
            target,
            mode,
            quality: settings.quality,
            max_pixels: settings.max_pixels,
        };
        match plan_image(work, ctx.gen.rt.cache.max_object_bytes, resp) {
            Some(body) => {
                ctx.body = Some(body);
                true
            }
            None => false,
        }
    }

    /// The variant a response carries (Meridian's stored marker), for `Cache-Status` and the
    /// access log; taken off the response unless it goes to an edge of this cluster.
    pub(super) fn take_image_variant(
        resp: &mut ResponseHeader,
        to_peer: bool,
    ) -> Option<&'static str> {
        let value = resp.headers.get(IMAGE_VARIANT)?;
        let served = match value.as_bytes() {
            b"avif" => "avif",
            b"webp" => "webp",
            b"jpeg" => "jpeg",
            b"png" => "png",
            // Pending, or kept as the origin sent it.
            _ => "original",
        };
        if !to_peer {
            resp.remove_header(IMAGE_VARIANT);
        }
        Some(served)
    }
}

/// The variant a shield was asked for.
fn target_of(token: &[u8]) -> Option<ImageTarget> {
    match token {
        b"avif" => Some(ImageTarget::Modern(ImageFormat::Avif)),
        b"webp" => Some(ImageTarget::Modern(ImageFormat::Webp)),
        b"source" => Some(ImageTarget::Source),
        _ => None,
    }
}
