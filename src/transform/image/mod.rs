//! Image optimisation (`images = "lossless" | "lossy"`): one stored JPEG, PNG or GIF
//! re-encoded for one variant (AVIF, WebP, or its own format), on the transform pool, after
//! the fill streamed the original to its client. Blocking and CPU-heavy: never call it on a
//! proxy thread.
//!
//! What is kept: pixels (`lossless` output decodes to the same pixels), dimensions as
//! displayed (EXIF orientation applied to re-encoded pixels, kept as a tag where the pixels
//! are not touched), the ICC colour profile. What goes: every other metadata block (EXIF,
//! XMP, IPTC, comments, text chunks).

pub mod accept;
mod encode;
mod jpeg;

use crate::vocab::image::{ImageMode, ImageTarget};
use image::{ImageDecoder, ImageReader, Limits};
use std::io::Cursor;

/// A stored image's source format, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
}

impl SourceFormat {
    /// The formats Meridian optimises; anything else (SVG, WebP, AVIF, ...) passes through.
    pub fn of_media_type(media_type: &str) -> Option<SourceFormat> {
        match media_type {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(SourceFormat::Jpeg),
            "image/png" => Some(SourceFormat::Png),
            "image/gif" => Some(SourceFormat::Gif),
            _ => None,
        }
    }

    fn decoder_format(self) -> image::ImageFormat {
        match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Gif => image::ImageFormat::Gif,
        }
    }

    /// The token of the variant when it keeps this format.
    pub fn token(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
        }
    }
}

/// What to make of one image.
#[derive(Debug, Clone, Copy)]
pub struct ImageWork {
    pub source: SourceFormat,
    pub target: ImageTarget,
    pub mode: ImageMode,
    pub quality: u8,
    pub max_pixels: u64,
}

/// An image re-encoded.
#[derive(Debug)]
pub struct Optimised {
    pub body: Vec<u8>,
    pub media_type: &'static str,
    /// What the variant now holds: "avif", "webp", "jpeg" or "png".
    pub format: &'static str,
}

/// Why an image was left as the origin sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// An animated GIF: only still images are re-encoded.
    Animated,
    /// More pixels than `[images] max_pixels` (a decompression bomb, or just too large).
    TooManyPixels,
    /// Not decodable: corrupt, truncated, or a variant of the format the decoder lacks.
    Undecodable,
    /// Nothing to gain for this variant (a still GIF in its own format, say).
    NoChange,
    /// Re-encoded, but not smaller than the original.
    NotSmaller,
}

impl Kept {
    pub fn label(self) -> &'static str {
        match self {
            Kept::Animated => "animated",
            Kept::TooManyPixels => "too_many_pixels",
            Kept::Undecodable => "undecodable",
            Kept::NoChange => "no_change",
            Kept::NotSmaller => "not_smaller",
        }
    }
}

/// Re-encodes `body` for `work.target`. The caller keeps the original when the result is not
/// smaller.
pub fn optimise(work: &ImageWork, body: &[u8]) -> Result<Optimised, Kept> {
    if truncated(work.source, body) {
        return Err(Kept::Undecodable);
    }
    if work.source == SourceFormat::Gif && animated(body, work.max_pixels)? {
        return Err(Kept::Animated);
    }
    let mut decoder = decoder(work, body)?;
    let icc = decoder.icc_profile().ok().flatten();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let bits8 = matches!(
        decoder.color_type(),
        image::ColorType::L8
            | image::ColorType::La8
            | image::ColorType::Rgb8
            | image::ColorType::Rgba8
    );
    let upright = orientation == image::metadata::Orientation::NoTransforms;
    // Lossless, and lossy for formats that have no lossy path here, touch no pixel.
    match (work.mode, work.target, work.source) {
        (_, ImageTarget::Source, SourceFormat::Png) => {
            encode::png_recompressed(body, upright, max_bytes(work.max_pixels))
        }
        (ImageMode::Lossless, ImageTarget::Source, SourceFormat::Jpeg) => {
            encode::jpeg_lossless(body, orientation)
        }
        (_, ImageTarget::Source, SourceFormat::Gif) => Err(Kept::NoChange),
        (ImageMode::Lossless, ImageTarget::Modern(_), SourceFormat::Jpeg) => {
            // A JPEG's pixels are already lossy: a lossless WebP of them is larger.
            encode::jpeg_lossless(body, orientation)
        }
        (ImageMode::Lossless, ImageTarget::Modern(_), _) => {
            let pixels =
                image::DynamicImage::from_decoder(decoder).map_err(|_| Kept::Undecodable)?;
            let webp = if bits8 && upright {
                encode::webp_lossless(&pixels, icc.as_deref())
            } else {
                Err(Kept::NoChange)
            };
            let png = match work.source {
                SourceFormat::Png => {
                    encode::png_recompressed(body, upright, max_bytes(work.max_pixels))
                }
                _ => Err(Kept::NoChange),
            };
            smaller(webp, png)
        }
        (ImageMode::Lossy | ImageMode::Off, target, source) => {
            let mut pixels =
                image::DynamicImage::from_decoder(decoder).map_err(|_| Kept::Undecodable)?;
            pixels.apply_orientation(orientation);
            encode::lossy(&pixels, target, source, work.quality, icc.as_deref())
        }
    }
}

