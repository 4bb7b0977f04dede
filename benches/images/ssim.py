#!/usr/bin/env python3
"""SSIM of the lossy outputs `cargo run --release --example image_figures` wrote to
target/image-figures/ against their originals in benches/images/, and whether the lossless
ones decode to the same pixels.

SSIM as Wang et al. (2004) define it, on luma (BT.601), with an 8x8 sliding window (step 4),
C1 = (0.01 L)^2, C2 = (0.03 L)^2: the figure image tools quote. Needs pillow (with WebP and
AVIF) and numpy: pip install pillow numpy.
"""

import os
import sys

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "benches", "images")
OUT = os.path.join(ROOT, "target", "image-figures")


def luma(img):
    rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def windows(a, size=8, step=4):
    from numpy.lib.stride_tricks import sliding_window_view
    return sliding_window_view(a, (size, size))[::step, ::step]


def ssim(a, b):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    wa, wb = windows(a), windows(b)
    ma, mb = wa.mean(axis=(-1, -2)), wb.mean(axis=(-1, -2))
    va, vb = wa.var(axis=(-1, -2)), wb.var(axis=(-1, -2))
    cov = ((wa - ma[..., None, None]) * (wb - mb[..., None, None])).mean(axis=(-1, -2))
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def main():
    if not os.path.isdir(OUT):
        sys.exit("run `cargo run --release --example image_figures` first")
    print("| output | bytes | SSIM | pixels identical |")
    print("|---|---|---|---|")
    for name in sorted(os.listdir(OUT)):
        original_name, variant, _ = name.rsplit(".", 2)
        original = ImageOps.exif_transpose(Image.open(os.path.join(CORPUS, original_name)))
        output = Image.open(os.path.join(OUT, name))
        output.load()
        if output.size != original.size:
            print(f"| {name} | - | size {output.size} != {original.size} | no |")
            continue
        same = np.array_equal(np.asarray(original.convert("RGBA")), np.asarray(output.convert("RGBA")))
        score = ssim(luma(original), luma(output))
        print(f"| {name} | {os.path.getsize(os.path.join(OUT, name))} | {score:.4f} | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    main()
