//! `images` on a route and `[images]`: defaults, the formats' order, and every mistake named
//! by its key.

use super::*;
use crate::vocab::image::{ImageFormat, ImageMode};

fn route(keys: &str) -> String {
    MINIMAL.replace("path = \"/\"", &format!("path = \"/\"\n{keys}"))
}

#[test]
fn images_are_off_unless_a_route_asks_and_the_node_defaults_hold() {
    let rt = parse_str(MINIMAL).unwrap();
    assert_eq!(rt.sites[0].routes[0].images, ImageMode::Off);
    assert_eq!(
        rt.images.formats,
        [ImageFormat::Avif, ImageFormat::Webp],
        "AVIF first: smaller at the same quality"
    );
    assert_eq!((rt.images.quality, rt.images.max_pixels), (85, 40_000_000));

    let rt = parse_str(&format!(
        "{}\n[images]\nformats = [\"webp\"]\nquality = 70\nmax_pixels = 1000000\n",
        route("images = \"lossless\"")
    ))
    .unwrap();
    assert_eq!(rt.sites[0].routes[0].images, ImageMode::Lossless);
    assert_eq!(rt.images.formats, [ImageFormat::Webp]);
    assert_eq!((rt.images.quality, rt.images.max_pixels), (70, 1_000_000));
}

#[test]
fn image_mistakes_name_their_keys() {
    let e = one_error(&route("images = \"on\""));
    assert_eq!(e.key, "sites[0].routes[0].images");
    assert!(e.reason.contains("not an image mode"), "{e}");

    let e = one_error(&route("images = \"lossy\"\ncache = false"));
    assert_eq!(e.key, "sites[0].routes[0].images");
    assert!(e.reason.contains("cache = false"), "{e}");

    let e = one_error(&format!(
        "{MINIMAL}\n[images]\nformats = [\"webp\", \"jxl\"]\n"
    ));
    assert_eq!(e.key, "images.formats");
    assert!(e.reason.contains("jxl"), "{e}");

    let e = one_error(&format!(
        "{MINIMAL}\n[images]\nformats = [\"webp\", \"webp\"]\n"
    ));
    assert!(e.reason.contains("twice"), "{e}");

    let e = one_error(&format!("{MINIMAL}\n[images]\nquality = 101\n"));
    assert_eq!(e.key, "images.quality");

    let e = one_error(&format!("{MINIMAL}\n[images]\nmax_pixels = 0\n"));
    assert_eq!(e.key, "images.max_pixels");

    let e = one_error(&format!("{MINIMAL}\n[images]\nsize = 3\n"));
    assert!(e.reason.contains("size"), "{e}");
}
