"""MedPy on the pair `cargo bench -p abdoseg-metrics --bench evaluate` writes: the same
overlap (jc, dc) and surface metrics (directed distances → HD95, NSD) for the four
organs, timed the same way (median of repeated runs)."""

import pathlib
import statistics
import sys
import time

import nibabel as nib
import numpy as np
from medpy.metric import binary

surface_distances = getattr(binary, "__surface_distances")
DATA = pathlib.Path(__file__).resolve().parents[3] / "target" / "bench-data"
TOLERANCE_MM = {1: 5.0, 2: 3.0, 3: 3.0, 4: 5.0}


def overlap(p, t):
    return [(binary.jc(p == c, t == c), binary.dc(p == c, t == c)) for c in (1, 2, 3, 4)]


def surfaces(p, t, spacing):
    out = []
    for c in (1, 2, 3, 4):
        a = surface_distances(p == c, t == c, spacing, 1)
        b = surface_distances(t == c, p == c, spacing, 1)
        tol = TOLERANCE_MM[c]
        hd95 = max(np.percentile(a, 95), np.percentile(b, 95))
        nsd = ((a <= tol).sum() + (b <= tol).sum()) / (len(a) + len(b))
        out.append((hd95, nsd))
    return out


def timed(f, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    truth_img = nib.load(str(DATA / "eval-truth.nii.gz"))
    t = np.asarray(truth_img.dataobj).astype(np.uint8)
    p = np.asarray(nib.load(str(DATA / "eval-predicted.nii.gz")).dataobj).astype(np.uint8)
    spacing = truth_img.header.get_zooms()
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds, ious = timed(lambda: overlap(p, t), runs)
    print(f"medpy overlap (jc + dc, 4 organs): {seconds * 1000:.1f} ms")
    seconds, surf = timed(lambda: surfaces(p, t, spacing), runs)
    print(f"medpy surfaces (HD95 + NSD, 4 organs): {seconds:.2f} s")
    for c, ((iou, dice), (hd95, nsd)) in enumerate(zip(ious, surf), start=1):
        print(f"  class {c}: IoU {iou:.6f} Dice {dice:.6f} HD95 {hd95:.4f} mm NSD {nsd:.6f}")


if __name__ == "__main__":
    main()
