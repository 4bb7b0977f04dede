//! The records of the disk log, and their encoding.
//!
//! Every record is a 16-byte header and a payload:
//!
//! ```text
//! magic "MRD1" | kind u8 | 3 zero bytes | payload length u32 LE | crc32 u32 LE | payload
//! ```
//!
//! The CRC covers the kind, the length and the payload, so a torn write (a crash between
//! the header and the end of the payload) or a flipped bit fails the check and the record is
//! never believed. Lengths are little-endian; strings are UTF-8 with a u16 length.

use std::fmt;

pub const MAGIC: [u8; 4] = *b"MRD1";
pub const HEADER_LEN: usize = 16;
/// No record is larger: a fragment carries at most this much body.
pub const MAX_PAYLOAD: usize = 4 << 20;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A piece of a body being filled: fill id, sequence number, bytes.
    Fragment = 1,
    /// An object made whole: key, body length, where its fragments are, URL, tags, meta.
    Commit = 2,
    /// A purge, kept so that it still holds after a restart.
    Purge = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Fragment),
            2 => Some(Kind::Commit),
            3 => Some(Kind::Purge),
            _ => None,
        }
    }
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Fewer bytes than the header or its payload announce (a torn tail).
    Truncated,
    /// No magic, an unknown kind or an impossible length: not a record boundary.
    NotARecord,
    /// The CRC does not match: torn or corrupted.
    Checksum,
    /// The payload does not parse as its kind.
    Malformed,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::Truncated => "truncated record",
            Damage::NotARecord => "not a record",
            Damage::Checksum => "checksum mismatch",
            Damage::Malformed => "malformed record",
        })
    }
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub payload_len: usize,
    crc: u32,
}

impl Header {
    pub fn parse(bytes: &[u8]) -> Result<Header, Damage> {
        let h: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Damage::Truncated)?;
        if h[..4] != MAGIC || h[5..8] != [0, 0, 0] {
            return Err(Damage::NotARecord);
        }
        let kind = Kind::from_u8(h[4]).ok_or(Damage::NotARecord)?;
        let payload_len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        if payload_len > MAX_PAYLOAD {
            return Err(Damage::NotARecord);
        }
        let crc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        Ok(Header {
            kind,
            payload_len,
            crc,
        })
    }

    /// Checks `payload` (exactly `payload_len` bytes) against the header's CRC.
    pub fn verify(&self, payload: &[u8]) -> Result<(), Damage> {
        if payload.len() != self.payload_len {
            return Err(Damage::Truncated);
        }
        if crc(self.kind, payload) != self.crc {
            return Err(Damage::Checksum);
        }
        Ok(())
    }
}

fn crc(kind: Kind, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind as u8]);
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// A whole record (header and payload) for `payload`.
pub fn encode(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(kind, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Where a record starts: a segment and a byte offset in it. Ordered as the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub segment: u32,
    pub offset: u32,
}

/// One fragment of a committed body: where its record is and how many body bytes it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentRef {
    pub at: Position,
    pub len: u32,
}

/// Bytes of a fragment payload before its data: fill id (u64) and sequence number (u32).
pub const FRAGMENT_PREFIX: usize = 12;

/// The payload of a fragment record: the fill it belongs to, its place in it, and bytes.
pub fn fragment_payload(fill: u64, seq: u32, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(FRAGMENT_PREFIX + data.len());
    p.extend_from_slice(&fill.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(data);
    p
}

/// The body bytes of a verified fragment payload, if it belongs to `fill` at `seq`.
pub fn fragment_data(payload: &[u8], fill: u64, seq: u32) -> Result<&[u8], Damage> {
    let mut r = Reader(payload);
    if r.u64()? != fill || r.u32()? != seq {
        return Err(Damage::Malformed);
    }
    Ok(r.0)
}

/// A committed object as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub key: [u8; 16],
    pub fill: u64,
    pub body_len: u64,
    /// CRC32 of the whole body, checked before a restarted node serves its first byte.
    pub body_crc: u32,
    pub fragments: Vec<FragmentRef>,
    /// The primary cache URL: what prefix purges match.
    pub url: String,
    /// Surrogate keys: what tag purges match.
    pub tags: Vec<String>,
    /// The cache metadata, opaque to the log (when decoded: a view of the record read).
    pub meta: bytes::Bytes,
}

