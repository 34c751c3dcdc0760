"""Finding 2's tail: EvaluatePrediction kept computing after the caller's deadline. Now
its work stops at the deadline (DEADLINE_EXCEEDED): the server's CPU time stops growing
right after the answer instead of running on for seconds."""

import os
import time

import grpc
import numpy as np

from kit import assert_alive, code_of, nifti_gz, upload_requests


def _cpu_seconds(server):
    with open(f"/proc/{server['process'].pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime, fields 14 and 15 (11 and 12 after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_evaluation_stops_at_the_callers_deadline(hostile, api):
    # Checkerboards of liver: every labelled voxel is on the surface, so the surface
    # metrics are millions of nearest-neighbour queries (tens of CPU seconds).
    shape = (256, 256, 128)
    plane = shape[0] * shape[1]

    def board(offset):
        def fill(start, count):
            index = np.arange(start, start + count)
            x, y, z = index % shape[0], (index // shape[0]) % shape[1], index // plane
            return ((x + y + z + offset) % 2).astype(np.uint8)

        return fill

    for name, offset in [("a", 0), ("b", 1)]:
        data = nifti_gz(shape, fill=board(offset), chunk_voxels=1 << 20)
        api.pre.UploadVolume(upload_requests(api.m, data, volume_id=f"board-{name}"), timeout=120)
    request = api.m["met"].EvaluatePredictionRequest(
        prediction=api.ref("volumes/board-a.nii.gz"),
        ground_truth=api.ref("volumes/board-b.nii.gz"),
        surface_metrics=True,
    )
    code = code_of(lambda: api.met.EvaluatePrediction(request, timeout=1.0))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    # Work that cannot stop midway (building one k-d tree) may finish first.
    time.sleep(3.0)
    before = _cpu_seconds(hostile)
    time.sleep(2.0)
    spent = _cpu_seconds(hostile) - before
    assert spent < 0.5, f"the server kept computing: {spent:.1f} CPU s in 2 s after the deadline"
    assert_alive(hostile, api)
