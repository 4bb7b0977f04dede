//! Image optimisation (`images = "lossless" | "lossy"`): the fill streams the origin's image,
//! the transform pool makes the client's variant (AVIF, WebP or the source format) once, and
//! hits get it; pixels, orientation and colour profiles survive; what cannot be optimised
//! safely passes through and is counted. Images are real photographs and screenshots from
//! benches/images/.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use img_parts::{ImageEXIF, ImageICC};
use support::{header, one_region, Node, Origin, Reply};

const PHOTO: &[u8] = include_bytes!("../benches/images/board.jpg");
const EXIF_PHOTO: &[u8] = include_bytes!("../benches/images/metal.jpg");
const SCREENSHOT: &[u8] = include_bytes!("../benches/images/dashboard.png");
/// Only its ICC profile is used (the file itself is already optimised).
const SCREENSHOT_ICC: &[u8] = include_bytes!("../benches/images/coverage-icc.png");

const AVIF_AND_WEBP: &str = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";
const WEBP: &str = "image/webp,*/*";
const NEITHER: &str = "image/png,image/*;q=0.8,*/*;q=0.5";

fn image(body: &[u8], content_type: &str) -> Reply {
    Reply::ok(body.to_vec())
        .header("content-type", content_type)
        .header("cache-control", "max-age=300")
}

fn config(origin: &Origin, mode: &str, images: &str) -> String {
    one_region(
        &[origin.addr()],
        &format!("images = \"{mode}\"\n\n[images]\n{images}\n[log]\naccess = \"stdout\"\n"),
    )
}

/// GETs `path` with `accept` until a hit carries a re-encoded variant (or `original`, when
/// `want` says the image is kept); returns the hit's content type, Cache-Status and body.
async fn settled(node: &Node, path: &str, accept: &str, want: &str) -> (String, String, Vec<u8>) {
    let out = std::sync::Mutex::new((String::new(), String::new(), Vec::new()));
    support::eventually(
        &format!("{path} for {accept:?} served as {want}"),
        || async {
            let r = node.get(path, &[("accept", accept)]).await;
            assert_eq!(r.status(), 200);
            let ct = header(&r, "content-type");
            let cs = header(&r, "cache-status");
            let body = r.bytes().await.unwrap().to_vec();
            let done = cs.contains("hit") && cs.contains(&format!("image={want}"));
            *out.lock().unwrap() = (ct, cs, body);
            done
        },
    )
    .await;
    out.into_inner().unwrap()
}

fn rgba(body: &[u8]) -> image::RgbaImage {
    if body.starts_with(b"RIFF") {
        let decoded = webp::Decoder::new(body).decode().unwrap();
        let (w, h) = (decoded.width(), decoded.height());
        return if decoded.is_alpha() {
            image::RgbaImage::from_raw(w, h, decoded.to_vec()).unwrap()
        } else {
            image::DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(w, h, decoded.to_vec()).unwrap(),
            )
            .to_rgba8()
        };
    }
    image::load_from_memory(body).unwrap().to_rgba8()
}

fn dimensions(body: &[u8]) -> (u32, u32) {
    let img = rgba(body);
    (img.width(), img.height())
}

/// The photograph at a third of its size (240 x 159), as a camera-quality JPEG: AVIF
/// encoding in a test build takes seconds per hundred thousand pixels.
fn small_photo() -> Vec<u8> {
    let small = image::load_from_memory(PHOTO)
        .unwrap()
        .resize_exact(240, 159, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&small)
        .unwrap();
    out
}

/// The ICC profile of a real screenshot.
fn profile() -> img_parts::Bytes {
    img_parts::png::Png::from_bytes(SCREENSHOT_ICC.to_vec().into())
        .unwrap()
        .icc_profile()
        .unwrap()
}

/// The dashboard screenshot with that profile added.
fn screenshot_with_profile() -> Vec<u8> {
    let mut png = img_parts::png::Png::from_bytes(SCREENSHOT.to_vec().into()).unwrap();
    png.set_icc_profile(Some(profile()));
    let mut out = Vec::new();
    png.encoder().write_to(&mut out).unwrap();
    out
}

