"""The model shipped in the binary on the two shared real CTs: `abdoseg segment` over an
empty store answers with it, and its label maps are scored twice, by `abdoseg evaluate`
and independently with nibabel/numpy (the two must agree). The DICOM case is converted
with pydicom first (tests/tools/dicom_to_nifti.py). The floors sit below the figures in
docs/benchmarks.md ("Real CT"): they catch a broken bundle or a preprocessing drift, and
both cases were in the shipped model's training data (as templates), so they say nothing
about unseen patients — that is what the held-out rows of docs/benchmarks.md are for."""

import json
import pathlib
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from servers import run_cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
ORGANS = {1: "liver", 2: "kidney", 3: "spleen", 4: "pancreas"}
# IoU floors per case and organ (organs a case lacks are not scored).
FLOORS = {
    "real-abdomen": {1: 0.75, 2: 0.7, 3: 0.7},
    "real-dicom": {1: 0.75, 3: 0.7},
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    dicom_ct = folder / "real-dicom_0000.nii.gz"
    subprocess.run(
        [sys.executable, str(ROOT / "tests/tools/dicom_to_nifti.py"),
         str(DATA / "real-dicom/dicom"), str(DATA / "real-dicom/labels.nii.gz"), str(dicom_ct)],
        check=True,
    )
    return {
        "real-abdomen": (DATA / "real-abdomen/images/Case_00001_0000.nii.gz",
                         DATA / "real-abdomen/labels/Case_00001.nii.gz"),
        "real-dicom": (dicom_ct, DATA / "real-dicom/labels.nii.gz"),
    }


def test_the_converted_dicom_case_sits_on_its_labels_grid(cases):
    image, labels = (nib.load(p) for p in cases["real-dicom"])
    assert image.shape == labels.shape
    np.testing.assert_allclose(image.affine, labels.affine)
    hu = np.asarray(image.dataobj)
    truth = np.asarray(labels.dataobj)
    # Rescale applied: air near −1000 HU, the liver at soft-tissue HU.
    assert hu.min() < -900
    assert 40 < hu[truth == 1].mean() < 200


@pytest.mark.parametrize("name", ["real-abdomen", "real-dicom"])
def test_the_shipped_model_segments_the_real_cases(abdoseg, cases, tmp_path, name):
    image, labels = cases[name]
    output = tmp_path / f"{name}-labels.nii.gz"
    printed = run_cli(abdoseg, "segment", image, output, "--store", f"file://{tmp_path / 'store'}")
    assert "model-0000000000000-default" in printed
    report = json.loads(run_cli(abdoseg, "evaluate", output, labels, "--json", "--no-surface"))
    by_cli = {c["name"]: c["iou"] for c in report["classes"]}
    prediction = np.asarray(nib.load(output).dataobj)
    truth = np.asarray(nib.load(labels).dataobj)
    assert prediction.shape == truth.shape
    for organ, floor in FLOORS[name].items():
        p, t = prediction == organ, truth == organ
        iou = (p & t).sum() / (p | t).sum()
        assert by_cli[ORGANS[organ]] == pytest.approx(iou, abs=1e-6)
        assert iou > floor, f"{name} {ORGANS[organ]}: IoU {iou:.3f}"
