//! Streaming encoders and decoders for the codings Meridian produces and reads: each takes
//! body chunks as they come and hands back the bytes it has produced so far.

use crate::vocab::Coding;
use bytes::Bytes;
use std::io::{self, Write};

/// brotli's window: 4 MiB (its default), plenty for web assets.
const BROTLI_LGWIN: u32 = 22;
const BROTLI_BUFFER: usize = 4096;

/// A compressor for one body.
pub enum Encoder {
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    /// An encoder for `coding` at `level`, or `None` for identity.
    pub fn new(coding: Coding, level: u32) -> io::Result<Option<Encoder>> {
        Ok(Some(match coding {
            Coding::Identity => return Ok(None),
            Coding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                level.min(11),
                BROTLI_LGWIN,
            ))),
            Coding::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(
                Vec::new(),
                i32::try_from(level.min(22)).unwrap_or(3),
            )?),
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.min(9)),
            )),
        }))
    }

    /// Feeds `data`; returns what is ready to send (often nothing until enough has come).
    pub fn write(&mut self, data: &[u8]) -> io::Result<Bytes> {
        let out = match self {
            Encoder::Br(w) => {
                w.write_all(data)?;
                w.get_mut()
            }
            Encoder::Zstd(w) => {
                w.write_all(data)?;
                w.get_mut()
            }
            Encoder::Gzip(w) => {
                w.write_all(data)?;
                w.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// Ends the stream; returns the last bytes.
    pub fn finish(self) -> io::Result<Bytes> {
        let out = match self {
            Encoder::Br(w) => w.into_inner(),
            Encoder::Zstd(w) => w.finish()?,
            Encoder::Gzip(w) => w.finish()?,
        };
        Ok(Bytes::from(out))
    }
}

/// A decompressor for a body an origin sent encoded.
pub enum Decoder {
    Br(Box<brotli::DecompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
}

impl Decoder {
    /// A decoder for `coding`, or `None` for identity.
    pub fn new(coding: Coding) -> io::Result<Option<Decoder>> {
        Ok(Some(match coding {
            Coding::Identity => return Ok(None),
            Coding::Br => Decoder::Br(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
            ))),
            Coding::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(Vec::new())?),
            Coding::Gzip => Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new())),
        }))
    }

    /// Feeds encoded `data`; returns the decoded bytes so far.
    pub fn write(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let out = match self {
            Decoder::Br(w) => {
                w.write_all(data)?;
                w.get_mut()
            }
            Decoder::Zstd(w) => {
                w.write_all(data)?;
                w.get_mut()
            }
            Decoder::Gzip(w) => {
                w.write_all(data)?;
                w.get_mut()
            }
        };
        Ok(std::mem::take(out))
    }

    /// Ends the stream; an encoded body cut short is an error.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Decoder::Br(w) => w.into_inner().map_err(|_| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "brotli stream cut short")
            }),
            Decoder::Zstd(mut w) => {
                w.flush()?;
                Ok(w.into_inner())
            }
            Decoder::Gzip(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> Vec<u8> {
        (0..2000)
            .flat_map(|i| format!("<p class=\"item\">line {i} of some html</p>\n").into_bytes())
            .collect()
    }

    fn encode(coding: Coding, level: u32, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut enc = Encoder::new(coding, level).unwrap().unwrap();
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            out.extend_from_slice(&enc.write(part).unwrap());
        }
        out.extend_from_slice(&enc.finish().unwrap());
        out
    }

    fn decode(coding: Coding, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut dec = Decoder::new(coding).unwrap().unwrap();
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            out.extend_from_slice(&dec.write(part).unwrap());
        }
        out.extend_from_slice(&dec.finish().unwrap());
        out
    }

    #[test]
    fn every_coding_round_trips_in_chunks_and_shrinks_text() {
        let input = text();
        for coding in [Coding::Br, Coding::Zstd, Coding::Gzip] {
            for chunk in [1000, 16 * 1024] {
                let encoded = encode(coding, 6, &input, chunk);
                assert!(
                    encoded.len() * 5 < input.len(),
                    "{coding:?}: {}",
                    encoded.len()
                );
                assert_eq!(
                    decode(coding, &encoded, 777),
                    input,
                    "{coding:?} chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn identity_has_no_codec_and_garbage_does_not_decode() {
        assert!(Encoder::new(Coding::Identity, 5).unwrap().is_none());
        assert!(Decoder::new(Coding::Identity).unwrap().is_none());
        let mut gz = Decoder::new(Coding::Gzip).unwrap().unwrap();
        assert!(gz.write(b"definitely not gzip").is_err());
        let encoded = encode(Coding::Gzip, 6, &text(), 4096);
        let mut cut = Decoder::new(Coding::Gzip).unwrap().unwrap();
        cut.write(&encoded[..encoded.len() / 2]).unwrap();
        assert!(cut.finish().is_err(), "a body cut short is an error");
    }
}