#[tokio::test]
async fn each_accept_class_gets_its_variant_made_once_and_smaller() {
    let photo = small_photo();
    let origin = Origin::builder()
        .route("/photo.jpg", image(&photo, "image/jpeg"))
        .start()
        .await;
    let node = Node::start(&config(&origin, "lossy", "quality = 80\n")).await;

    // The fill streams the origin's bytes at once; the variant replaces them when made.
    let fill = node.get("/photo.jpg", &[("accept", WEBP)]).await;
    assert_eq!(header(&fill, "vary"), "Accept");
    let cs = header(&fill, "cache-status");
    assert!(
        cs.contains("fwd=uri-miss") && cs.contains("image=original"),
        "{cs}"
    );
    assert_eq!(
        fill.bytes().await.unwrap(),
        photo,
        "the fill sends the original"
    );

    let (ct, cs, webp) = settled(&node, "/photo.jpg", WEBP, "webp").await;
    assert_eq!(ct, "image/webp", "{cs}");
    assert!(
        webp.len() < photo.len(),
        "{} >= {}",
        webp.len(),
        photo.len()
    );
    assert_eq!(dimensions(&webp), (240, 159));

    let (ct, _, jpeg) = settled(&node, "/photo.jpg", NEITHER, "jpeg").await;
    assert_eq!(ct, "image/jpeg");
    assert!(jpeg.len() < photo.len());
    assert_eq!(dimensions(&jpeg), (240, 159));

    if cfg!(feature = "avif") {
        let (ct, _, avif) = settled(&node, "/photo.jpg", AVIF_AND_WEBP, "avif").await;
        assert_eq!(ct, "image/avif");
        assert_eq!(&avif[4..12], b"ftypavif");
        assert!(
            avif.len() < webp.len(),
            "AVIF is offered first because it is smaller"
        );
    }

    // Hundreds of distinct Accept values fall in the same classes: no new object, no fill.
    let fills = origin.hits("/photo.jpg");
    for i in 0..200 {
        let accept = match i % 3 {
            0 => format!("image/webp;q=0.{i:03}, text/x-{i}"),
            1 => format!("image/x-made-up-{i}, */*;q=0.{i:03}"),
            _ => format!("image/avif, image/webp, image/x-{i}"),
        };
        let r = node.get("/photo.jpg", &[("accept", &accept)]).await;
        let cs = header(&r, "cache-status");
        assert!(cs.contains("hit"), "{accept}: {cs}");
    }
    assert_eq!(
        origin.hits("/photo.jpg"),
        fills,
        "every variant was filled once"
    );
    let classes = if cfg!(feature = "avif") { 3.0 } else { 2.0 };
    assert_eq!(fills as f64, classes);
    let optimised = node
        .metric("meridian_image_jobs_total{result=\"optimised\"}")
        .await;
    assert_eq!(optimised, classes, "each variant was made once");
    let on_the_pool = node
        .metric("meridian_transform_jobs_total{result=\"refined\"}")
        .await;
    assert_eq!(
        on_the_pool, classes,
        "by the transform pool, off the proxy threads"
    );
    let webp_out = node
        .metric("meridian_image_bytes_total{direction=\"out\",format=\"webp\"}")
        .await;
    assert_eq!(webp_out, webp.len() as f64);
    let webp_in = node
        .metric("meridian_image_bytes_total{direction=\"in\",format=\"webp\"}")
        .await;
    assert_eq!(webp_in, photo.len() as f64);

    // The access log names the variant served.
    support::eventually("access log lines", || async {
        node.access_log()
            .iter()
            .any(|l| l["image"] == "webp" && l["cache"] == "hit")
    })
    .await;

    // A purge of the URL removes every variant.
    let (status, _) = node
        .admin_post("/purge?url=http://test.local/photo.jpg", Some("test-token"))
        .await;
    assert_eq!(status, 200);
    for accept in [WEBP, NEITHER, AVIF_AND_WEBP] {
        let r = node.get("/photo.jpg", &[("accept", accept)]).await;
        let cs = header(&r, "cache-status");
        assert!(cs.contains("fwd=uri-miss"), "{accept} after purge: {cs}");
    }
}

