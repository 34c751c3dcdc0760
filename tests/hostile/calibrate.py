"""Measures what a segmentation and an upload of a 512×512×200 int16 CT, and a training
job (96², base 16, batch 30, depth 5), really take (the server's VmHWM above its idle
peak) next to the services' own estimates (the inference service's debug log; the
training estimate by its formula, TrainingConfig::peak_bytes), so that the estimates in
docs/configuration.md stay upper bounds.

    ABDOSEG_BIN=target/debug/abdoseg python3 tests/hostile/calibrate.py
"""

import os
import pathlib
import re
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from grpc_tools import protoc  # noqa: E402

from kit import Api, modules, nifti_gz, peak_rss_mib, upload_requests  # noqa: E402
from servers import run_cli, serve, stop, train_tiny_model  # noqa: E402


def training_estimate_mib(size, base, batch, depth=5, max_filters=512):
    """TrainingConfig::peak_bytes without the parameters and draws (small here)."""
    floats = sum(
        min(base << level, max_filters) * (size >> level) ** 2 for level in range(depth)
    )
    return batch * floats * 16 * 2 * 4 / 2**20


def training(abdoseg, size=96, base=16, batch=30):
    server = serve(pathlib.Path(tempfile.mkdtemp()), abdoseg)
    try:
        url, store = f"http://{server['address']}", f"file://{server['store']}"
        run_cli(abdoseg, "phantom", "--cases", 4, "--seed", 1, "--store", store,
                "--dataset", "t")
        prepared = run_cli(abdoseg, "dataset", "--url", url, "prepare", "--source", "raw/t",
                           "--size", size)
        dataset = re.search(r"dataset (ds-[0-9a-f]+)", prepared).group(1)
        idle = peak_rss_mib(server)
        run_cli(abdoseg, "train", "--url", url, "--dataset", dataset, "--depth", 5,
                "--base-filters", base, "--batch-size", batch, "--epochs", 1,
                "--slices-per-epoch", batch * 2, "--device", "cpu")
        print(f"training {size}² base {base} batch {batch}: peak "
              f"{peak_rss_mib(server) - idle:.0f} MiB above idle; estimated "
              f"{training_estimate_mib(size, base, batch):.0f} MiB (+ the decoded dataset)")
    finally:
        stop(server)


def main():
    proto = HERE.parent.parent / "proto"
    out = pathlib.Path(tempfile.mkdtemp())
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(proto)) for p in proto.rglob("*.proto"))
    protoc.main(["protoc", f"-I{proto}", f"-I{well_known}", f"--python_out={out}",
                 f"--grpc_python_out={out}", *protos])
    sys.path.insert(0, str(out))
    abdoseg = os.environ.get("ABDOSEG_BIN", str(HERE.parent.parent / "target/debug/abdoseg"))
    log = pathlib.Path(tempfile.mkdtemp()) / "server.log"
    server = serve(pathlib.Path(tempfile.mkdtemp()), abdoseg, "--memory-budget-mib", "4096",
                   env={"RUST_LOG": "info,abdoseg_inference=debug"}, stderr=open(log, "w"))
    try:
        model, _, _ = train_tiny_model(abdoseg, server, "calibration")
        idle = peak_rss_mib(server)
        rng = np.random.default_rng(0)
        data = nifti_gz((512, 512, 200), dtype=np.int16,
                        fill=lambda start, count: rng.integers(-1000, 1000, count))
        with grpc.insecure_channel(server["address"]) as channel:
            api = Api(channel, modules())
            api.pre.UploadVolume(upload_requests(api.m, data, volume_id="big"), timeout=300)
            uploaded = peak_rss_mib(server)
            started = time.time()
            api.inf.Segment(api.m["inf"].SegmentRequest(
                volume=api.ref("volumes/big.nii.gz"), model_id=model), timeout=600)
            took = time.time() - started
            segmented = peak_rss_mib(server)
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())
        estimate = re.findall(r"estimate_mib=(\d+)", text)
        print(f"file {len(data) / 2**20:.0f} MiB; idle peak {idle:.0f} MiB")
        print(f"upload: peak {uploaded - idle:.0f} MiB above idle")
        print(f"segment ({took:.1f} s): peak {segmented - idle:.0f} MiB above idle; "
              f"estimated {estimate[-1] if estimate else '?'} MiB")
    finally:
        stop(server)
    training(abdoseg)


if __name__ == "__main__":
    main()
