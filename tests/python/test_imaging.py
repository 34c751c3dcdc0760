"""The imaging core against independent implementations: nibabel reads what
`abdoseg preprocess` writes with the source's exact geometry, and the study's schemes
agree with OpenCV on the real CT's slices."""

import subprocess

import cv2
import nibabel as nib
import numpy as np
import pytest


def preprocess(abdoseg, source, out, scheme, *extra):
    subprocess.run(
        [str(abdoseg), "preprocess", str(source), str(out), "--scheme", scheme, *extra],
        check=True,
        capture_output=True,
    )
    return nib.load(str(out))


def variants(real_abdomen, tmp_path):
    """The real CT as given (RAS, int32), rewritten as LPS, as float32 and as int16."""
    image = nib.load(str(real_abdomen[0]))
    data = np.asarray(image.dataobj)
    yield "ras-int32", real_abdomen[0]
    to_lps = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(image.affine),
        nib.orientations.axcodes2ornt(("L", "P", "S")),
    )
    lps = image.as_reoriented(to_lps)
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    path = tmp_path / "lps.nii.gz"
    nib.save(lps, str(path))
    yield "lps", path
    for dtype in (np.float32, np.int16):
        path = tmp_path / f"{np.dtype(dtype).name}.nii"
        nib.save(nib.Nifti1Image(data.astype(dtype), image.affine, image.header), str(path))
        yield np.dtype(dtype).name, path
    # Big-endian, as some older scanners and tools write.
    header = image.header.as_byteswapped(">")
    header.set_data_dtype(">i2")
    path = tmp_path / "big-endian.nii"
    nib.save(nib.Nifti1Image(data.astype(">i2"), image.affine, header), str(path))
    assert nib.load(str(path)).header.endianness == ">"
    yield "big-endian", path


@pytest.mark.parametrize("scheme", ["none", "he", "clahe", "zscore"])
def test_outputs_keep_the_exact_geometry(abdoseg, real_abdomen, tmp_path, scheme):
    for name, source in variants(real_abdomen, tmp_path):
        src = nib.load(str(source))
        out = preprocess(abdoseg, source, tmp_path / f"{name}-{scheme}.nii.gz", scheme)
        assert out.shape == src.shape, name
        np.testing.assert_allclose(out.affine, src.affine, atol=1e-4, err_msg=name)
        assert out.header.get_data_dtype() == (np.float32 if scheme == "zscore" else np.uint8)
        assert nib.aff2axcodes(out.affine) == nib.aff2axcodes(src.affine)


def test_every_variant_gives_the_same_axial_slices(abdoseg, real_abdomen, tmp_path):
    """Voxel order, dtype and endianness change nothing that abdoseg computes."""
    reference = None
    for name, source in variants(real_abdomen, tmp_path):
        out = tmp_path / f"{name}-same.nii.gz"
        preprocess(abdoseg, source, out, "he")
        slices = np.stack(canonical_slices(out))
        if reference is None:
            reference = slices
        else:
            np.testing.assert_array_equal(slices, reference, err_msg=name)


def canonical_slices(path):
    """Axial slices as abdoseg sees them: rows anterior→posterior, columns right→left."""
    image = nib.as_closest_canonical(nib.load(str(path)))  # RAS
    data = np.asarray(image.dataobj)
    return [np.ascontiguousarray(data[::-1, ::-1, z].T) for z in range(data.shape[2])]


@pytest.fixture(scope="module")
def windowed(abdoseg, real_abdomen, tmp_path_factory):
    out = tmp_path_factory.mktemp("window") / "none.nii.gz"
    preprocess(abdoseg, real_abdomen[0], out, "none")
    return canonical_slices(out)


def test_he_agrees_with_opencv(abdoseg, real_abdomen, windowed, tmp_path):
    threshold = 10
    ours = canonical_slices(
        preprocess(abdoseg, real_abdomen[0], tmp_path / "he.nii.gz", "he",
                   "--threshold", str(threshold)).get_filename())
    worst = 0.0
    for gray, mine in zip(windowed, ours):
        gray = gray.copy()
        gray[gray < threshold] = 0
        reference = cv2.equalizeHist(gray)
        worst = max(worst, np.abs(reference.astype(int) - mine.astype(int)).mean())
    assert worst <= 1.0, worst


@pytest.mark.parametrize("tiles,clip", [(8, 2.0), (4, 4.0), (16, 1.0)])
def test_clahe_agrees_with_opencv(abdoseg, real_abdomen, windowed, tmp_path, tiles, clip):
    ours = canonical_slices(
        preprocess(abdoseg, real_abdomen[0], tmp_path / "clahe.nii.gz", "clahe",
                   "--tiles", str(tiles), "--clip-limit", str(clip)).get_filename())
    clahe = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles))
    differences = [
        np.abs(clahe.apply(gray).astype(int) - mine.astype(int)).mean()
        for gray, mine in zip(windowed, ours)
    ]
    assert max(differences) <= 2.0, max(differences)
