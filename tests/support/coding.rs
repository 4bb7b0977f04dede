//! Undoing a `Content-Encoding` the node applied, to compare what a client reads.

use std::io::Read;

/// `body` decoded from `coding` (`br`, `zstd`, `gzip`, or `""` for identity).
pub fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::stream::decode_all(body).unwrap(),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "" => out = body.to_vec(),
        other => panic!("unexpected coding {other}"),
    }
    out
}
