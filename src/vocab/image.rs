//! The image words Meridian negotiates and keys cache variants on: how a route optimises
//! images, and which encoding a client is sent.

/// A route's `images` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageMode {
    /// Images pass through as the origin sent them.
    #[default]
    Off,
    /// Pixel-identical output only: PNG re-deflated, WebP lossless for PNG and GIF sources.
    Lossless,
    /// Re-encoded at `[images] quality`: AVIF, WebP, or the source format.
    Lossy,
}

impl ImageMode {
    pub fn from_keyword(s: &str) -> Option<ImageMode> {
        match s {
            "off" => Some(ImageMode::Off),
            "lossless" => Some(ImageMode::Lossless),
            "lossy" => Some(ImageMode::Lossy),
            _ => None,
        }
    }
}

/// A modern image encoding offered to clients whose `Accept` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Avif,
    Webp,
}

impl ImageFormat {
    pub fn from_keyword(s: &str) -> Option<ImageFormat> {
        match s {
            "avif" => Some(ImageFormat::Avif),
            "webp" => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    /// The media type, as in `Accept` and `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Avif => "image/avif",
            ImageFormat::Webp => "image/webp",
        }
    }
}

/// What one client is sent of an image: its cache variant, so a closed set (no client can
/// multiply variants through `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageTarget {
    /// Re-encoded to a modern format.
    Modern(ImageFormat),
    /// The source format, recompressed when that makes it smaller.
    Source,
}

impl ImageTarget {
    /// The variant's token: in the cache key, the stored marker and `Cache-Status`.
    pub fn token(self) -> &'static str {
        match self {
            ImageTarget::Modern(ImageFormat::Avif) => "avif",
            ImageTarget::Modern(ImageFormat::Webp) => "webp",
            ImageTarget::Source => "source",
        }
    }
}

/// The stored header field that marks an image variant Meridian made: [`PENDING`] until the
/// job on the transform pool ends, then "avif", "webp", "jpeg" or "png" (re-encoded) or
/// [`KEPT`] (left as the origin sent it). The cache keys such an object's `Vary: Accept` on
/// the negotiated [`ImageTarget`]. It leaves the node only to an edge of its cluster, which
/// keys its copy the same way; on an edge's request to its shield it names the variant the
/// edge chose.
pub const IMAGE_VARIANT: &str = "x-meridian-image";
/// The marker's value while the variant is being made.
pub const PENDING: &str = "original";
/// The marker's value of an image left as sent (animated, undecodable, nothing smaller).
pub const KEPT: &str = "kept";
