"""Measures what a segmentation and an upload of a 512×512×200 int16 CT really take
(the server's VmHWM above its idle peak) next to the inference service's own estimate
(its debug log), so that the estimates in docs/configuration.md stay upper bounds.

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
from servers import serve, stop, train_tiny_model  # noqa: E402


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


if __name__ == "__main__":
    main()
