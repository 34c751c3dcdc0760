#!/usr/bin/env python3
"""A DICOM CT series to NIfTI on the grid of a reference NIfTI (its label map).

Until abdoseg reads DICOM itself (issue 19), this puts `../shared/data/real-dicom` into the
AbdomenCT-1K layout for scoring: the series (pydicom, JPEG 2000 through pylibjpeg-openjpeg)
is placed voxel by voxel by world coordinates onto the reference's grid, so the CT and its
labels share one geometry exactly. Refuses a reference whose voxels do not fall on the
series' voxels (only axis permutations and flips are allowed).

    python3 tests/tools/dicom_to_nifti.py DICOM_DIR REFERENCE.nii.gz OUT.nii.gz
"""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom


def read_series(folder: Path):
    """The slices sorted along the slice normal, in HU, and the series' LPS affine."""
    slices = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
    if not slices:
        raise SystemExit(f"no DICOM files in {folder}")
    orientation = np.array(slices[0].ImageOrientationPatient, dtype=float)
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    slices.sort(key=lambda s: float(np.dot(normal, np.array(s.ImagePositionPatient, float))))
    positions = np.array([s.ImagePositionPatient for s in slices], dtype=float)
    steps = np.diff(positions @ normal)
    if len(steps) and (steps.min() <= 0 or steps.max() - steps.min() > 0.01):
        raise SystemExit("uneven or repeated slice positions")
    spacing_row, spacing_column = (float(v) for v in slices[0].PixelSpacing)
    hu = np.stack(
        [
            s.pixel_array.astype(np.float32) * float(s.RescaleSlope) + float(s.RescaleIntercept)
            for s in slices
        ]
    )  # (slice, row, column)
    # LPS world position of voxel (column i, row j, slice k).
    affine = np.eye(4)
    affine[:3, 0] = row * spacing_column
    affine[:3, 1] = column * spacing_row
    affine[:3, 2] = normal * (steps[0] if len(steps) else 1.0)
    affine[:3, 3] = positions[0]
    return hu, affine


def main() -> None:
    folder, reference, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    hu, lps_affine = read_series(folder)
    ref = nib.load(reference)
    ras_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    # Reference voxel index -> series voxel index (column, row, slice).
    to_series = np.linalg.inv(lps_affine) @ ras_to_lps @ ref.affine
    shape = ref.shape[:3]
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    index = grid.reshape(-1, 3) @ to_series[:3, :3].T + to_series[:3, 3]
    rounded = np.rint(index)
    if np.abs(index - rounded).max() > 1e-3:
        raise SystemExit("the reference grid does not fall on the series' voxels")
    i, j, k = (rounded[:, a].astype(int) for a in range(3))
    inside = (i >= 0) & (i < hu.shape[2]) & (j >= 0) & (j < hu.shape[1]) & (k >= 0) & (k < hu.shape[0])
    if not inside.all():
        raise SystemExit("the reference grid reaches outside the series")
    data = hu[k, j, i].reshape(shape)
    image = nib.Nifti1Image(np.rint(data).astype(np.int16), ref.affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, out)


if __name__ == "__main__":
    main()
