//! The encoders behind [`super::optimise`], one per output, each keeping the ICC profile.

use super::{Kept, Optimised, SourceFormat};
use crate::vocab::image::{ImageFormat, ImageTarget};
use image::{DynamicImage, ImageEncoder};
use img_parts::{Bytes, ImageEXIF, ImageICC};

#[cfg(test)]
mod tests;

/// oxipng at its preset 2 (the CLI's default): filters and reductions tried, libdeflate
/// at a high level, no zopfli (tens of times slower for a few percent).
const OXIPNG_PRESET: u8 = 2;
/// How long oxipng may try filters and reductions on one image.
const OXIPNG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// libwebp's effort (0-6): 4 is its default, the usual size/time balance.
const WEBP_METHOD: i32 = 4;
/// rav1e's speed (1-10): 8 keeps a 1-megapixel photograph near a second on one core without
/// its assembly, at a few percent in size over slower settings.
#[cfg(feature = "avif")]
const AVIF_SPEED: u8 = 8;

/// A PNG re-deflated by oxipng: the same pixels, smaller. Chunks that do not change how it
/// displays go (text, time, EXIF), unless the image is rotated by its EXIF tag. oxipng
/// inflates the image itself: `max_bytes` holds it to the pixel bound the decoders keep.
pub(super) fn png_recompressed(
    body: &[u8],
    upright: bool,
    max_bytes: u64,
) -> Result<Optimised, Kept> {
    let mut opts = oxipng::Options::from_preset(OXIPNG_PRESET);
    opts.max_decompressed_size = Some(usize::try_from(max_bytes).unwrap_or(usize::MAX));
    // A pool worker is shared: past this oxipng keeps the best attempt so far.
    opts.timeout = Some(OXIPNG_TIMEOUT);
    opts.strip = if upright {
        oxipng::StripChunks::Safe
    } else {
        oxipng::StripChunks::None
    };
    let body = oxipng::optimize_from_memory(body, &opts).map_err(|_| Kept::Undecodable)?;
    Ok(Optimised {
        body,
        media_type: "image/png",
        format: "png",
    })
}

/// A JPEG made smaller without touching a pixel: its metadata segments dropped (EXIF, XMP,
/// IPTC and comments go; the ICC profile stays, and a rotating EXIF orientation is written
/// back alone, as the pixels are not turned) and, when it is sequential, its entropy-coded
/// data re-coded with optimal Huffman tables ([`super::jpeg`], jpegtran's `-optimize`).
pub(super) fn jpeg_lossless(
    body: &[u8],
    orientation: image::metadata::Orientation,
) -> Result<Optimised, Kept> {
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(Bytes::copy_from_slice(body))
        .map_err(|_| Kept::Undecodable)?;
    let icc = jpeg.icc_profile();
    // APP1 (EXIF, XMP), APP2 (ICC: set again below), APP3-APP15 (vendor, IPTC), COM.
    for marker in (0xE1..=0xEF).chain([0xFE]) {
        jpeg.remove_segments_by_marker(marker);
    }
    jpeg.set_icc_profile(icc);
    if orientation != image::metadata::Orientation::NoTransforms {
        jpeg.set_exif(Some(Bytes::from(orientation_exif(orientation.to_exif()))));
    }
    let mut stripped = Vec::with_capacity(body.len());
    jpeg.encoder()
        .write_to(&mut stripped)
        .map_err(|_| Kept::Undecodable)?;
    // Progressive files (whose tables are optimal already) and anything the re-coder does
    // not follow keep their coding.
    let body = super::jpeg::optimise_huffman(&stripped)
        .filter(|recoded| recoded.len() < stripped.len())
        .unwrap_or(stripped);
    Ok(Optimised {
        body,
        media_type: "image/jpeg",
        format: "jpeg",
    })
}

/// The smallest EXIF block that says one thing, the orientation: a little-endian TIFF header
/// and one IFD with tag 0x0112 (SHORT).
fn orientation_exif(value: u8) -> Vec<u8> {
    let mut exif = Vec::with_capacity(26);
    exif.extend_from_slice(b"II*\0");
    exif.extend_from_slice(&8u32.to_le_bytes()); // the IFD follows the header
    exif.extend_from_slice(&1u16.to_le_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_le_bytes());
    exif.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&u16::from(value).to_le_bytes());
    exif.extend_from_slice(&[0, 0]); // the value field is 4 bytes
    exif.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    exif
}

