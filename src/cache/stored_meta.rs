//! The parts of a `CacheMeta` the storage keeps, parsed, so a hit rebuilds meta cheaply.

use pingora_cache::key::HashBinary;
use pingora_cache::CacheMeta;
use pingora_http::ResponseHeader;
use std::time::SystemTime;

/// Per-header bookkeeping of `http::HeaderMap`, counted against the memory bound: its bucket
/// (name, value, hash, links: about 100 bytes), the slack of a table that grows in powers of
/// two, its index slot and the value's own allocation (object.rs has the measurement).
const HEADER_OVERHEAD_BYTES: usize = 160;

/// A `CacheMeta` taken apart. `CacheMeta` is not `Clone`, and its serialized form compresses
/// the headers, so we keep the fields and rebuild with `CacheMeta::new` on each hit.
#[derive(Debug, Clone)]
pub(crate) struct StoredMeta {
    // Visible to the cache's modules: the disk tier writes and reads them (tiered/meta.rs).
    pub(super) header: ResponseHeader,
    pub(super) fresh_until: SystemTime,
    pub(super) created: SystemTime,
    /// The reference point for age and freshness (last revalidation, or `created`).
    pub(super) epoch: SystemTime,
    pub(super) stale_while_revalidate_sec: u32,
    pub(super) stale_if_error_sec: u32,
    pub(super) variance: Option<HashBinary>,
}

/// A copy of `header` to keep: without pingora's case-preserving map (a header map is then
/// cloned once per hit instead of twice, and names go out title-cased, "Content-Type", as HTTP
/// allows), and with values that own their bytes. pingora parses an origin's header into views
/// of the buffer it read the header into (4 KiB or more, the start of the body with it): kept
/// as they were, the values of a stored 1 KiB object held that whole buffer, about 7 KB of
/// memory per object where the weigher counted under 2 KB (RSS 307 MiB for a 64 MiB memory
/// tier of 1 KiB objects; benches/results/2026-12-02-vm/small-objects-rss.md).
fn detached(header: &ResponseHeader) -> ResponseHeader {
    let mut parts = header.as_owned_parts();
    for value in parts.headers.values_mut() {
        // The same bytes are as valid as before; from_bytes copies them.
        if let Ok(mut owned) = http::HeaderValue::from_bytes(value.as_bytes()) {
            owned.set_sensitive(value.is_sensitive());
            *value = owned;
        }
    }
    ResponseHeader::from(parts)
}

impl StoredMeta {
    /// The same meta with header values that own their bytes (see [`detached`]): for a
    /// meta decoded as views of a larger buffer, before it is kept.
    pub(crate) fn detached(self) -> Self {
        StoredMeta {
            header: detached(&self.header),
            ..self
        }
    }

    pub(crate) fn from_cache_meta(meta: &CacheMeta) -> Self {
        StoredMeta {
            header: detached(meta.response_header()),
            fresh_until: meta.fresh_until(),
            created: meta.created(),
            epoch: meta.epoch(),
            stale_while_revalidate_sec: meta.stale_while_revalidate_sec(),
            stale_if_error_sec: meta.stale_if_error_sec(),
            variance: meta.variance(),
        }
    }

    /// Rebuilds the meta. Its provenance becomes `created`, which can only make pingora treat
    /// older secondary variants as invalid (an extra miss), never serve one it should not.
    pub(crate) fn to_cache_meta(&self) -> CacheMeta {
        StoredMeta {
            header: self.header.clone(),
            ..*self
        }
        .into_cache_meta()
    }

    /// [`to_cache_meta`](Self::to_cache_meta) of a meta not kept: its header is moved, not
    /// copied.
    pub(crate) fn into_cache_meta(self) -> CacheMeta {
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.created,
            self.stale_while_revalidate_sec,
            self.stale_if_error_sec,
            self.header,
        );
        if self.epoch != self.created {
            meta.set_epoch_override(self.epoch);
        }
        if let Some(v) = self.variance {
            meta.set_variance(v);
        }
        meta
    }

    /// Records the stored body's length: a body transformed during the fill (or sent chunked)
    /// had none in its header, and hits must say how long they are.
    pub(crate) fn set_body_length(&mut self, len: usize) {
        self.header.remove_header(&http::header::TRANSFER_ENCODING);
        // Inserting a number into a header map cannot fail.
        let _ = self
            .header
            .insert_header(http::header::CONTENT_LENGTH, len.to_string());
    }

    /// Sets header fields that describe a replacement body (its coding, its validator).
    pub(crate) fn set_fields(&mut self, fields: &[(http::HeaderName, http::HeaderValue)]) {
        for (name, value) in fields {
            // Names and values are already valid: inserting cannot fail.
            let _ = self.header.insert_header(name.clone(), value.clone());
        }
    }

    /// Marks the object stale from `instant` on (soft purge); never extends freshness.
    pub(crate) fn expire_at(&mut self, instant: SystemTime) {
        self.fresh_until = self.fresh_until.min(instant);
    }

    /// The stored response headers.
    pub(crate) fn headers(&self) -> &http::HeaderMap {
        &self.header.headers
    }

    /// Approximate bytes held by the stored headers.
    pub(crate) fn weight(&self) -> usize {
        self.header
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + HEADER_OVERHEAD_BYTES)
            .sum()
    }
}

