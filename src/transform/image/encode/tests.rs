use super::*;

#[test]
fn the_orientation_block_reads_back_as_the_orientation() {
    for value in 1..=8 {
        let exif = orientation_exif(value);
        let read = image::metadata::Orientation::from_exif_chunk(&exif);
        assert_eq!(read.map(|o| o.to_exif()), Some(value));
    }
}
