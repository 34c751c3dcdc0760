"""Runs the imaging benchmarks and their peers on the same data in one run, and prints
the table for docs/benchmarks.md.

    python3 shared/imaging/benches/compare.py

abdoseg: criterion (`cargo bench -p abdoseg-imaging --bench imaging`), mean time.
Peers, on the same files: nibabel (read), OpenCV (equalizeHist, createCLAHE, resize),
scikit-image (equalize_hist, equalize_adapthist); median of repeated runs.
"""

import json
import pathlib
import subprocess
import sys
import timeit

import cv2
import nibabel as nib
import numpy as np
from skimage import exposure, transform

REPO = pathlib.Path(__file__).resolve().parents[3]
DATA = REPO / "target" / "bench-data"
CRITERION = REPO / "target" / "criterion"
HE_THRESHOLD = 80


def ours(name):
    estimates = json.loads((CRITERION / name / "new" / "estimates.json").read_text())
    return estimates["mean"]["point_estimate"] / 1e9


def peer(function, repeat=20, number=1):
    return min(sorted(timeit.repeat(function, repeat=repeat, number=number))[: repeat // 2 + 1]) / number


def main():
    if "--skip-rust" not in sys.argv:
        subprocess.run(["cargo", "bench", "-p", "abdoseg-imaging", "--bench", "imaging"],
                       cwd=REPO, check=True)
    volume = DATA / "phantom-512x512x200.nii.gz"
    gray = np.fromfile(DATA / "slice-512x512.u8", dtype=np.uint8).reshape(512, 512)
    floats = gray.astype(np.float32) / 255

    def he_opencv():
        _, zeroed = cv2.threshold(gray, HE_THRESHOLD - 1, 255, cv2.THRESH_TOZERO)
        return cv2.equalizeHist(zeroed)

    def he_skimage():
        zeroed = np.where(gray < HE_THRESHOLD, 0, gray)
        return exposure.equalize_hist(zeroed)

    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    rows = [
        ("`.nii.gz` read, 512×512×200 int16 → float32 HU", ours("nii_gz_read_512x512x200_int16"),
         [("nibabel", peer(lambda: nib.load(str(volume)).get_fdata(dtype=np.float32), repeat=5))]),
        (f"HE variant (threshold {HE_THRESHOLD} + equalization), 512×512", ours("he_slice_512x512"),
         [("OpenCV threshold + equalizeHist", peer(he_opencv, repeat=200)),
          ("scikit-image equalize_hist", peer(he_skimage, repeat=50))]),
        ("CLAHE 8×8 tiles, clip 2.0, 512×512", ours("clahe_slice_512x512"),
         [("OpenCV createCLAHE", peer(lambda: clahe.apply(gray), repeat=200)),
          ("scikit-image equalize_adapthist", peer(
              lambda: exposure.equalize_adapthist(gray, kernel_size=64, clip_limit=0.01), repeat=10))]),
        ("resize bilinear 512→256 (float32)", ours("resize_bilinear_512_to_256"),
         [("OpenCV resize INTER_LINEAR", peer(lambda: cv2.resize(floats, (256, 256)), repeat=200)),
          ("scikit-image resize order 1", peer(
              lambda: transform.resize(floats, (256, 256), order=1, anti_aliasing=False), repeat=20))]),
        ("resize nearest 512→256 (uint8 labels)", ours("resize_nearest_512_to_256"),
         [("OpenCV resize INTER_NEAREST", peer(
             lambda: cv2.resize(gray, (256, 256), interpolation=cv2.INTER_NEAREST), repeat=200))]),
    ]
    print(f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), nibabel {nib.__version__}, "
          f"numpy {np.__version__}\n")
    print("| work | abdoseg | peer | peer time | abdoseg ÷ peer |")
    print("|---|---:|---|---:|---:|")
    for work, mine, peers in rows:
        for name, theirs in peers:
            print(f"| {work} | {fmt(mine)} | {name} | {fmt(theirs)} | {mine / theirs:.2f}× |")


def fmt(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


if __name__ == "__main__":
    main()
