"""Finding 2, memory amplification: a few hundred bytes on the wire that declare a huge
volume (or huge outputs) were decoded anyway — 7.7 GB peaks, OOM kills. Now every call
that decodes a volume reserves its estimated peak from the process's budget (1 GiB here)
before it allocates, and is refused when it cannot; the server's peak resident memory
(VmHWM) stays under budget + baseline."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from kit import (
    BASELINE_MIB,
    BUDGET_MIB,
    assert_alive,
    code_of,
    nifti_gz,
    peak_rss_mib,
    stream_requests,
    upload_requests,
)

REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
BOUND_MIB = BUDGET_MIB + BASELINE_MIB


@pytest.fixture(scope="module", autouse=True)
def bounded_peak(hostile, api, model):
    yield
    assert peak_rss_mib(hostile) < BOUND_MIB, f"peak {peak_rss_mib(hostile):.0f} MiB"
    assert_alive(hostile, api)


@pytest.mark.parametrize("side", [23170, 16384])
def test_a_tiny_segment_stream_upload_of_a_huge_volume_is_refused(hostile, api, model, side):
    data = nifti_gz((side, side, 1))
    assert len(data) < 600_000
    model_id, _ = model

    def call():
        return list(api.inf.SegmentStream(stream_requests(api.m, data, model_id), timeout=120))

    assert code_of(call) in REFUSED
    assert peak_rss_mib(hostile) < BOUND_MIB


def test_eight_concurrent_small_uploads_of_huge_volumes_are_refused(hostile, api):
    data = nifti_gz((16384, 16384, 1))

    def upload(n):
        return code_of(
            lambda: api.pre.UploadVolume(
                upload_requests(api.m, data, volume_id=f"huge-{n}"), timeout=120
            )
        )

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(upload, range(8)))
    assert set(codes) <= REFUSED, codes
    assert peak_rss_mib(hostile) < BOUND_MIB


def test_preprocessing_a_tiny_volume_into_huge_slices_is_refused(hostile, api):
    # 219 bytes on the wire: 1×1×3000 voxels, which 2048×2048 slices would make 12 GB.
    data = nifti_gz((1, 1, 3000), dtype=np.int16)
    api.pre.UploadVolume(upload_requests(api.m, data, volume_id="thin"), timeout=60)
    common = api.m["common"]
    request = api.m["pre"].PreprocessVolumeRequest(
        volume=api.ref("volumes/thin.nii.gz"),
        preprocessing=common.PreprocessingConfig(
            scheme=common.INTENSITY_SCHEME_NONE, slice_height=2048, slice_width=2048
        ),
    )
    assert code_of(lambda: api.pre.PreprocessVolume(request, timeout=120)) in REFUSED
    assert peak_rss_mib(hostile) < BOUND_MIB


def test_evaluating_small_files_of_huge_label_maps_is_refused_or_bounded(hostile, api):
    # 65 KB-class files: 4096×4096×16 label maps, a checkerboard of liver in one.
    shape = (4096, 4096, 16)
    checker = lambda start, count: (np.arange(start, start + count) % 2).astype(np.uint8)
    for name, fill in [("flat", None), ("checker", checker)]:
        data = nifti_gz(shape, fill=fill)
        code = code_of(
            lambda: api.pre.UploadVolume(
                upload_requests(api.m, data, volume_id=f"labels-{name}"), timeout=120
            )
        )
        assert code in REFUSED | {grpc.StatusCode.OK}
        if code != grpc.StatusCode.OK:
            return  # refused at the door: nothing to evaluate
    request = api.m["met"].EvaluatePredictionRequest(
        prediction=api.ref("volumes/labels-checker.nii.gz"),
        ground_truth=api.ref("volumes/labels-flat.nii.gz"),
        surface_metrics=True,
    )
    assert code_of(lambda: api.met.EvaluatePrediction(request, timeout=120)) in REFUSED | {
        grpc.StatusCode.OK
    }
    assert peak_rss_mib(hostile) < BOUND_MIB
