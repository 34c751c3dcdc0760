"""Measures the HE variant's threshold: how well each organ stands apart from the rest of
the body after thresholding + equalization, for several thresholds.

Separation per organ: |mean(organ) - mean(other body voxels)| / pooled std, on gray
levels, over the real CT and phantom cases; also the share of body voxels and of organ
voxels that the threshold turns black. The default is the threshold with the best mean
separation that blackens at most 1 % of organ voxels. Usage (from the repository root):

    cargo build --release --bin abdoseg
    python3 shared/imaging/benches/he_threshold.py [--phantoms DIR]
"""

import argparse
import pathlib
import subprocess
import tempfile

import nibabel as nib
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[3]
BINARY = REPO / "target" / "release" / "abdoseg"
REAL = REPO.parent / "shared" / "data" / "real-abdomen"
ORGANS = {1: "liver", 2: "kidney", 3: "spleen", 4: "pancreas"}
THRESHOLDS = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def separation(gray, labels, body):
    scores = {}
    for value, name in ORGANS.items():
        organ = gray[labels == value].astype(float)
        rest = gray[body & (labels == 0)].astype(float)
        if organ.size == 0 or rest.size == 0:
            continue
        pooled = np.sqrt((organ.var() + rest.var()) / 2) or 1.0
        scores[name] = abs(organ.mean() - rest.mean()) / pooled
    return scores


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--phantoms", type=pathlib.Path, help="folder written by abdoseg phantom")
    args = parser.parse_args()
    cases = [(REAL / "images/Case_00001_0000.nii.gz", REAL / "labels/Case_00001.nii.gz")]
    if args.phantoms:
        for image in sorted((args.phantoms / "images").glob("*_0000.nii.gz"))[:5]:
            label = args.phantoms / "labels" / (image.name[: -len("_0000.nii.gz")] + ".nii.gz")
            cases.append((image, label))
    print(f"{'threshold':>9}  " + "  ".join(f"{n:>8}" for n in ORGANS.values()) + "      mean  body zeroed  organ zeroed")
    with tempfile.TemporaryDirectory() as tmp:
        for threshold in THRESHOLDS:
            totals = {n: [] for n in ORGANS.values()}
            zeroed = []
            organ_zeroed = []
            for image, label in cases:
                out = pathlib.Path(tmp) / "he.nii.gz"
                subprocess.run([str(BINARY), "preprocess", str(image), str(out), "--scheme", "he",
                                "--threshold", str(threshold)], check=True, capture_output=True)
                gray = np.asarray(nib.load(str(out)).dataobj)
                hu = np.asarray(nib.load(str(image)).dataobj)
                labels = np.asarray(nib.load(str(label)).dataobj)
                body = hu > -500
                for name, score in separation(gray, labels, body).items():
                    totals[name].append(score)
                zeroed.append(float((gray[body] == 0).mean()))
                organ_zeroed.append(float((gray[labels > 0] == 0).mean()))
            means = {n: float(np.mean(v)) for n, v in totals.items()}
            print(f"{threshold:>9}  " + "  ".join(f"{means[n]:>8.3f}" for n in ORGANS.values())
                  + f"  {np.mean(list(means.values())):>8.3f}  {np.mean(zeroed):>11.1%}"
                  + f"  {np.mean(organ_zeroed):>12.2%}")


if __name__ == "__main__":
    main()
