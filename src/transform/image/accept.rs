//! From a request's `Accept` to the image variant the client gets: a closed set (AVIF, WebP,
//! or the source format), so no `Accept` value makes a new stored object.

use crate::vocab::image::{ImageFormat, ImageMode, ImageTarget};

/// The variant for a client: the first of `formats` its `Accept` lists by name (q above 0),
/// else the source format. Wildcards (`image/*`, `*/*`) do not count: browsers send them
/// whatever they decode, and the ones that decode WebP or AVIF say so by name, as Cloudflare
/// Polish and imgproxy read it. `lossless` never offers AVIF (its encoder here is lossy only).
pub fn negotiate(accept: Option<&[u8]>, mode: ImageMode, formats: &[ImageFormat]) -> ImageTarget {
    let Some(header) = accept.and_then(|h| std::str::from_utf8(h).ok()) else {
        return ImageTarget::Source;
    };
    formats
        .iter()
        .copied()
        .filter(|&f| available(f) && (mode == ImageMode::Lossy || f == ImageFormat::Webp))
        .find(|f| lists(header, f.media_type()))
        .map_or(ImageTarget::Source, ImageTarget::Modern)
}

/// Whether this build can encode `format` (AVIF is the `avif` cargo feature).
pub fn available(format: ImageFormat) -> bool {
    match format {
        ImageFormat::Avif => cfg!(feature = "avif"),
        ImageFormat::Webp => true,
    }
}

/// Whether `header` lists `media_type` with a weight above 0.
fn lists(header: &str, media_type: &str) -> bool {
    header.split(',').any(|element| {
        let mut parts = element.split(';');
        let name = parts.next().unwrap_or("").trim();
        name.eq_ignore_ascii_case(media_type)
            && parts.all(|p| match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("q") => {
                    v.trim().parse::<f32>().is_ok_and(|q| q > 0.0)
                }
                _ => true,
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [ImageFormat; 2] = [ImageFormat::Avif, ImageFormat::Webp];

    fn pick(accept: &str, mode: ImageMode) -> &'static str {
        negotiate(Some(accept.as_bytes()), mode, &BOTH).token()
    }

    #[test]
    fn formats_are_offered_in_the_configured_order_to_clients_that_name_them() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        let avif = if cfg!(feature = "avif") {
            "avif"
        } else {
            "webp"
        };
        assert_eq!(pick(chrome, ImageMode::Lossy), avif);
        assert_eq!(pick("image/webp,*/*", ImageMode::Lossy), "webp");
        assert_eq!(pick("IMAGE/WEBP", ImageMode::Lossy), "webp");
        let webp_first = [ImageFormat::Webp, ImageFormat::Avif];
        assert_eq!(
            negotiate(Some(chrome.as_bytes()), ImageMode::Lossy, &webp_first).token(),
            "webp"
        );
        assert_eq!(
            negotiate(Some(chrome.as_bytes()), ImageMode::Lossy, &[]).token(),
            "source"
        );
    }

    #[test]
    fn wildcards_zero_weights_and_absent_headers_get_the_source_format() {
        assert_eq!(pick("image/*,*/*;q=0.8", ImageMode::Lossy), "source");
        assert_eq!(
            pick("image/webp;q=0, image/avif;q=0", ImageMode::Lossy),
            "source"
        );
        assert_eq!(pick("", ImageMode::Lossy), "source");
        assert_eq!(negotiate(None, ImageMode::Lossy, &BOTH).token(), "source");
        assert_eq!(
            negotiate(Some(&[0xff, 0xfe]), ImageMode::Lossy, &BOTH).token(),
            "source"
        );
    }

    #[test]
    fn lossless_never_offers_avif() {
        assert_eq!(pick("image/avif,image/webp", ImageMode::Lossless), "webp");
        assert_eq!(pick("image/avif", ImageMode::Lossless), "source");
    }

    #[test]
    fn a_thousand_distinct_accept_values_make_at_most_three_variants() {
        let distinct: std::collections::HashSet<&str> = (0..1000)
            .map(|i| {
                format!(
                    "image/{},text/x-{i};q=0.{i:03},image/webp;q=0.{}",
                    if i % 2 == 0 { "avif" } else { "png" },
                    i % 3
                )
            })
            .map(|h| pick(&h, ImageMode::Lossy))
            .collect();
        assert!(distinct.len() <= 3, "{distinct:?}");
    }
}
