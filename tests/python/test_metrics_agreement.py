"""`abdoseg evaluate` against MedPy, an independent implementation from PyPI.

IoU and Dice are MedPy's `jc` and `dc`. HD95 and NSD are MONAI's definitions computed
from MedPy's directed surface distances (surface voxels by 6-neighbour erosion, SciPy's
exact Euclidean distance transform with the voxel spacing): HD95 is the larger of the two
directed 95th percentiles, NSD the share of both surfaces within the FLARE tolerance.
Overlap must agree within 1e-6, surface metrics within 1e-3 mm."""

import json
import subprocess

import nibabel as nib
import numpy as np
import pytest
from medpy.metric import binary
from scipy import ndimage

# MedPy keeps its directed distances in a module-private helper.
surface_distances = getattr(binary, "__surface_distances")

TOLERANCE_MM = {1: 5.0, 2: 3.0, 3: 3.0, 4: 5.0}


def evaluate(abdoseg, prediction, truth):
    out = subprocess.run(
        [str(abdoseg), "evaluate", str(prediction), str(truth), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return {c["class"]: c for c in json.loads(out.stdout)["classes"]}


def ellipsoid(shape, centre, radii):
    grid = np.indices(shape).astype(float)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def generated_pairs(seed):
    """Label maps with four organs and predictions damaged in different ways: shifted,
    eroded, dilated, speckled, an organ missed, an organ invented, an organ in neither."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers([36, 40, 14], [56, 60, 30]))
    truth = np.zeros(shape, np.uint8)
    for label in (1, 2, 3, 4):
        centre = [rng.uniform(0.3, 0.7) * s for s in shape]
        radii = [rng.uniform(0.08, 0.22) * s for s in shape]
        truth[ellipsoid(shape, centre, radii) & (truth == 0)] = label
    predicted = np.zeros_like(truth)
    for label in (1, 2, 3, 4):
        mask = truth == label
        damage = (seed + label) % 5
        if damage == 0:
            mask = np.roll(mask, int(rng.integers(1, 4)), axis=int(rng.integers(0, 3)))
        elif damage == 1:
            mask = ndimage.binary_erosion(mask)
        elif damage == 2:
            mask = ndimage.binary_dilation(mask, iterations=2)
        elif damage == 3:
            mask = mask ^ (rng.random(shape) < 0.02)
        predicted[mask & (predicted == 0)] = label
    case = seed % 4
    if case == 1:
        predicted[predicted == 4] = 0  # pancreas missed
    elif case == 2:
        truth[truth == 3] = 0  # spleen only predicted
    elif case == 3:
        truth[truth == 4] = 0
        predicted[predicted == 4] = 0  # pancreas in neither
    spacing = [round(float(v), 3) for v in rng.uniform([0.5, 0.5, 1.0], [1.0, 1.2, 5.0])]
    # Some axes flipped: the spacing is the same, the voxel order is not.
    affine = np.diag([s * rng.choice([-1, 1]) for s in spacing] + [1.0])
    return predicted, truth, affine


def check(abdoseg, tmp_path, name, predicted, truth, affine):
    pred_path, truth_path = tmp_path / f"{name}-pred.nii.gz", tmp_path / f"{name}-gt.nii.gz"
    nib.save(nib.Nifti1Image(predicted.astype(np.uint8), affine), str(pred_path))
    nib.save(nib.Nifti1Image(truth.astype(np.uint8), affine), str(truth_path))
    spacing = nib.load(str(truth_path)).header.get_zooms()
    ours = evaluate(abdoseg, pred_path, truth_path)
    checked = 0
    for label in (1, 2, 3, 4):
        p, t = predicted == label, truth == label
        got = ours[label]
        assert (got["true_positives"], got["false_positives"], got["false_negatives"]) == (
            int((p & t).sum()),
            int((p & ~t).sum()),
            int((~p & t).sum()),
        )
        if not p.any() and not t.any():
            assert got["iou"] is None and got["dice"] is None, (name, label)
            assert got["hd95_mm"] is None and got["nsd"] is None
            continue
        assert got["iou"] == pytest.approx(binary.jc(p, t), abs=1e-6), (name, label)
        assert got["dice"] == pytest.approx(binary.dc(p, t), abs=1e-6), (name, label)
        if not p.any() or not t.any():
            assert got["hd95_mm"] is None and got["nsd"] == 0.0, (name, label)
            continue
        to_truth = surface_distances(p, t, spacing, 1)
        to_prediction = surface_distances(t, p, spacing, 1)
        hd95 = max(np.percentile(to_truth, 95), np.percentile(to_prediction, 95))
        tolerance = TOLERANCE_MM[label]
        nsd = ((to_truth <= tolerance).sum() + (to_prediction <= tolerance).sum()) / (
            len(to_truth) + len(to_prediction)
        )
        assert got["hd95_mm"] == pytest.approx(hd95, abs=1e-3), (name, label)
        assert got["nsd"] == pytest.approx(nsd, abs=1e-6), (name, label)
        assert got["nsd_tolerance_mm"] == tolerance
        checked += 1
    return checked


def test_generated_anisotropic_pairs_agree_with_medpy(abdoseg, tmp_path):
    surfaces = 0
    for seed in range(12):
        predicted, truth, affine = generated_pairs(seed)
        surfaces += check(abdoseg, tmp_path, f"pair{seed}", predicted, truth, affine)
    assert surfaces >= 30  # most organ pairs had both surfaces


def test_the_real_case_agrees_with_medpy(abdoseg, tmp_path, real_abdomen):
    label = nib.load(str(real_abdomen[1]))
    truth = np.asarray(label.dataobj).astype(np.uint8)
    assert set(np.unique(truth)) >= {1, 2, 3, 4}
    # A plausible prediction: each organ damaged its own way.
    predicted = np.zeros_like(truth)
    damaged = {
        1: ndimage.binary_erosion(truth == 1, iterations=2),
        2: np.roll(truth == 2, 2, axis=0),
        3: ndimage.binary_dilation(truth == 3),
        4: (truth == 4) & (np.indices(truth.shape)[2] % 7 != 0),
    }
    for organ, mask in damaged.items():
        predicted[mask & (predicted == 0)] = organ
    assert check(abdoseg, tmp_path, "real", predicted, truth, label.affine) == 4
    # The same pair with anisotropic spacing written into the header.
    anisotropic = label.affine @ np.diag([0.26, 0.26, 1.7, 1.0])
    assert check(abdoseg, tmp_path, "real-aniso", predicted, truth, anisotropic) == 4
