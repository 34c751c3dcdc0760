"""The label map of `abdoseg segment` opens in nibabel with exactly the input's affine and
shape: for the real CT and for copies of it rewritten as LPS, as float32 and as int16.
A tiny model is trained first through the CLI (phantoms, prepare, train)."""

import nibabel as nib
import numpy as np
import pytest

from servers import run_cli, train_tiny_model


def _run(abdoseg, *args):
    return run_cli(abdoseg, *args)


@pytest.fixture(scope="module")
def model(abdoseg, own_server):
    model, _, trained = train_tiny_model(abdoseg, own_server, "py", cases=5, seed=4)
    assert "epoch" in trained and "pancreas" in trained, trained
    return model


def _lps(image):
    """The same voxels reoriented to LPS+ (nibabel's orientation codes)."""
    current = nib.orientations.io_orientation(image.affine)
    target = nib.orientations.axcodes2ornt(("L", "P", "S"))
    return image.as_reoriented(nib.orientations.ornt_transform(current, target))


def _as_dtype(image, dtype):
    data = np.asarray(image.dataobj).astype(dtype)
    copy = nib.Nifti1Image(data, image.affine, image.header)
    copy.set_data_dtype(dtype)
    return copy


@pytest.mark.parametrize("variant", ["original", "lps", "float32", "int16"])
def test_label_map_keeps_the_input_geometry(abdoseg, own_server, model, real_abdomen,
                                            tmp_path, variant):
    original = nib.load(real_abdomen[0])
    if variant == "original":
        source = real_abdomen[0]
    else:
        image = {
            "lps": lambda: _lps(original),
            "float32": lambda: _as_dtype(original, np.float32),
            "int16": lambda: _as_dtype(original, np.int16),
        }[variant]()
        source = tmp_path / f"{variant}.nii.gz"
        nib.save(image, source)
    output = tmp_path / f"{variant}-labels.nii.gz"
    printed = _run(
        abdoseg, "segment", source, output, "--url", f"http://{own_server['address']}",
        "--model", model,
    )
    assert "liver" in printed
    source_image = nib.load(source)
    labels = nib.load(output)
    assert labels.shape == source_image.shape
    np.testing.assert_array_equal(labels.affine, source_image.affine)
    assert labels.get_data_dtype() == np.uint8
    values = np.unique(np.asarray(labels.dataobj))
    assert set(values.tolist()) <= {0, 1, 2, 3, 4}
    if variant == "lps":
        assert nib.aff2axcodes(labels.affine) == ("L", "P", "S")


def test_segment_without_a_server_starts_inference_in_process(abdoseg, own_server, model,
                                                              real_abdomen, tmp_path):
    output = tmp_path / "local.nii"
    printed = _run(
        abdoseg, "segment", real_abdomen[0], output, "--store", f"file://{own_server['store']}",
        "--model", model,
    )
    assert model in printed
    labels = nib.load(output)
    source = nib.load(real_abdomen[0])
    assert labels.shape == source.shape
    np.testing.assert_array_equal(labels.affine, source.affine)
