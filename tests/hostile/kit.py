"""The hostile client's kit: a real `abdoseg serve all` under a 1 GiB memory budget
(the probe ran an 8 GiB cgroup; a smaller budget makes the same requests bite harder),
its log in a file, stubs, a tiny model, and helpers to build outsized volumes without
holding them."""

import gzip
import hashlib
import importlib
import io
import pathlib
import re
import time

import grpc
import nibabel as nib
import numpy as np

from servers import serve

BUDGET_MIB = 1024
IDLE_SECS = 3
# What the process may reach beyond its budget: the binary, the runtime, a warm tiny
# model, buffers of calls that are refused.
BASELINE_MIB = 768


def modules():
    names = {
        "common": "abdoseg.common.v1.common_pb2",
        "pre": "abdoseg.preprocessing.v1.preprocessing_pb2",
        "pre_grpc": "abdoseg.preprocessing.v1.preprocessing_pb2_grpc",
        "train": "abdoseg.training.v1.training_pb2",
        "train_grpc": "abdoseg.training.v1.training_pb2_grpc",
        "inf": "abdoseg.inference.v1.inference_pb2",
        "inf_grpc": "abdoseg.inference.v1.inference_pb2_grpc",
        "met": "abdoseg.metrics.v1.metrics_pb2",
        "met_grpc": "abdoseg.metrics.v1.metrics_pb2_grpc",
    }
    return {k: importlib.import_module(v) for k, v in names.items()}


class Api:
    """The four services' stubs on one channel, and the messages' modules."""

    def __init__(self, channel, m):
        self.m = m
        self.pre = m["pre_grpc"].PreprocessingServiceStub(channel)
        self.train = m["train_grpc"].TrainingServiceStub(channel)
        self.inf = m["inf_grpc"].InferenceServiceStub(channel)
        self.met = m["met_grpc"].MetricsServiceStub(channel)

    def ref(self, key):
        return self.m["common"].ObjectRef(key=key)


def start_hostile(tmp_path_factory, abdoseg, *extra):
    store = tmp_path_factory.mktemp("hostile-store")
    log_path = store.parent / f"{store.name}.log"
    log = open(log_path, "w")
    running = serve(
        store,
        abdoseg,
        "--memory-budget-mib", str(BUDGET_MIB),
        "--stream-idle-timeout-secs", str(IDLE_SECS),
        *extra,
        env={"RUST_LOG": "info"},
        stderr=log,
    )
    running["log"] = log_path
    running["log_file"] = log
    return running








def peak_rss_mib(server):
    """The server's peak resident memory so far (VmHWM), in MiB."""
    status = pathlib.Path(f"/proc/{server['process'].pid}/status").read_text()
    kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
    return kib / 1024


def assert_alive(server, api):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert server["process"].poll() is None, "the server died"
    with grpc.insecure_channel(server["address"]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def nifti_gz(shape, dtype=np.uint8, fill=None, chunk_voxels=1 << 24):
    """A gzipped NIfTI-1 of `shape` whose voxels are 0 (or `fill(start, count)`), written
    chunk by chunk so that the test never holds the volume."""
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_zooms((1.0,) * len(shape))
    header.set_sform(np.eye(4), code=1)
    header["vox_offset"] = 352
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
        gz.write(header.binaryblock)
        gz.write(b"\0\0\0\0")
        total = int(np.prod(shape))
        itemsize = np.dtype(dtype).itemsize
        zeros = bytes(chunk_voxels * itemsize)
        done = 0
        while done < total:
            count = min(chunk_voxels, total - done)
            if fill is None:
                gz.write(zeros[: count * itemsize])
            else:
                gz.write(np.asarray(fill(done, count), dtype=dtype).tobytes())
            done += count
    return out.getvalue()


def upload_requests(m, data, volume_id=None, case=None, label=False, chunk=1 << 20):
    pre = m["pre"]
    if volume_id is not None:
        destination = pre.UploadDestination(volume_id=volume_id)
    elif label:
        destination = pre.UploadDestination(dataset_label=pre.DatasetCase(**case))
    else:
        destination = pre.UploadDestination(dataset_image=pre.DatasetCase(**case))
    yield pre.UploadVolumeRequest(
        start=pre.UploadVolumeStart(
            destination=destination,
            total_size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    )
    for at in range(0, len(data), chunk):
        yield pre.UploadVolumeRequest(chunk=data[at : at + chunk])


def stream_requests(m, data, model_id="latest", chunk=1 << 20):
    inf = m["inf"]
    yield inf.SegmentStreamRequest(
        start=inf.SegmentStreamStart(model_id=model_id, total_size_bytes=len(data))
    )
    for at in range(0, len(data), chunk):
        yield inf.SegmentStreamRequest(chunk=data[at : at + chunk])


def digests(store):
    """SHA-256 of every object in a file store, by key."""
    root = pathlib.Path(store)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def code_of(call):
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def wait_for_log(server, pattern, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        server["log_file"].flush()
        text = pathlib.Path(server["log"]).read_text(errors="replace")
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"no log line matches {pattern!r}")
