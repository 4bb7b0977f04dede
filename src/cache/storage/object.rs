//! A complete object as the memory tier holds it, what it weighs against the bound, and the
//! URL and tag indexes every committed object is filed in.

use super::fills::Refinement;
use crate::cache::index::{surrogate_keys, KeyIndex};
use crate::cache::stored_meta::StoredMeta;
use crate::cache::variants::VariantIndex;
use bytes::{Bytes, BytesMut};
use pingora_cache::key::HashBinary;
use std::sync::Arc;

/// Fixed per-object overhead counted against the memory bound: moka's entry and its two
/// order queues, the `Arc`, the meta's fields, the URL index entry and the allocator's
/// rounding. Fitted with the per-header cost (stored_meta.rs) to RSS measured from outside:
/// 37,500 stored 1 KiB objects of nine header fields each cost 3.5 KB apiece
/// (benches/results/2026-12-02-vm/small-objects-rss.md); at 256 the bound undercounted by half.
const OBJECT_OVERHEAD_BYTES: usize = 768;

/// A complete cached response.
pub(super) struct StoredObject {
    pub(super) meta: StoredMeta,
    pub(super) body: Bytes,
    /// The primary cache key (scheme, host, target): what URL purges match.
    pub(super) url: Arc<str>,
    /// Surrogate keys from the response, for purge by tag.
    pub(super) tags: Box<[Box<str>]>,
    /// Stored in pingora's primary slot for its URL (no variance).
    pub(super) primary: bool,
    /// The fill that wrote it: only that fill's refinement may replace its body.
    pub(super) fill_id: u64,
    /// What this object counts against the memory bound.
    pub(super) weight: u32,
}

impl StoredObject {
    /// The same object with another (equivalent) body and the fields that describe it.
    pub(super) fn with_body(&self, refinement: &Refinement) -> StoredObject {
        let mut meta = self.meta.clone();
        meta.set_fields(&refinement.fields);
        meta.set_body_length(refinement.body.len());
        StoredObject::new(
            meta,
            refinement.body.clone(),
            self.url.clone(),
            self.primary,
            self.fill_id,
        )
    }

    pub(super) fn new(
        meta: StoredMeta,
        body: Bytes,
        url: Arc<str>,
        primary: bool,
        fill_id: u64,
    ) -> Self {
        let tags = surrogate_keys(meta.headers());
        let tag_bytes: usize = tags.iter().map(|t| t.len()).sum();
        let weight = body.len() + meta.weight() + url.len() + tag_bytes + OBJECT_OVERHEAD_BYTES;
        StoredObject {
            meta,
            body,
            url,
            tags,
            primary,
            fill_id,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        }
    }
}

/// The URL and tag indexes, shared with moka's removal listener.
pub(super) struct Indexes {
    pub(super) by_url: VariantIndex,
    pub(super) by_tag: KeyIndex,
}

impl Indexes {
    /// Files `obj`; returns the keys of its URL's variants now past `max_variants`.
    pub(super) fn add(&self, key: HashBinary, obj: &StoredObject) -> Vec<HashBinary> {
        for tag in obj.tags.iter() {
            self.by_tag.add(tag, key);
        }
        self.by_url.add(&obj.url, key, obj.primary)
    }

    pub(super) fn remove(&self, key: &HashBinary, obj: &StoredObject) {
        self.by_url.remove(&obj.url, key);
        for tag in obj.tags.iter() {
            self.by_tag.remove(tag, key);
        }
    }
}

/// One `Bytes` for the whole body: free for a single chunk, one copy otherwise.
pub(super) fn join(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let total = many.iter().map(Bytes::len).sum();
            let mut buf = BytesMut::with_capacity(total);
            for c in many {
                buf.extend_from_slice(c);
            }
            buf.freeze()
        }
    }
}