impl Commit {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + self.fragments.len() * 12 + self.meta.len());
        p.extend_from_slice(&self.key);
        p.extend_from_slice(&self.fill.to_le_bytes());
        p.extend_from_slice(&self.body_len.to_le_bytes());
        p.extend_from_slice(&self.body_crc.to_le_bytes());
        p.extend_from_slice(&(self.fragments.len() as u32).to_le_bytes());
        for f in &self.fragments {
            p.extend_from_slice(&f.at.segment.to_le_bytes());
            p.extend_from_slice(&f.at.offset.to_le_bytes());
            p.extend_from_slice(&f.len.to_le_bytes());
        }
        put_str(&mut p, &self.url);
        p.extend_from_slice(&(self.tags.len() as u16).to_le_bytes());
        for t in &self.tags {
            put_str(&mut p, t);
        }
        p.extend_from_slice(&(self.meta.len() as u32).to_le_bytes());
        p.extend_from_slice(&self.meta);
        p
    }

    pub fn decode(payload: &bytes::Bytes) -> Result<Commit, Damage> {
        let mut r = Reader(&payload[..]);
        let key = r.array::<16>()?;
        let fill = r.u64()?;
        let body_len = r.u64()?;
        let body_crc = r.u32()?;
        let n = r.u32()? as usize;
        if n > payload.len() / 12 {
            return Err(Damage::Malformed);
        }
        let mut fragments = Vec::with_capacity(n);
        for _ in 0..n {
            let at = Position {
                segment: r.u32()?,
                offset: r.u32()?,
            };
            fragments.push(FragmentRef { at, len: r.u32()? });
        }
        let url = r.string()?;
        let tag_count = r.u16()? as usize;
        let mut tags = Vec::with_capacity(tag_count.min(64));
        for _ in 0..tag_count {
            tags.push(r.string()?);
        }
        let meta_len = r.u32()? as usize;
        // A view of the record, not a copy: a hit builds its header from it.
        let meta = payload.slice_ref(r.take(meta_len)?);
        if !r.0.is_empty() || fragments.iter().map(|f| u64::from(f.len)).sum::<u64>() != body_len {
            return Err(Damage::Malformed);
        }
        Ok(Commit {
            key,
            fill,
            body_len,
            body_crc,
            fragments,
            url,
            tags,
            meta,
        })
    }
}

/// What a purge selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Key([u8; 16]),
    /// Every variant stored for one cache URL (scheme left out, as for prefixes).
    Url(String),
    /// Cache URLs starting with this (scheme left out: prefixes match both schemes).
    Prefix(String),
    Tag(String),
    All,
}

/// A purge record: what it selects and whether it removes or marks stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    pub selector: Selector,
    pub soft: bool,
}

impl Purge {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![u8::from(self.soft)];
        match &self.selector {
            Selector::Key(k) => {
                p.push(1);
                p.extend_from_slice(k);
            }
            Selector::Prefix(s) => {
                p.push(2);
                put_str(&mut p, s);
            }
            Selector::Tag(s) => {
                p.push(3);
                put_str(&mut p, s);
            }
            Selector::All => p.push(4),
            Selector::Url(s) => {
                p.push(5);
                put_str(&mut p, s);
            }
        }
        p
    }

    pub fn decode(payload: &[u8]) -> Result<Purge, Damage> {
        let mut r = Reader(payload);
        let soft = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Damage::Malformed),
        };
        let selector = match r.u8()? {
            1 => Selector::Key(r.array::<16>()?),
            2 => Selector::Prefix(r.string()?),
            3 => Selector::Tag(r.string()?),
            4 => Selector::All,
            5 => Selector::Url(r.string()?),
            _ => return Err(Damage::Malformed),
        };
        if !r.0.is_empty() {
            return Err(Damage::Malformed);
        }
        Ok(Purge { selector, soft })
    }
}

fn put_str(p: &mut Vec<u8>, s: &str) {
    // Longer strings are cut at a character boundary: a URL or tag that long is matched by
    // its first 64 KiB, which is still one object's identity in practice.
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    p.extend_from_slice(&(end as u16).to_le_bytes());
    p.extend_from_slice(&s.as_bytes()[..end]);
}

/// Reads fixed-width fields off the front of a payload.
/// Reads the log's little-endian encodings (the disk tier's metadata form uses it too).
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Damage> {
        if self.0.len() < n {
            return Err(Damage::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        self.take(N)?.try_into().map_err(|_| Damage::Malformed)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Damage> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Damage> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Damage> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Damage> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn string(&mut self) -> Result<String, Damage> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Damage::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_flipped_bit_or_cut_is_caught() {
        let commit = Commit {
            key: [7; 16],
            fill: 42,
            body_len: 10,
            body_crc: 99,
            fragments: vec![
                FragmentRef {
                    at: Position {
                        segment: 1,
                        offset: 0,
                    },
                    len: 4,
                },
                FragmentRef {
                    at: Position {
                        segment: 2,
                        offset: 64,
                    },
                    len: 6,
                },
            ],
            url: "http://a.test/x".into(),
            tags: vec!["t1".into(), "t2".into()],
            meta: bytes::Bytes::from_static(b"meta"),
        };
        let bytes = encode(Kind::Commit, &commit.encode());
        let header = Header::parse(&bytes).unwrap();
        let payload = bytes::Bytes::copy_from_slice(&bytes[HEADER_LEN..]);
        header.verify(&payload).unwrap();
        assert_eq!(Commit::decode(&payload).unwrap(), commit);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let caught = Header::parse(&bad).and_then(|h| h.verify(&bad[HEADER_LEN..]));
            assert!(caught.is_err(), "a flipped bit at byte {i} went unnoticed");
        }
        for cut in 0..bytes.len() {
            let caught = Header::parse(&bytes[..cut])
                .and_then(|h| h.verify(&bytes[HEADER_LEN.min(cut)..cut]));
            assert!(caught.is_err(), "a cut at {cut} went unnoticed");
        }
    }

    #[test]
    fn purges_round_trip() {
        for selector in [
            Selector::Key([1; 16]),
            Selector::Prefix("a.test/img/".into()),
            Selector::Tag("product-42".into()),
            Selector::All,
            Selector::Url("a.test/x?y".into()),
        ] {
            for soft in [false, true] {
                let purge = Purge {
                    selector: selector.clone(),
                    soft,
                };
                assert_eq!(Purge::decode(&purge.encode()).unwrap(), purge);
            }
        }
        assert!(Purge::decode(&[2, 4]).is_err());
    }
}
