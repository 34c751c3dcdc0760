"""Finding 6, codes and logs: permanent store errors answered UNAVAILABLE "retry
later"; a corrupt volume had one code in preprocessing and another elsewhere; oversized
messages answered OUT_OF_RANGE; rejected requests left no log line; killed writes left
staging files forever. Now: a code per kind of cause, the same in every service, and a
warn line per rejection."""

import pathlib

import grpc
import pytest

from kit import assert_alive, code_of, nifti_gz, start_hostile, upload_requests, wait_for_log
from servers import stop


def test_permanent_store_errors_are_not_retry_later(hostile, api, model):
    model_id, _ = model
    segment = lambda key: api.inf.Segment(
        api.m["inf"].SegmentRequest(
            volume=api.ref("raw/h/images/Case_00001_0000.nii.gz"), model_id=model_id,
            output_key=key,
        ),
        timeout=120,
    )
    # A name longer than any file system takes.
    assert code_of(lambda: segment("predictions/" + "x" * 300 + ".nii.gz")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    # A file where a folder is needed.
    segment("predictions/clash.nii.gz")
    assert code_of(lambda: segment("predictions/clash.nii.gz/inner.nii.gz")) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_a_corrupt_volume_is_invalid_argument_in_every_service(hostile, api, model):
    model_id, _ = model
    store = pathlib.Path(hostile["store"])
    (store / "volumes").mkdir(exist_ok=True)
    good = nifti_gz((8, 8, 4))
    (store / "volumes" / "truncated.nii.gz").write_bytes(good[: len(good) // 2])
    corrupt = api.ref("volumes/truncated.nii.gz")
    common = api.m["common"]
    calls = {
        "Segment": lambda: api.inf.Segment(
            api.m["inf"].SegmentRequest(volume=corrupt, model_id=model_id), timeout=60
        ),
        "PreprocessVolume": lambda: api.pre.PreprocessVolume(
            api.m["pre"].PreprocessVolumeRequest(
                volume=corrupt,
                preprocessing=common.PreprocessingConfig(scheme=common.INTENSITY_SCHEME_NONE),
            ),
            timeout=60,
        ),
        "EvaluatePrediction": lambda: api.met.EvaluatePrediction(
            api.m["met"].EvaluatePredictionRequest(
                prediction=corrupt, ground_truth=api.ref("raw/h/labels/Case_00001.nii.gz")
            ),
            timeout=60,
        ),
        "UploadVolume": lambda: api.pre.UploadVolume(
            upload_requests(api.m, good[: len(good) // 2], volume_id="corrupt"), timeout=60
        ),
    }
    codes = {name: code_of(call) for name, call in calls.items()}
    assert set(codes.values()) == {grpc.StatusCode.INVALID_ARGUMENT}, codes


def test_an_oversized_message_is_resource_exhausted_and_logged(hostile, api):
    huge = api.m["train"].GetJobRequest(job_id="j" * (17 << 20))
    try:
        api.train.GetJob(huge, timeout=60)
        raise AssertionError("a 17 MiB message was accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    text = wait_for_log(hostile, r"request rejected.*GetJob.*ResourceExhausted")
    assert "jjjjjjjj" not in text
    assert_alive(hostile, api)


def test_every_rejection_leaves_a_warn_line(hostile, api):
    request = api.m["train"].GetJobRequest(job_id="job-not-there")
    assert code_of(lambda: api.train.GetJob(request, timeout=10)) == grpc.StatusCode.NOT_FOUND
    wait_for_log(hostile, r"WARN.*request rejected.*TrainingService/GetJob.*NotFound")


def test_staging_files_of_killed_writes_are_removed_at_start(tmp_path_factory, abdoseg, stubs):
    first = start_hostile(tmp_path_factory, abdoseg)
    store = pathlib.Path(first["store"])
    stop(first)
    first["log_file"].close()
    (store / "jobs" / "j1").mkdir(parents=True)
    (store / "jobs" / "j1" / "job.json#4").write_bytes(b"{half")
    (store / "predictions").mkdir()
    (store / "predictions" / "p.nii.gz#17").write_bytes(b"\x1f\x8b")
    (store / "predictions" / "kept.nii.gz").write_bytes(b"kept")
    from servers import serve

    again = serve(store, abdoseg)
    try:
        assert not (store / "jobs" / "j1" / "job.json#4").exists()
        assert not (store / "predictions" / "p.nii.gz#17").exists()
        assert (store / "predictions" / "kept.nii.gz").read_bytes() == b"kept"
    finally:
        stop(again)
