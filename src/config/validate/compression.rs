//! Validation of `[compression]`: coding preference, levels, media types, minimum size.

use super::*;
use crate::config::file::{CompressionFile, LevelsFile};
use crate::config::runtime::{CompressionSettings, Levels};
use crate::vocab::Coding;

/// High enough to beat nginx's gzip level 6 on size, since a fill pays it once; brotli 11
/// and zstd 19 would take seconds on the largest objects the cache stores.
const FILL_LEVELS: Levels = Levels {
    br: 9,
    zstd: 15,
    gzip: 9,
};
/// Cheap enough to run on every uncacheable response.
const FAST_LEVELS: Levels = Levels {
    br: 4,
    zstd: 3,
    gzip: 6,
};
const DEFAULT_MIN_SIZE: u64 = 256;

/// Text-like types that shrink; images, video, archives and woff2 are compressed already.
const DEFAULT_TYPES: &[&str] = &[
    "text/html",
    "text/css",
    "text/plain",
    "text/xml",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "image/svg+xml",
    "application/wasm",
    "font/ttf",
    "font/otf",
];

/// Types whose bodies are compressed already: compressing them again costs CPU for nothing.
const ALREADY_COMPRESSED: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/zstd",
    "application/x-7z-compressed",
    "application/pdf",
];

/// The settings when `[compression]` says nothing.
pub(super) fn defaults() -> CompressionSettings {
    CompressionSettings {
        preference: vec![Coding::Br, Coding::Zstd, Coding::Gzip],
        fill_levels: FILL_LEVELS,
        fast_levels: FAST_LEVELS,
        types: DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        min_size: DEFAULT_MIN_SIZE,
    }
}

impl Builder<'_> {
    /// `[compression]`: the node-wide settings every route starts from.
    pub(super) fn compression(&mut self, f: &FileConfig) -> CompressionSettings {
        match &f.compression {
            None => defaults(),
            Some(c) => self.compression_table(c, "compression", &defaults()),
        }
    }

    /// A compression table over `base`: the keys it sets win, the others keep `base`'s value
    /// (a route's `[sites.routes.compression]` over `[compression]`).
    pub(super) fn compression_table(
        &mut self,
        c: &CompressionFile,
        key: &str,
        base: &CompressionSettings,
    ) -> CompressionSettings {
        let preference = match &c.codings {
            None => base.preference.clone(),
            Some(list) => {
                let mut out = Vec::new();
                for (i, v) in list.get_ref().iter().enumerate() {
                    let ckey = format!("{key}.codings[{i}]");
                    match Coding::from_token(v.get_ref()) {
                        Some(Coding::Identity) | None => self.push_hint(
                            v.span(),
                            ckey,
                            format!("{:?} is not a coding Meridian produces", v.get_ref()),
                            "use \"br\", \"zstd\" or \"gzip\"",
                        ),
                        Some(coding) if out.contains(&coding) => {
                            self.push(v.span(), ckey, format!("{:?} is listed twice", v.get_ref()))
                        }
                        Some(coding) => out.push(coding),
                    }
                }
                out
            }
        };
        let fill_levels = self.levels(
            c.levels.as_ref(),
            &format!("{key}.levels"),
            base.fill_levels,
        );
        let fast_levels = self.levels(
            c.fast_levels.as_ref(),
            &format!("{key}.fast_levels"),
            base.fast_levels,
        );
        let types = match &c.types {
            None => base.types.clone(),
            Some(list) => list
                .get_ref()
                .iter()
                .enumerate()
                .filter_map(|(i, t)| self.media_type(t, &format!("{key}.types[{i}]")))
                .collect(),
        };
        let min_size = self.size(&c.min_size, &format!("{key}.min_size"), base.min_size);
        CompressionSettings {
            preference,
            fill_levels,
            fast_levels,
            types,
            min_size,
        }
    }

    fn levels(&mut self, l: Option<&LevelsFile>, key: &str, default: Levels) -> Levels {
        let Some(l) = l else { return default };
        Levels {
            br: self.count(&l.br, &format!("{key}.br"), i64::from(default.br), 0, 11) as u32,
            zstd: self.count(
                &l.zstd,
                &format!("{key}.zstd"),
                i64::from(default.zstd),
                1,
                22,
            ) as u32,
            gzip: self.count(
                &l.gzip,
                &format!("{key}.gzip"),
                i64::from(default.gzip),
                1,
                9,
            ) as u32,
        }
    }

    fn media_type(&mut self, t: &Spanned<String>, key: &str) -> Option<String> {
        let text = t.get_ref().trim().to_ascii_lowercase();
        let well_formed = text
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !text.contains([';', ' ']));
        if !well_formed {
            self.push_hint(
                t.span(),
                key,
                format!("{:?} is not a media type", t.get_ref()),
                "write type/subtype, e.g. \"text/html\" or \"text/*\"",
            );
            return None;
        }
        let (major, _) = text.split_once('/').unwrap_or_default();
        let compressed = ALREADY_COMPRESSED
            .iter()
            .any(|c| *c == text || c.strip_suffix("/*") == Some(major));
        if compressed {
            self.push(
                t.span(),
                key,
                format!("{text} is compressed already; compressing it again only costs CPU"),
            );
            return None;
        }
        Some(text)
    }
}
