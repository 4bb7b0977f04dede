//! The image branch of the body plan: a JPEG, PNG or GIF on an `images` route streams to its
//! client as the origin sent it and is collected whole for the transform pool, whose
//! re-encoded variant then replaces the stored copy.

use super::{
    media_type, no_transform, weaken_etag_in, BodyTransform, Deferred, DeferredJob, Refined, Work,
};
use crate::transform::image::{optimise, ImageWork, Kept, SourceFormat};
use crate::vocab::image::{IMAGE_VARIANT, KEPT, PENDING};
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{HeaderName, HeaderValue};
use pingora_http::ResponseHeader;

/// How an image job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOutcome {
    /// Re-encoded to this format ("avif", "webp", "jpeg", "png").
    Optimised(&'static str),
    /// Left as it was.
    Kept(Kept),
}

/// Plans a stored response on an `images` route: `None` unless it is a 200 JPEG, PNG or GIF
/// that allows transformation, is not content-coded, is not negotiated by the origin itself
/// (`Vary: Accept` already), and is declared no larger than `max_size`.
pub fn plan_image(
    work: impl FnOnce(SourceFormat) -> ImageWork,
    max_size: usize,
    resp: &mut ResponseHeader,
) -> Option<BodyTransform> {
    if resp.status != http::StatusCode::OK || no_transform(resp) {
        return None;
    }
    let source = SourceFormat::of_media_type(&media_type(resp))?;
    let coded = resp
        .headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if coded || varies_on_accept(resp) {
        return None;
    }
    let declared = resp
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_size as u64) {
        return None;
    }
    // From here the stored object depends on Accept, through the variant Meridian chose.
    resp.append_header(VARY, "Accept").ok()?;
    resp.insert_header(IMAGE_VARIANT, PENDING).ok()?;
    let mut fields = Vec::new();
    weaken_etag_in(resp, &mut fields, true);
    Some(BodyTransform {
        decoder: None,
        minify: None,
        encoder: None,
        deferred: Some(Deferred {
            job: DeferredJob {
                work: Work::Image(work(source)),
                fields,
                chunks: Vec::new(),
                len: 0,
            },
            limit: max_size,
            gave_up: false,
        }),
        bytes_out: 0,
        bytes_in: 0,
    })
}

/// Runs an image job: the re-encoded body with its header fields, or, when the image is kept
/// (nothing smaller came of it), the original marked [`KEPT`], so that an edge behind this
/// node knows the variant is final.
pub(super) fn run(
    work: &ImageWork,
    whole: Vec<u8>,
    mut fields: Vec<(HeaderName, HeaderValue)>,
) -> Refined {
    let marker = HeaderName::from_static(IMAGE_VARIANT);
    let outcome = match optimise(work, &whole) {
        Ok(done) if done.body.len() < whole.len() => Ok(done),
        Ok(_) => Err(Kept::NotSmaller),
        Err(kept) => Err(kept),
    };
    match outcome {
        Ok(done) => {
            fields.push((CONTENT_TYPE, HeaderValue::from_static(done.media_type)));
            fields.push((marker, HeaderValue::from_static(done.format)));
            Refined {
                body: Bytes::from(done.body),
                fields,
                minified: None,
                image: Some(ImageOutcome::Optimised(done.format)),
            }
        }
        Err(kept) => Refined {
            body: Bytes::from(whole),
            // The origin's bytes and validator: only the marker changes.
            fields: vec![(marker, HeaderValue::from_static(KEPT))],
            minified: None,
            image: Some(ImageOutcome::Kept(kept)),
        },
    }
}

fn varies_on_accept(resp: &ResponseHeader) -> bool {
    resp.headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|f| f.trim() == "*" || f.trim().eq_ignore_ascii_case("accept"))
        })
    })
}