/// A meta with every part the stored forms keep, and the check that a copy kept them all:
/// for the memory tier's form here and the disk's (tiered/meta.rs).
#[cfg(test)]
pub(crate) mod fixture {
    use pingora_cache::CacheMeta;
    use pingora_http::ResponseHeader;
    use std::time::{Duration, SystemTime};

    /// Fresh for 90 s after a revalidation (so its epoch is not its creation), stale windows
    /// 5 and 10 s, a variance, and a repeated field.
    pub(crate) fn meta() -> CacheMeta {
        let mut h = ResponseHeader::build(200, None).unwrap();
        h.append_header("Cache-Control", "max-age=60").unwrap();
        h.append_header("ETag", "\"v1\"").unwrap();
        h.append_header("Set-Cookie", "a=1").unwrap();
        h.append_header("Set-Cookie", "b=2").unwrap();
        let now = SystemTime::now();
        let mut m = CacheMeta::new(now + Duration::from_secs(60), now, 5, 10, h);
        m.set_variance([7; 16]);
        m.update_freshness(now + Duration::from_secs(90), 5, 10);
        m
    }

    pub(crate) fn assert_same(back: &CacheMeta, m: &CacheMeta) {
        assert_eq!(back.fresh_until(), m.fresh_until());
        assert_eq!(back.created(), m.created());
        assert_eq!(back.epoch(), m.epoch());
        assert_eq!(back.stale_while_revalidate_sec(), 5);
        assert_eq!(back.stale_if_error_sec(), 10);
        assert_eq!(back.variance(), Some([7; 16]));
        assert_eq!(back.response_header().status, 200);
        assert_eq!(back.headers().get("etag").unwrap(), "\"v1\"");
        let cookies: Vec<_> = back.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"], "repeated fields kept, in order");
        assert_eq!(back.headers().len(), m.headers().len());
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{assert_same, meta};
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trip_keeps_freshness_stale_windows_variance_and_headers() {
        let m = meta();
        let back = StoredMeta::from_cache_meta(&m).to_cache_meta();
        assert_same(&back, &m);
        assert!(
            !back.response_header().has_case(),
            "stored without the case map"
        );
    }

    #[test]
    fn stored_header_values_do_not_hold_the_buffer_they_were_parsed_from() {
        // As pingora's HTTP/1 client leaves them: values are views of the read buffer.
        let read_buf = bytes::Bytes::from(vec![b'a'; 8192]);
        let range = read_buf.as_ptr() as usize..read_buf.as_ptr() as usize + read_buf.len();
        let mut h = ResponseHeader::build(200, None).unwrap();
        let view = http::HeaderValue::from_maybe_shared(read_buf.slice(100..110)).unwrap();
        h.insert_header("x-view", view).unwrap();
        let now = SystemTime::now();
        let m = CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, h);
        let original = m.headers().get("x-view").unwrap().as_bytes().as_ptr() as usize;
        assert!(range.contains(&original), "the test's value is a view");

        let stored = StoredMeta::from_cache_meta(&m);
        let value = stored.headers().get("x-view").unwrap();
        assert_eq!(value.as_bytes(), b"aaaaaaaaaa");
        let kept = value.as_bytes().as_ptr() as usize;
        assert!(
            !range.contains(&kept),
            "the stored value still points into the read buffer"
        );
    }

    #[test]
    fn a_revalidated_meta_keeps_its_newer_epoch_so_age_restarts() {
        let mut m = meta();
        std::thread::yield_now();
        m.update_freshness(SystemTime::now() + Duration::from_secs(60), 0, 0);
        let back = StoredMeta::from_cache_meta(&m).to_cache_meta();
        assert_eq!(back.epoch(), m.updated());
        assert!(back.epoch() >= back.created());
    }

    #[test]
    fn expire_at_only_moves_freshness_earlier() {
        let m = meta();
        let mut s = StoredMeta::from_cache_meta(&m);
        let later = m.fresh_until() + Duration::from_secs(100);
        s.expire_at(later);
        assert_eq!(s.to_cache_meta().fresh_until(), m.fresh_until());
        let now = SystemTime::now();
        s.expire_at(now);
        assert!(!s.to_cache_meta().is_fresh(now + Duration::from_millis(1)));
    }
}
