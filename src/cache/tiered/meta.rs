//! A cached response's metadata as the disk stores it: Meridian's own binary form of
//! [`StoredMeta`], its header fields as plain bytes.
//!
//! The first disk format kept pingora's serialization (`CacheMeta::serialize`: MessagePack for
//! the times, the header zstd-compressed), and decoding it was the largest single cost of a
//! disk hit in user space (a zstd decoder table built for every few hundred bytes:
//! benches/results/2026-12-02-vm/disk-tier.md). Headers are a few hundred bytes against
//! bodies of kilobytes to gigabytes, so they are stored as they are. Objects written in the
//! first format are still read.
//!
//! ```text
//! mark [0xff; 4]  version u8
//! fresh_until, created, epoch    (u64 seconds + u32 nanoseconds since the Unix epoch, each)
//! stale_while_revalidate u32  stale_if_error u32
//! variance u8 (0 | 1) [+ 16 bytes]
//! status u16  field count u16  { name length u16, name, value length u32, value }*
//! ```
//! Integers are little-endian.

use crate::cache::disk::record::Reader;
use crate::cache::stored_meta::StoredMeta;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use pingora_cache::CacheMeta;
use pingora_http::ResponseHeader;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Starts Meridian's form. Read as the first format's u32 length of its internal part it
/// would be 4 GiB, which no commit record can hold: the two never mistake each other.
const MARK: [u8; 4] = [0xff; 4];
const VERSION: u8 = 1;

/// The meta as the disk stores it.
pub(super) fn encode_meta(meta: &CacheMeta) -> Option<Vec<u8>> {
    Some(encode_stored(&StoredMeta::from_cache_meta(meta)))
}