/// A decoder of `body` that has read the header, refusing more than `max_pixels` before any
/// pixel is decoded; its allocations are bounded by the pixel bound too ([`max_bytes`]).
fn decoder<'a>(work: &ImageWork, body: &'a [u8]) -> Result<impl ImageDecoder + use<'a>, Kept> {
    let mut reader = ImageReader::with_format(Cursor::new(body), work.source.decoder_format());
    reader.limits(limits(work.max_pixels));
    let decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => Kept::TooManyPixels,
        _ => Kept::Undecodable,
    })?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > work.max_pixels {
        return Err(Kept::TooManyPixels);
    }
    Ok(decoder)
}

fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_bytes(max_pixels));
    limits
}

/// What decoding `max_pixels` may allocate: 8 bytes a pixel (16-bit RGBA, the widest layout
/// the decoders produce) and a megabyte for everything else.
fn max_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).saturating_add(1 << 20)
}

/// Whether a GIF has more than one frame (reads at most two, within the pixel bound).
fn animated(body: &[u8], max_pixels: u64) -> Result<bool, Kept> {
    use image::AnimationDecoder;
    let mut decoder =
        image::codecs::gif::GifDecoder::new(Cursor::new(body)).map_err(|_| Kept::Undecodable)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(Kept::TooManyPixels);
    }
    decoder
        .set_limits(limits(max_pixels))
        .map_err(|_| Kept::TooManyPixels)?;
    let mut frames = decoder.into_frames();
    let mut count = 0;
    while count < 2 {
        match frames.next() {
            Some(Ok(_)) => count += 1,
            Some(Err(_)) => return Err(Kept::Undecodable),
            None => break,
        }
    }
    Ok(count > 1)
}

/// Whether `body` lacks its format's end marker. Decoders fill a truncated image's missing
/// rows with grey rather than fail; re-encoding that would store a damaged picture as if it
/// were whole.
fn truncated(source: SourceFormat, body: &[u8]) -> bool {
    match source {
        // EOI, allowing padding some encoders leave after it.
        SourceFormat::Jpeg => !trim_zeros(body).ends_with(&[0xFF, 0xD9]),
        // The IEND chunk: empty, with its fixed CRC.
        SourceFormat::Png => !body.ends_with(b"IEND\xAE\x42\x60\x82"),
        // The trailer byte.
        SourceFormat::Gif => trim_zeros(body).last() != Some(&0x3B),
    }
}

fn trim_zeros(body: &[u8]) -> &[u8] {
    let end = body.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &body[..end]
}

/// The smaller of two attempts (either may have failed).
fn smaller(a: Result<Optimised, Kept>, b: Result<Optimised, Kept>) -> Result<Optimised, Kept> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(if a.body.len() <= b.body.len() { a } else { b }),
        (Ok(one), Err(_)) | (Err(_), Ok(one)) => Ok(one),
        (Err(e), Err(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests;