#[tokio::test]
async fn lossless_output_decodes_to_the_same_pixels_and_keeps_the_colour_profile() {
    let shot = screenshot_with_profile();
    let origin = Origin::builder()
        .route("/shot.png", image(&shot, "image/png"))
        .route("/metal.jpg", image(EXIF_PHOTO, "image/jpeg"))
        .route("/optimised.png", image(SCREENSHOT_ICC, "image/png"))
        .start()
        .await;
    let node = Node::start(&config(&origin, "lossless", "")).await;
    let source_icc = profile();

    // A WebP client: lossless WebP (or a re-deflated PNG, whichever is smaller).
    node.get("/shot.png", &[("accept", WEBP)]).await;
    let (ct, _, webp) = settled(&node, "/shot.png", WEBP, "webp").await;
    assert_eq!(ct, "image/webp");
    assert!(webp.len() < shot.len());
    assert!(rgba(&webp) == rgba(&shot), "pixel-identical");
    let riff = img_parts::webp::WebP::from_bytes(webp.into()).unwrap();
    assert_eq!(riff.icc_profile(), Some(source_icc.clone()), "ICC kept");

    // Any other client: the PNG re-deflated.
    node.get("/shot.png", &[("accept", NEITHER)]).await;
    let (ct, _, png) = settled(&node, "/shot.png", NEITHER, "png").await;
    assert_eq!(ct, "image/png");
    assert!(png.len() < shot.len());
    assert!(rgba(&png) == rgba(&shot), "pixel-identical");
    let png = img_parts::png::Png::from_bytes(png.into()).unwrap();
    assert_eq!(png.icc_profile(), Some(source_icc));

    // A JPEG keeps its coefficients: its metadata (EXIF here) goes, even for WebP clients,
    // and its Huffman tables are made for its own data. Dropping the metadata alone saves
    // 0.4 % of this photograph (887,199 bytes); optimal tables 4.4 % (jpegtran: 851,349).
    node.get("/metal.jpg", &[("accept", WEBP)]).await;
    let (ct, _, jpeg) = settled(&node, "/metal.jpg", WEBP, "jpeg").await;
    assert_eq!(ct, "image/jpeg");
    assert!(jpeg.len() < 860_000, "{} bytes", jpeg.len());
    assert!(rgba(&jpeg) == rgba(EXIF_PHOTO), "pixel-identical");
    let parts = img_parts::jpeg::Jpeg::from_bytes(jpeg.into()).unwrap();
    assert_eq!(parts.exif(), None, "EXIF stripped");

    // A PNG already optimised: the re-deflated one is no smaller, so the original stays.
    node.get("/optimised.png", &[("accept", NEITHER)]).await;
    support::eventually(
        "the already optimised PNG counted as not smaller",
        || async {
            node.metric("meridian_image_jobs_total{result=\"not_smaller\"}")
                .await
                == 1.0
        },
    )
    .await;
    let hit = node.get("/optimised.png", &[("accept", NEITHER)]).await;
    let cs = header(&hit, "cache-status");
    assert!(cs.contains("hit") && cs.contains("image=original"), "{cs}");
    assert_eq!(hit.bytes().await.unwrap(), SCREENSHOT_ICC);
}

/// A 64 x 32 JPEG whose EXIF says "rotate 90° clockwise" (orientation 6), with the ICC
/// profile of the screenshot: displayed, it is 32 wide and 64 high.
fn rotated_jpeg_with_profile() -> (Vec<u8>, img_parts::Bytes) {
    // Left half red, right half blue: after the rotation, top red and bottom blue.
    let pixels = image::RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut body = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut body, 95)
        .encode_image(&pixels)
        .unwrap();
    let icc = profile();
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(body.into()).unwrap();
    let mut exif = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
    exif.extend_from_slice(&[0; 64]); // other tags' room: this EXIF is larger than the tag
    jpeg.set_exif(Some(exif.into()));
    jpeg.set_icc_profile(Some(icc.clone()));
    let mut out = Vec::new();
    jpeg.encoder().write_to(&mut out).unwrap();
    (out, icc)
}

