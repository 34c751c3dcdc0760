"""MONAI (PyTorch; not installed by CI) against `abdoseg evaluate`: the largest HD95 and
NSD differences on the 12 generated pairs of tests/python/test_metrics_agreement.py, and
MONAI's time for HD95 + NSD of the four organs on the pair that
`cargo bench -p abdoseg-metrics --bench evaluate` writes to target/bench-data.

    pip install monai torch medpy nibabel scipy
    python3 services/metrics/benches/compare_monai.py [path/to/abdoseg]
"""

import importlib.util
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import monai
import nibabel as nib
import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

REPO = pathlib.Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location(
    "agreement", REPO / "tests" / "python" / "test_metrics_agreement.py"
)
agreement = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agreement)
TOLERANCE_MM = agreement.TOLERANCE_MM


def monai_surfaces(p, t, spacing, organ):
    yp = torch.from_numpy((p == organ)[None, None].astype(np.float32))
    yt = torch.from_numpy((t == organ)[None, None].astype(np.float32))
    hd95 = compute_hausdorff_distance(yp, yt, include_background=True, percentile=95, spacing=spacing)
    nsd = compute_surface_dice(yp, yt, [TOLERANCE_MM[organ]], include_background=True, spacing=spacing)
    return hd95.item(), nsd.item()


def agreement_on_generated_pairs(abdoseg):
    worst_hd95 = worst_nsd = 0.0
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        pred, truth = pathlib.Path(tmp) / "p.nii.gz", pathlib.Path(tmp) / "t.nii.gz"
        for seed in range(12):
            p, t, affine = agreement.generated_pairs(seed)
            nib.save(nib.Nifti1Image(p, affine), str(pred))
            nib.save(nib.Nifti1Image(t, affine), str(truth))
            spacing = [float(z) for z in nib.load(str(truth)).header.get_zooms()]
            out = subprocess.run(
                [abdoseg, "evaluate", str(pred), str(truth), "--json"],
                check=True, capture_output=True, text=True,
            )
            ours = {c["class"]: c for c in json.loads(out.stdout)["classes"]}
            for organ in (1, 2, 3, 4):
                if not (p == organ).any() or not (t == organ).any():
                    continue
                hd95, nsd = monai_surfaces(p, t, spacing, organ)
                worst_hd95 = max(worst_hd95, abs(hd95 - ours[organ]["hd95_mm"]))
                worst_nsd = max(worst_nsd, abs(nsd - ours[organ]["nsd"]))
                checked += 1
    print(f"MONAI {monai.__version__}: {checked} organ pairs, "
          f"max |ΔHD95| {worst_hd95:.1e} mm, max |ΔNSD| {worst_nsd:.1e}")


def timing_on_the_bench_pair(runs=3):
    data = REPO / "target" / "bench-data"
    truth_image = nib.load(str(data / "eval-truth.nii.gz"))
    t = np.asarray(truth_image.dataobj).astype(np.uint8)
    p = np.asarray(nib.load(str(data / "eval-predicted.nii.gz")).dataobj).astype(np.uint8)
    spacing = [float(z) for z in truth_image.header.get_zooms()]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        results = [monai_surfaces(p, t, spacing, organ) for organ in (1, 2, 3, 4)]
        times.append(time.perf_counter() - start)
    print(f"MONAI surfaces (HD95 + NSD, 4 organs): {statistics.median(times):.2f} s "
          f"({torch.get_num_threads()} threads)")
    for organ, (hd95, nsd) in enumerate(results, start=1):
        print(f"  class {organ}: HD95 {hd95:.4f} mm NSD {nsd:.6f}")


if __name__ == "__main__":
    agreement_on_generated_pairs(sys.argv[1] if len(sys.argv) > 1 else str(REPO / "target" / "release" / "abdoseg"))
    timing_on_the_bench_pair()
