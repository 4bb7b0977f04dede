use super::*;
use crate::vocab::image::{ImageFormat, ImageMode, ImageTarget};

fn work(source: SourceFormat, max_pixels: u64) -> ImageWork {
    ImageWork {
        source,
        target: ImageTarget::Modern(ImageFormat::Webp),
        mode: ImageMode::Lossy,
        quality: 85,
        max_pixels,
    }
}

/// A PNG whose header claims `w` x `h` RGBA pixels and whose data is a few bytes: a
/// decompression bomb's shape.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        c.extend_from_slice(&crc.finalize().to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn an_image_claiming_more_pixels_than_the_bound_is_refused_before_any_is_decoded() {
    // 100,000 x 100,000 RGBA would be 40 GB decoded.
    let bomb = png_claiming(100_000, 100_000);
    assert_eq!(
        optimise(&work(SourceFormat::Png, 40_000_000), &bomb).err(),
        Some(Kept::TooManyPixels)
    );
    // Within the bound it is read, and found wanting.
    let small = png_claiming(64, 64);
    assert_eq!(
        optimise(&work(SourceFormat::Png, 40_000_000), &small).err(),
        Some(Kept::Undecodable)
    );
}

#[test]
fn truncated_files_are_recognised_by_their_missing_end() {
    let png = png_claiming(2, 2);
    assert!(!truncated(SourceFormat::Png, &png));
    assert!(truncated(SourceFormat::Png, &png[..png.len() - 1]));
    assert!(!truncated(SourceFormat::Jpeg, b"\xff\xd8....\xff\xd9\0\0"));
    assert!(truncated(SourceFormat::Jpeg, b"\xff\xd8...."));
    assert!(!truncated(SourceFormat::Gif, b"GIF89a...;"));
    assert!(truncated(SourceFormat::Gif, b"GIF89a..."));
}

#[test]
fn only_jpeg_png_and_gif_are_sources() {
    assert_eq!(
        SourceFormat::of_media_type("image/jpeg"),
        Some(SourceFormat::Jpeg)
    );
    assert_eq!(
        SourceFormat::of_media_type("image/png"),
        Some(SourceFormat::Png)
    );
    assert_eq!(
        SourceFormat::of_media_type("image/gif"),
        Some(SourceFormat::Gif)
    );
    for other in ["image/webp", "image/avif", "image/svg+xml", "text/html", ""] {
        assert_eq!(SourceFormat::of_media_type(other), None, "{other}");
    }
}