#[tokio::test]
async fn lossy_variants_apply_the_orientation_keep_the_profile_and_drop_the_rest() {
    let (rotated, icc) = rotated_jpeg_with_profile();
    let origin = Origin::builder()
        .route("/rotated.jpg", image(&rotated, "image/jpeg"))
        .start()
        .await;
    let node = Node::start(&config(&origin, "lossy", "")).await;

    node.get("/rotated.jpg", &[("accept", WEBP)]).await;
    let (_, _, webp) = settled(&node, "/rotated.jpg", WEBP, "webp").await;
    let px = rgba(&webp);
    assert_eq!((px.width(), px.height()), (32, 64), "turned upright");
    assert!(px.get_pixel(16, 4)[0] > 150, "red on top");
    assert!(px.get_pixel(16, 60)[2] > 150, "blue at the bottom");
    let riff = img_parts::webp::WebP::from_bytes(webp.into()).unwrap();
    assert_eq!(riff.icc_profile(), Some(icc.clone()), "ICC kept");
    assert_eq!(
        riff.exif(),
        None,
        "EXIF dropped: the pixels are upright now"
    );

    // AVIF cannot carry the profile here: that client gets its JPEG re-encoded (with it).
    if cfg!(feature = "avif") {
        node.get("/rotated.jpg", &[("accept", "image/avif")]).await;
        let (ct, _, jpeg) = settled(&node, "/rotated.jpg", "image/avif", "jpeg").await;
        assert_eq!(ct, "image/jpeg");
        assert_eq!(dimensions(&jpeg), (32, 64));
        let parts = img_parts::jpeg::Jpeg::from_bytes(jpeg.into()).unwrap();
        assert_eq!(parts.icc_profile(), Some(icc));
        assert_eq!(parts.exif(), None);
    }
}

/// A GIF of two frames.
fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        for shade in [0u8, 255] {
            let frame = image::RgbaImage::from_pixel(40, 40, image::Rgba([shade, 0, 0, 255]));
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

#[tokio::test]
async fn what_cannot_be_optimised_safely_passes_through_untouched_and_is_counted() {
    let animated = animated_gif();
    let truncated = &PHOTO[..PHOTO.len() / 3];
    let origin = Origin::builder()
        .route("/animated.gif", image(&animated, "image/gif"))
        .route("/truncated.jpg", image(truncated, "image/jpeg"))
        .route("/big.jpg", image(PHOTO, "image/jpeg"))
        .route(
            "/no-transform.jpg",
            image(PHOTO, "image/jpeg").header("cache-control", "max-age=300, no-transform"),
        )
        .route(
            "/missing.jpg",
            Reply::new(404, PHOTO.to_vec()).header("content-type", "image/jpeg"),
        )
        .start()
        .await;
    // 720 x 477 = 343,440 pixels: above this node's bound.
    let node = Node::start(&config(&origin, "lossy", "max_pixels = 300000\n")).await;

    for (path, body, why) in [
        ("/animated.gif", &animated[..], "animated"),
        ("/truncated.jpg", truncated, "undecodable"),
        ("/big.jpg", PHOTO, "too_many_pixels"),
    ] {
        let fill = node.get(path, &[("accept", WEBP)]).await;
        assert_eq!(fill.bytes().await.unwrap(), body, "{path}: the fill");
        let series = format!("meridian_image_jobs_total{{result=\"{why}\"}}");
        support::eventually(&format!("{path} counted as {why}"), || async {
            node.metric(&series).await == 1.0
        })
        .await;
        let hit = node.get(path, &[("accept", WEBP)]).await;
        let cs = header(&hit, "cache-status");
        assert!(
            cs.contains("hit") && cs.contains("image=original"),
            "{path}: {cs}"
        );
        assert_eq!(hit.bytes().await.unwrap(), body, "{path}: kept as sent");
    }

    // Never planned: no variant marker, no Vary, the origin's bytes.
    for path in ["/no-transform.jpg", "/missing.jpg"] {
        for _ in 0..2 {
            let r = node.get(path, &[("accept", WEBP)]).await;
            assert_eq!(header(&r, "vary"), "", "{path}");
            assert!(!header(&r, "cache-status").contains("image="), "{path}");
            assert_eq!(r.bytes().await.unwrap(), PHOTO, "{path}");
        }
    }
    let optimised = node
        .metric("meridian_image_jobs_total{result=\"optimised\"}")
        .await;
    assert_eq!(optimised, 0.0);

    // Declared larger than the cache's object bound: neither stored nor collected.
    let bounded = format!(
        "{}\n[cache]\nmax_object = \"100KiB\"\n",
        config(&origin, "lossy", "")
    );
    let node = Node::start(&bounded).await;
    for _ in 0..2 {
        let r = node.get("/big.jpg", &[("accept", WEBP)]).await;
        assert_eq!(header(&r, "vary"), "");
        assert!(!header(&r, "cache-status").contains("image="));
        assert_eq!(r.bytes().await.unwrap(), PHOTO);
    }
}
