"""Finding 3, any caller could overwrite any object: Segment.output_key and
RenderOverlays.output_prefix took any key (one call each broke `latest`, ListJobs,
GetManifest, a model's weights, a raw training image), and inputs read any key. Now
callers write only under predictions/ and reports/, create-only, and read inputs only
where inputs live; every injected key is refused and every stored object is unchanged
(SHA-256 of every file before and after)."""

import os
import pathlib

import grpc
import pytest

from kit import assert_alive, code_of, digests, nifti_gz, upload_requests


@pytest.fixture(scope="module")
def stored(hostile, api, model):
    """A raw image, a segmentation of it, and the store's digests after them."""
    model_id, _ = model
    api.inf.Segment(
        api.m["inf"].SegmentRequest(
            volume=api.ref("raw/h/images/Case_00001_0000.nii.gz"),
            model_id=model_id,
            output_key="predictions/first.nii.gz",
        ),
        timeout=120,
    )
    return model_id


def _segment(api, model_id, volume, output_key=""):
    return api.inf.Segment(
        api.m["inf"].SegmentRequest(
            volume=api.ref(volume), model_id=model_id, output_key=output_key
        ),
        timeout=120,
    )


def test_injected_output_keys_are_refused_and_nothing_changes(hostile, api, stored):
    model_id = stored
    store = hostile["store"]
    model_keys = [p for p in digests(store) if p.startswith("models/")]
    job_keys = [p for p in digests(store) if p.startswith("jobs/")]
    dataset_keys = [p for p in digests(store) if p.startswith("datasets/")]
    assert model_keys and job_keys and dataset_keys
    before = digests(store)
    targets = [
        *model_keys, *job_keys, *dataset_keys,
        "models/latest.json",
        "raw/h/images/Case_00002_0000.nii.gz",
        "volumes/x.nii.gz",
        "preprocessed/x.slices",
        "predictions/first.nii.gz.png",
        "predictions/../models/x.nii.gz",
        "/etc/passwd.nii.gz",
    ]
    for key in targets:
        code = code_of(lambda: _segment(api, model_id, "raw/h/images/Case_00001_0000.nii.gz", key))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (key, code)
    common = api.m["common"]
    for prefix in ["models", "jobs/x", "datasets", "raw/h/images", "volumes"]:
        request = api.m["met"].RenderOverlaysRequest(
            image=api.ref("raw/h/images/Case_00001_0000.nii.gz"),
            prediction=api.ref("predictions/first.nii.gz"),
            ground_truth=api.ref("raw/h/labels/Case_00001.nii.gz"),
            preprocessing=common.PreprocessingConfig(scheme=common.INTENSITY_SCHEME_NONE),
            output_prefix=prefix,
        )
        code = code_of(lambda: api.met.RenderOverlays(request, timeout=120))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (prefix, code)
    assert digests(store) == before
    assert_alive(hostile, api)


def test_outputs_are_create_only(hostile, api, stored):
    model_id = stored
    store = hostile["store"]
    # The same request again is answered with the object already there...
    again = _segment(api, model_id, "raw/h/images/Case_00001_0000.nii.gz", "predictions/first.nii.gz")
    assert again.label_map.key == "predictions/first.nii.gz"
    before = digests(store)
    # ...another volume's label map never replaces it.
    code = code_of(
        lambda: _segment(api, model_id, "raw/h/images/Case_00002_0000.nii.gz", "predictions/first.nii.gz")
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    # An upload never replaces a stored training image.
    other = nifti_gz((8, 8, 4), fill=lambda s, n: [7] * n)
    code = code_of(
        lambda: api.pre.UploadVolume(
            upload_requests(api.m, other, case={"dataset": "h", "case_id": "Case_00001"}),
            timeout=60,
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert digests(store) == before


def test_inputs_are_read_only_where_inputs_live(hostile, api, stored):
    model_id = stored
    before = digests(hostile["store"])
    weights = next(p for p in before if p.endswith("weights.mpk"))
    job = next(p for p in before if p.endswith("job.json"))
    for key in [weights, job, "predictions/first.nii.gz"]:
        assert code_of(lambda: _segment(api, model_id, key)) == grpc.StatusCode.INVALID_ARGUMENT
    request = api.m["met"].EvaluatePredictionRequest(
        prediction=api.ref(job), ground_truth=api.ref("raw/h/labels/Case_00001.nii.gz")
    )
    assert code_of(lambda: api.met.EvaluatePrediction(request, timeout=60)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert digests(hostile["store"]) == before


def test_symbolic_links_in_the_store_are_never_followed(hostile, api, stored):
    model_id = stored
    store = pathlib.Path(hostile["store"])
    outside = store.parent / "outside-secret"
    outside.mkdir(exist_ok=True)
    (outside / "ct.nii.gz").write_bytes(nifti_gz((8, 8, 4)))
    (store / "volumes").mkdir(exist_ok=True)
    os.symlink(outside, store / "volumes" / "linked")
    code = code_of(lambda: _segment(api, model_id, "volumes/linked/ct.nii.gz"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
