"""Effect of keeping the largest connected components on IoU: every test case of a
prepared dataset is segmented twice by a running server (`abdoseg segment`, with and
without `--all-components`) and compared with its labels on the full source grid.

    python3 services/inference/benches/postprocess_iou.py \
        --url http://127.0.0.1:50051 --store DIR --dataset ds-... --model model-...

DIR is the server's file store (`--store file://DIR`). Prints per-organ IoU over all test
voxels (the study's measure) and the mean per case, for both settings.
"""

import argparse
import json
import pathlib
import subprocess
import tempfile

import nibabel as nib
import numpy as np

ORGANS = ["liver", "kidneys", "spleen", "pancreas"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--store", required=True, type=pathlib.Path)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--bin", default="target/release/abdoseg")
    args = parser.parse_args()
    manifest = json.loads((args.store / "datasets" / args.dataset / "manifest.json").read_text())
    cases = [c for c in manifest["cases"] if c["split"] == "test"]
    totals = {mode: np.zeros((2, 4)) for mode in ("largest", "all")}
    per_case = {mode: [] for mode in ("largest", "all")}
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            image = args.store / case["source_image"]["key"]
            truth = np.asarray(nib.load(args.store / case["source_label"]["key"]).dataobj)
            for mode, extra in (("largest", []), ("all", ["--all-components"])):
                out = pathlib.Path(work) / f"{case['case_id']}-{mode}.nii.gz"
                subprocess.run(
                    [args.bin, "segment", image, out, "--url", args.url, "--model", args.model,
                     *extra],
                    check=True, capture_output=True,
                )
                predicted = np.asarray(nib.load(out).dataobj)
                ious = []
                for organ in range(1, 5):
                    p, t = predicted == organ, truth == organ
                    inter, union = np.logical_and(p, t).sum(), np.logical_or(p, t).sum()
                    totals[mode][:, organ - 1] += (inter, union)
                    ious.append(inter / union if union else 1.0)
                per_case[mode].append(ious)
    print(f"{len(cases)} test cases of {args.dataset}, model {args.model}")
    print("| postprocessing | " + " | ".join(ORGANS) + " | mean |")
    print("|---|" + "---:|" * 5)
    for mode, label in (("all", "none (all components)"), ("largest", "largest components")):
        pooled = totals[mode][0] / np.maximum(totals[mode][1], 1)
        print(f"| {label}, IoU over all voxels | "
              + " | ".join(f"{v:.3f}" for v in pooled) + f" | {pooled.mean():.3f} |")
        mean = np.mean(per_case[mode], axis=0)
        print(f"| {label}, mean IoU per case | "
              + " | ".join(f"{v:.3f}" for v in mean) + f" | {mean.mean():.3f} |")


if __name__ == "__main__":
    main()
