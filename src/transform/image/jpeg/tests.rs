use super::*;

// Made by libjpeg-turbo's cjpeg 2.1 from one 203 x 131 noisy gradient (odd sizes, so the
// last MCUs are partial): 4:2:0 with a restart marker every 5 MCUs (23 of them, RST7
// wrapping to RST0); 4:2:2 in three scans of one component each (tables redefined between
// scans); grayscale; progressive.
const RESTARTS: &[u8] = include_bytes!("testdata/restart-420.jpg");
const THREE_SCANS: &[u8] = include_bytes!("testdata/three-scans-422.jpg");
const GRAY: &[u8] = include_bytes!("testdata/gray.jpg");
const PROGRESSIVE: &[u8] = include_bytes!("testdata/progressive.jpg");
// A camera's file (metadata, restart markers) and one with tables already optimal.
const CAMERA: &[u8] = include_bytes!("../../../../benches/images/board-exif.jpg");

fn pixels(jpeg: &[u8]) -> Vec<u8> {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .unwrap()
        .to_rgba8()
        .into_raw()
}

fn assert_same_pixels_and_smaller(name: &str, jpeg: &[u8]) -> Vec<u8> {
    let optimised = optimise_huffman(jpeg).unwrap_or_else(|| panic!("{name}: not re-coded"));
    assert!(
        optimised.len() < jpeg.len(),
        "{name}: {} -> {} bytes",
        jpeg.len(),
        optimised.len()
    );
    assert!(pixels(&optimised) == pixels(jpeg), "{name}: pixels differ");
    optimised
}

#[test]
fn sequential_jpegs_get_smaller_and_decode_to_the_same_pixels() {
    for (name, jpeg) in [
        ("restarts", RESTARTS),
        ("three scans", THREE_SCANS),
        ("gray", GRAY),
        ("camera", CAMERA),
    ] {
        assert_same_pixels_and_smaller(name, jpeg);
    }
}

#[test]
fn restart_markers_stay_where_they_were() {
    let optimised = assert_same_pixels_and_smaller("restarts", RESTARTS);
    let markers = |jpeg: &[u8]| -> Vec<u8> {
        jpeg.windows(2)
            .filter(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
            .map(|w| w[1])
            .collect()
    };
    let before = markers(RESTARTS);
    assert_eq!(before.len(), 23);
    assert_eq!(markers(&optimised), before);
}

#[test]
fn each_scan_gets_its_own_tables_and_every_other_segment_stays() {
    let optimised = assert_same_pixels_and_smaller("three scans", THREE_SCANS);
    let segments = |jpeg: &[u8]| -> Vec<u8> {
        let mut found = Vec::new();
        let mut pos = 2;
        while let [0xFF, marker, l1, l0, ..] = jpeg[pos..] {
            found.push(marker);
            if marker == 0xDA {
                pos = entropy_end(jpeg, pos + 2 + usize::from(u16::from_be_bytes([l1, l0])));
            } else {
                pos += 2 + usize::from(u16::from_be_bytes([l1, l0]));
            }
        }
        found
    };
    // APP0, two DQT, SOF0, then a DHT before each of the three scans.
    assert_eq!(
        segments(&optimised),
        [0xE0, 0xDB, 0xDB, 0xC0, 0xC4, 0xDA, 0xC4, 0xDA, 0xC4, 0xDA]
    );
}

#[test]
fn progressive_and_damaged_files_are_left_alone() {
    assert_eq!(optimise_huffman(PROGRESSIVE), None);
    assert_eq!(optimise_huffman(b"not a jpeg"), None);
    // Cut inside the entropy-coded data: fewer MCUs than the frame promises.
    assert_eq!(optimise_huffman(&RESTARTS[..RESTARTS.len() / 2]), None);
    // The file re-coded already has optimal tables: re-coding again changes nothing.
    let once = optimise_huffman(GRAY).unwrap();
    assert_eq!(optimise_huffman(&once).as_deref(), Some(&once[..]));
}

#[test]
fn no_byte_flipped_anywhere_makes_it_panic() {
    // Values that mean something to a parser, at every third byte of the segments before
    // the data and at 60 places spread over the entropy-coded data (an unoptimised test
    // build takes milliseconds a file).
    let data_start = GRAY.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let spread = (GRAY.len() - data_start) / 60;
    let positions = (0..data_start + 16)
        .step_by(3)
        .chain((data_start..GRAY.len()).step_by(spread));
    for pos in positions {
        for value in [0x00, 0xC2, 0xD9, 0xFF] {
            let mut damaged = GRAY.to_vec();
            damaged[pos] = value;
            let _ = optimise_huffman(&damaged);
        }
    }
}
