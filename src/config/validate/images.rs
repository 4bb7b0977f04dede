//! Validation of `[images]` and of a route's `images` key.

use super::*;
use crate::config::runtime::ImageSettings;
use crate::vocab::image::{ImageFormat, ImageMode};

/// Measured on benches/images/: at 85 every photograph's WebP is at least 30 % smaller than its
/// JPEG with SSIM at least 0.95; at 80 a detailed landscape fell to 0.933.
const DEFAULT_QUALITY: i64 = 85;
/// 40 megapixels: a 7,300 x 5,500 photograph, 160 MiB decoded as RGBA.
const DEFAULT_MAX_PIXELS: i64 = 40_000_000;

impl Builder<'_> {
    pub(super) fn images(&mut self, f: &FileConfig) -> ImageSettings {
        let Some(i) = &f.images else {
            return ImageSettings {
                formats: vec![ImageFormat::Avif, ImageFormat::Webp],
                quality: DEFAULT_QUALITY as u8,
                max_pixels: DEFAULT_MAX_PIXELS as u64,
            };
        };
        let mut formats = Vec::new();
        match &i.formats {
            None => formats.extend([ImageFormat::Avif, ImageFormat::Webp]),
            Some(list) => {
                for name in list.get_ref() {
                    match ImageFormat::from_keyword(name.get_ref()) {
                        Some(format) if formats.contains(&format) => self.push(
                            name.span(),
                            "images.formats",
                            format!("{:?} is listed twice", name.get_ref()),
                        ),
                        Some(format) => formats.push(format),
                        None => self.push_hint(
                            name.span(),
                            "images.formats",
                            format!("unknown image format {:?}", name.get_ref()),
                            "\"avif\" and \"webp\" (the source format is always the last choice)",
                        ),
                    }
                }
            }
        }
        let quality = self.count(&i.quality, "images.quality", DEFAULT_QUALITY, 0, 100);
        let max_pixels = self.count(
            &i.max_pixels,
            "images.max_pixels",
            DEFAULT_MAX_PIXELS,
            1,
            1 << 32,
        );
        ImageSettings {
            formats,
            quality: u8::try_from(quality).unwrap_or(85),
            max_pixels: u64::try_from(max_pixels).unwrap_or(1),
        }
    }

    pub(super) fn route_images(&mut self, r: &RouteFile, key: &str) -> ImageMode {
        let Some(v) = &r.images else {
            return ImageMode::Off;
        };
        let Some(mode) = ImageMode::from_keyword(v.get_ref()) else {
            self.push_hint(
                v.span(),
                format!("{key}.images"),
                format!("{:?} is not an image mode", v.get_ref()),
                "\"off\", \"lossless\" or \"lossy\"",
            );
            return ImageMode::Off;
        };
        if mode != ImageMode::Off && r.cache == Some(false) {
            // Images are optimised once, into the stored copy: without a cache there is none.
            self.push_hint(
                v.span(),
                format!("{key}.images"),
                "images are optimised into stored copies, and this route has cache = false",
                "remove `images` or `cache = false`",
            );
            return ImageMode::Off;
        }
        mode
    }
}