fn encode_stored(meta: &StoredMeta) -> Vec<u8> {
    let header = &meta.header;
    let mut out = Vec::with_capacity(64 + header.headers.len() * 48);
    out.extend_from_slice(&MARK);
    out.push(VERSION);
    for time in [meta.fresh_until, meta.created, meta.epoch] {
        // A time before 1970 is read back as 1970: only ever a long-expired freshness.
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        out.extend_from_slice(&since.as_secs().to_le_bytes());
        out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
    }
    out.extend_from_slice(&meta.stale_while_revalidate_sec.to_le_bytes());
    out.extend_from_slice(&meta.stale_if_error_sec.to_le_bytes());
    match meta.variance {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&header.status.as_u16().to_le_bytes());
    // A response has far fewer than 65,536 fields (pingora parses at most 256).
    let count = u16::try_from(header.headers.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in header.headers.iter().take(usize::from(count)) {
        // Names are short tokens and values are bounded by the header size pingora reads.
        let name = name.as_str().as_bytes();
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// The meta stored as `bytes`, in either format; `None` when they are not a meta. Header
/// values are views of `bytes` (see [`StoredMeta::detached`] for a meta to keep).
pub(super) fn decode_meta(bytes: &Bytes) -> Option<StoredMeta> {
    match bytes.strip_prefix(&MARK) {
        Some(_) => decode_stored(bytes),
        None => decode_first_format(bytes),
    }
}

fn decode_stored(bytes: &Bytes) -> Option<StoredMeta> {
    let mut r = Reader(&bytes[MARK.len()..]);
    if r.u8().ok()? != VERSION {
        return None;
    }
    let fresh_until = read_time(&mut r)?;
    let created = read_time(&mut r)?;
    let epoch = read_time(&mut r)?;
    let stale_while_revalidate_sec = r.u32().ok()?;
    let stale_if_error_sec = r.u32().ok()?;
    let variance = match r.u8().ok()? {
        0 => None,
        1 => Some(r.array::<16>().ok()?),
        _ => return None,
    };
    let status = StatusCode::from_u16(r.u16().ok()?).ok()?;
    let count = usize::from(r.u16().ok()?);
    // Without pingora's case map, as the memory tier keeps headers: names go out title-cased.
    // The fields go straight into the map: `ResponseHeader::append_header` would make each
    // name's title-cased copy for a case map there is none of, and parse the name again.
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers.try_reserve(count).ok()?;
    for _ in 0..count {
        let name_len = usize::from(r.u16().ok()?);
        let name = HeaderName::from_bytes(r.take(name_len).ok()?).ok()?;
        let value_len = usize::try_from(r.u32().ok()?).ok()?;
        let value =
            HeaderValue::from_maybe_shared(bytes.slice_ref(r.take(value_len).ok()?)).ok()?;
        parts.headers.try_append(name, value).ok()?;
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(StoredMeta {
        header: ResponseHeader::from(parts),
        fresh_until,
        created,
        epoch,
        stale_while_revalidate_sec,
        stale_if_error_sec,
        variance,
    })
}

/// pingora's serialization: internal part length (u32), internal part, compressed header.
fn decode_first_format(bytes: &[u8]) -> Option<StoredMeta> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let internal = bytes.get(4..4usize.checked_add(len)?)?;
    let header = bytes.get(4 + len..)?;
    let meta = CacheMeta::deserialize(internal, header).ok()?;
    Some(StoredMeta::from_cache_meta(&meta))
}

/// A time as stored: seconds and nanoseconds since the Unix epoch.
fn read_time(r: &mut Reader) -> Option<SystemTime> {
    let secs = r.u64().ok()?;
    let nanos = r.u32().ok()?;
    if nanos >= 1_000_000_000 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::stored_meta::fixture::meta;

    fn assert_same(back: &StoredMeta, m: &CacheMeta) {
        crate::cache::stored_meta::fixture::assert_same(&back.to_cache_meta(), m);
    }

    #[test]
    fn meridians_form_keeps_times_stale_windows_variance_and_every_field() {
        let m = meta();
        let bytes = Bytes::from(encode_meta(&m).unwrap());
        assert!(bytes.starts_with(&MARK));
        let decoded = decode_meta(&bytes).unwrap();
        assert_same(&decoded, &m);
        assert!(
            !decoded.header.has_case(),
            "decoded without a case map, as the memory tier keeps headers"
        );
    }

    #[test]
    fn decoded_values_are_views_of_the_record_until_detached_to_be_kept() {
        let bytes = Bytes::from(encode_meta(&meta()).unwrap());
        let within = |p: *const u8| bytes.as_ptr_range().contains(&p);
        let decoded = decode_meta(&bytes).unwrap();
        let etag = |m: &StoredMeta| m.headers().get("etag").unwrap().as_bytes().as_ptr();
        assert!(within(etag(&decoded)), "a view, not a copy");
        let kept = decoded.detached();
        assert_eq!(kept.headers().get("etag").unwrap(), "\"v1\"");
        assert!(
            !within(etag(&kept)),
            "a kept meta must not hold the record's buffer"
        );
    }

    #[test]
    fn objects_written_in_pingoras_form_are_still_read() {
        let m = meta();
        let (internal, header) = m.serialize().unwrap();
        let mut first = (internal.len() as u32).to_le_bytes().to_vec();
        first.extend_from_slice(&internal);
        first.extend_from_slice(&header);
        assert_same(&decode_meta(&Bytes::from(first)).unwrap(), &m);
    }

    #[test]
    fn every_cut_or_damaged_meta_is_refused_without_a_panic() {
        let bytes = encode_meta(&meta()).unwrap();
        let decode_meta = |b: &[u8]| decode_meta(&Bytes::copy_from_slice(b));
        for end in 0..bytes.len() {
            assert!(decode_meta(&bytes[..end]).is_none(), "cut at {end}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_meta(&longer).is_none(), "trailing bytes");
        let mut bad_version = bytes.clone();
        bad_version[4] = VERSION + 1;
        assert!(decode_meta(&bad_version).is_none());
        let mut bad_name = bytes.clone();
        let at = bad_name.len() - 1;
        bad_name[at] = b'\n';
        assert!(
            decode_meta(&bad_name).is_none(),
            "a value with a line break"
        );
    }
}
