"""Finding 4, slow-loris: SegmentStream took its admission slot before reading the
upload, with no idle timeout, so nine streams that sent only their first message held
every slot for minutes. Now a stream is admitted only once its upload is complete, and a
stream silent for longer than the idle timeout is dropped."""

import threading
import time

import grpc

from kit import IDLE_SECS, assert_alive, nifti_gz, upload_requests


def _start_only(api, model_id, release):
    inf = api.m["inf"]

    def requests():
        yield inf.SegmentStreamRequest(
            start=inf.SegmentStreamStart(model_id=model_id, total_size_bytes=1 << 20)
        )
        release.wait(120)

    return api.inf.SegmentStream(requests(), timeout=120)


def test_nine_start_only_streams_do_not_block_an_honest_call(hostile, api, model):
    model_id, _ = model
    release = threading.Event()
    outcomes = []

    def hold():
        try:
            list(_start_only(api, model_id, release))
            outcomes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            outcomes.append((error.code(), time.monotonic()))

    started = time.monotonic()
    holders = [threading.Thread(target=hold) for _ in range(9)]
    for holder in holders:
        holder.start()
    time.sleep(1.0)
    reply = api.inf.Segment(
        api.m["inf"].SegmentRequest(
            volume=api.ref("raw/h/images/Case_00003_0000.nii.gz"), model_id=model_id
        ),
        timeout=60,
    )
    assert reply.label_map.key.startswith("predictions/")
    assert_alive(hostile, api)
    # The silent streams are dropped after the idle timeout, not held for minutes.
    for holder in holders:
        holder.join(timeout=IDLE_SECS + 30)
    release.set()
    assert len(outcomes) == 9
    for outcome in outcomes:
        code, at = outcome
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert at - started < IDLE_SECS + 15


def test_nine_start_only_uploads_do_not_block_an_honest_upload(hostile, api):
    pre = api.m["pre"]
    release = threading.Event()
    codes = []

    def requests():
        yield pre.UploadVolumeRequest(
            start=pre.UploadVolumeStart(
                destination=pre.UploadDestination(volume_id="never"), total_size_bytes=1 << 20
            )
        )
        release.wait(120)

    def hold():
        try:
            api.pre.UploadVolume(requests(), timeout=120)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())

    holders = [threading.Thread(target=hold) for _ in range(9)]
    for holder in holders:
        holder.start()
    time.sleep(1.0)
    honest = nifti_gz((16, 16, 8))
    reply = api.pre.UploadVolume(upload_requests(api.m, honest, volume_id="honest"), timeout=60)
    assert reply.volume.key == "volumes/honest.nii.gz"
    for holder in holders:
        holder.join(timeout=IDLE_SECS + 30)
    release.set()
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 9
