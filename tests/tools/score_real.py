#!/usr/bin/env python3
"""Scores a registered model on the two shared real CTs: `abdoseg segment`, then IoU twice,
by `abdoseg evaluate` and independently with nibabel/numpy (they must agree).

    python3 tests/tools/score_real.py [--abdoseg target/release/abdoseg] [--model latest]
        [--all-components]

The store is the CLI's default (or ABDOSEG_STORE / XDG_DATA_HOME, as for the CLI). The
DICOM case is converted with pydicom first (tests/tools/dicom_to_nifti.py). Prints one
Markdown row per case; organs a case does not contain print as a dash. Each row ends with
the voxels called liver on slices below the true liver's lowest (the pelvic false
positives counted in docs/benchmarks.md; with --all-components before the largest
component is chosen).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
ORGANS = ["liver", "kidney", "spleen", "pancreas"]


def real_cases(workdir: Path):
    """(name, image, labels) of the shared real cases, the DICOM one converted."""
    abdomen = DATA / "real-abdomen"
    yield "real-abdomen", abdomen / "images/Case_00001_0000.nii.gz", abdomen / "labels/Case_00001.nii.gz"
    dicom = DATA / "real-dicom"
    image = workdir / "real-dicom_0000.nii.gz"
    subprocess.run(
        [sys.executable, str(ROOT / "tests/tools/dicom_to_nifti.py"), str(dicom / "dicom"),
         str(dicom / "labels.nii.gz"), str(image)],
        check=True,
    )
    yield "real-dicom", image, dicom / "labels.nii.gz"


def iou(prediction: np.ndarray, truth: np.ndarray, organ: int):
    p, t = prediction == organ, truth == organ
    if not t.any():
        return None
    return float((p & t).sum() / (p | t).sum())


def liver_below_liver(prediction: np.ndarray, truth: np.ndarray, affine: np.ndarray) -> int:
    """Voxels predicted liver on axial slices below the true liver's lowest one (the
    pelvic false positives of docs/benchmarks.md, "Real CT"); 0 when the case has no
    liver."""
    codes = nib.aff2axcodes(affine)
    axis = next(i for i, c in enumerate(codes) if c in ("S", "I"))
    truth_slices = np.flatnonzero((truth == 1).any(axis=tuple(a for a in range(3) if a != axis)))
    if truth_slices.size == 0:
        return 0
    liver = np.moveaxis(prediction == 1, axis, 0)
    below = liver[: truth_slices.min()] if codes[axis] == "S" else liver[truth_slices.max() + 1:]
    return int(below.sum())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--abdoseg", default=str(ROOT / "target/release/abdoseg"))
    parser.add_argument("--model", default="latest")
    parser.add_argument("--json", help="write the scores here as JSON")
    parser.add_argument("--all-components", action="store_true",
                        help="keep every connected component (`abdoseg segment --all-components`)")
    args = parser.parse_args()
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name, image, labels in real_cases(workdir):
            out = workdir / f"{name}_prediction.nii.gz"
            command = [args.abdoseg, "segment", str(image), str(out), "--model", args.model]
            if args.all_components:
                command.append("--all-components")
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            report = subprocess.run([args.abdoseg, "evaluate", str(out), str(labels), "--json", "--no-surface"],
                                    check=True, capture_output=True, text=True).stdout
            by_cli = {c["name"]: c.get("iou") for c in json.loads(report)["classes"]}
            prediction = np.asarray(nib.load(out).dataobj).astype(np.uint8)
            truth_image = nib.load(labels)
            truth = np.asarray(truth_image.dataobj).astype(np.uint8)
            case = {}
            for k, organ in enumerate(ORGANS, start=1):
                value = iou(prediction, truth, k)
                if value is not None and by_cli.get(organ) is not None and abs(value - by_cli[organ]) > 1e-6:
                    raise SystemExit(f"{name} {organ}: evaluate says {by_cli[organ]}, numpy {value}")
                case[organ] = value
            scores[name] = case
            cells = " | ".join("—" if case[o] is None else f"{case[o]:.2f}" for o in ORGANS)
            below = liver_below_liver(prediction, truth, truth_image.affine)
            case["liver_voxels_below_the_liver"] = below
            print(f"| {name} | {cells} | {below:,} liver voxels below the liver |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
