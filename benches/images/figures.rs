//! Image optimisation figures on the corpus in `benches/images/`: for each image and each
//! variant Meridian makes, the bytes against the original and the encode time per megapixel
//! (median of three runs, one thread, as on the transform pool). Outputs are written to
//! `target/image-figures/` for `benches/images/ssim.py`, which measures their SSIM.
//!
//!     cargo run --release --example image_figures && benches/images/ssim.py
//!
//! `QUALITY=n` sets `[images] quality` (default 85, Meridian's default).

use meridian::transform::image::{optimise, ImageWork, SourceFormat};
use meridian::vocab::image::{ImageFormat, ImageMode, ImageTarget};
use std::path::Path;
use std::time::{Duration, Instant};

const VARIANTS: [(&str, ImageMode, ImageTarget); 5] = [
    (
        "lossy-avif",
        ImageMode::Lossy,
        ImageTarget::Modern(ImageFormat::Avif),
    ),
    (
        "lossy-webp",
        ImageMode::Lossy,
        ImageTarget::Modern(ImageFormat::Webp),
    ),
    ("lossy-source", ImageMode::Lossy, ImageTarget::Source),
    (
        "lossless-webp",
        ImageMode::Lossless,
        ImageTarget::Modern(ImageFormat::Webp),
    ),
    ("lossless-source", ImageMode::Lossless, ImageTarget::Source),
];

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("benches/images");
    let out = root.join("target/image-figures");
    std::fs::create_dir_all(&out)?;
    let quality = std::env::var("QUALITY")
        .ok()
        .and_then(|q| q.parse().ok())
        .unwrap_or(85u8);
    let mut files: Vec<_> = std::fs::read_dir(&corpus)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    files.sort();
    println!("| image | pixels | original | variant | output | of original | ms per megapixel |");
    println!("|---|---|---|---|---|---|---|");
    for path in files {
        let body = std::fs::read(&path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let source = if name.ends_with(".png") {
            SourceFormat::Png
        } else {
            SourceFormat::Jpeg
        };
        let (w, h) = image::image_dimensions(&path).map_err(std::io::Error::other)?;
        let megapixels = f64::from(w) * f64::from(h) / 1e6;
        for (label, mode, target) in VARIANTS {
            let work = ImageWork {
                source,
                target,
                mode,
                quality,
                max_pixels: 40_000_000,
            };
            let mut times = Vec::new();
            let mut result = None;
            for _ in 0..3 {
                let started = Instant::now();
                let r = optimise(&work, &body);
                times.push(started.elapsed());
                result = Some(r);
            }
            times.sort();
            let median = times.get(1).copied().unwrap_or(Duration::ZERO);
            let per_mp = median.as_secs_f64() * 1000.0 / megapixels;
            match result {
                Some(Ok(done)) => {
                    let file = out.join(format!("{name}.{label}.{}", done.format));
                    std::fs::write(&file, &done.body)?;
                    println!(
                        "| {name} | {w}x{h} | {} | {label} | {} ({}) | {:.1} % | {per_mp:.0} |",
                        body.len(),
                        done.body.len(),
                        done.format,
                        100.0 * done.body.len() as f64 / body.len() as f64
                    );
                }
                Some(Err(kept)) => println!(
                    "| {name} | {w}x{h} | {} | {label} | kept ({}) | 100 % | {per_mp:.0} |",
                    body.len(),
                    kept.label()
                ),
                None => {}
            }
        }
    }
    Ok(())
}