/// Lossless WebP of 8-bit pixels (exact: colours under full transparency kept too).
pub(super) fn webp_lossless(pixels: &DynamicImage, icc: Option<&[u8]>) -> Result<Optimised, Kept> {
    let mut config = webp::WebPConfig::new().map_err(|()| Kept::NoChange)?;
    config.lossless = 1;
    config.exact = 1;
    config.method = WEBP_METHOD;
    config.quality = 75.0;
    webp(pixels, &config, icc)
}

/// The lossy outputs: AVIF or WebP at `quality`, or the source format (JPEG re-encoded at
/// `quality`; a PNG is never made lossy, and a still GIF keeps its bytes).
pub(super) fn lossy(
    pixels: &DynamicImage,
    target: ImageTarget,
    source: SourceFormat,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Optimised, Kept> {
    match target {
        ImageTarget::Modern(ImageFormat::Webp) => {
            let mut config = webp::WebPConfig::new().map_err(|()| Kept::NoChange)?;
            config.quality = f32::from(quality);
            config.method = WEBP_METHOD;
            webp(pixels, &config, icc)
        }
        // ravif writes no ICC profile: an image that has one keeps its own format, where the
        // profile is carried, rather than shift colours.
        ImageTarget::Modern(ImageFormat::Avif) if icc.is_none() => avif(pixels, quality),
        _ => match source {
            SourceFormat::Jpeg => jpeg(pixels, quality, icc),
            SourceFormat::Png | SourceFormat::Gif => Err(Kept::NoChange),
        },
    }
}

fn webp(
    pixels: &DynamicImage,
    config: &webp::WebPConfig,
    icc: Option<&[u8]>,
) -> Result<Optimised, Kept> {
    let (w, h) = (pixels.width(), pixels.height());
    let encoded = if pixels.color().has_alpha() {
        let rgba = pixels.to_rgba8();
        webp::Encoder::from_rgba(rgba.as_raw(), w, h).encode_advanced(config)
    } else {
        let rgb = pixels.to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), w, h).encode_advanced(config)
    }
    .map_err(|_| Kept::NoChange)?;
    let mut body = encoded.to_vec();
    if let Some(icc) = icc {
        let mut riff =
            img_parts::webp::WebP::from_bytes(Bytes::from(body)).map_err(|_| Kept::NoChange)?;
        riff.set_icc_profile(Some(Bytes::copy_from_slice(icc)));
        body = Vec::new();
        riff.encoder()
            .write_to(&mut body)
            .map_err(|_| Kept::NoChange)?;
    }
    Ok(Optimised {
        body,
        media_type: "image/webp",
        format: "webp",
    })
}

fn jpeg(pixels: &DynamicImage, quality: u8, icc: Option<&[u8]>) -> Result<Optimised, Kept> {
    let rgb = pixels.to_rgb8();
    let mut body = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut body, quality.max(1));
    if let Some(icc) = icc {
        encoder
            .set_icc_profile(icc.to_vec())
            .map_err(|_| Kept::NoChange)?;
    }
    encoder
        .write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|_| Kept::NoChange)?;
    Ok(Optimised {
        body,
        media_type: "image/jpeg",
        format: "jpeg",
    })
}

#[cfg(feature = "avif")]
fn avif(pixels: &DynamicImage, quality: u8) -> Result<Optimised, Kept> {
    let (w, h) = (pixels.width() as usize, pixels.height() as usize);
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED)
        .with_num_threads(Some(1));
    let encoded = if pixels.color().has_alpha() {
        let rgba: Vec<ravif::RGBA8> = pixels
            .to_rgba8()
            .pixels()
            .map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3]))
            .collect();
        encoder.encode_rgba(ravif::Img::new(&rgba[..], w, h))
    } else {
        let rgb: Vec<ravif::RGB8> = pixels
            .to_rgb8()
            .pixels()
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        encoder.encode_rgb(ravif::Img::new(&rgb[..], w, h))
    }
    .map_err(|_| Kept::NoChange)?;
    Ok(Optimised {
        body: encoded.avif_file,
        media_type: "image/avif",
        format: "avif",
    })
}

#[cfg(not(feature = "avif"))]
fn avif(_pixels: &DynamicImage, _quality: u8) -> Result<Optimised, Kept> {
    Err(Kept::NoChange)
}
