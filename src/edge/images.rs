//! Image optimisation, phase by phase: the client's variant negotiated from `Accept` with the
//! request, the image collected for the transform pool at the origin's response header, and
//! the variant served named on the way out.

use super::{EdgeProxy, RequestCtx};
use crate::cache::freshness::Storable;
use crate::transform::image::accept::negotiate;
use crate::transform::image::ImageWork;
use crate::transform::plan::plan_image;
use crate::vocab::image::{ImageMode, ImageTarget, IMAGE_VARIANT};
use http::header::ACCEPT;
use pingora_http::{RequestHeader, ResponseHeader};

impl EdgeProxy {
    /// The image variant this client gets, when its route optimises images.
    pub(super) fn negotiate_image(
        &self,
        req: &RequestHeader,
        ctx: &RequestCtx,
    ) -> Option<ImageTarget> {
        let mode = ctx.route()?.images;
        (mode != ImageMode::Off).then(|| {
            negotiate(
                req.headers.get(ACCEPT).map(|v| v.as_bytes()),
                mode,
                &ctx.gen.rt.images.formats,
            )
        })
    }

    /// At the origin's header: a stored image on an `images` route streams through untouched
    /// and is collected for the transform pool. True when it was planned so.
    pub(super) fn plan_image_body(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> bool {
        let (Some(target), Some(route)) = (ctx.image, ctx.route()) else {
            return false;
        };
        if !matches!(ctx.storable, Some(Storable::Yes(_))) || self.via_shield(ctx) {
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

    /// The variant a response carries (Meridian's stored marker), taken off the response:
    /// `Cache-Status` and the access log name it.
    pub(super) fn take_image_variant(resp: &mut ResponseHeader) -> Option<&'static str> {
        let value = resp.headers.get(IMAGE_VARIANT)?;
        let served = match value.as_bytes() {
            b"avif" => "avif",
            b"webp" => "webp",
            b"jpeg" => "jpeg",
            b"png" => "png",
            _ => "original",
        };
        resp.remove_header(IMAGE_VARIANT);
        Some(served)
    }
}
