"""Fixtures for the outside-client tests (tests/python: contracts; tests/hostile: a
hostile client): Python stubs generated from proto/ at test time, and a real
`abdoseg serve all` process on a free loopback port."""

import importlib
import os
import pathlib
import subprocess
import sys

import pytest

from servers import serve, stop

REPO = pathlib.Path(__file__).resolve().parents[1]
PROTO = REPO / "proto"


def _binary() -> pathlib.Path:
    explicit = os.environ.get("ABDOSEG_BIN")
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    subprocess.run(
        ["cargo", "build", "--quiet", "--bin", "abdoseg"], cwd=REPO, check=True
    )
    return target / "debug" / "abdoseg"


@pytest.fixture(scope="session")
def abdoseg():
    """Path of the `abdoseg` binary (built if needed)."""
    return _binary()


@pytest.fixture(scope="session")
def real_abdomen():
    """The real CT beside the checkout: (image path, label path)."""
    root = REPO.parent / "shared" / "data" / "real-abdomen"
    image = root / "images" / "Case_00001_0000.nii.gz"
    label = root / "labels" / "Case_00001.nii.gz"
    assert image.exists(), f"the real case belongs at {root}"
    return image, label


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """Generates Python modules for every proto with grpc_tools (no system protoc)."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("generated")
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    assert len(protos) == 5, protos
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ]
    )
    assert code == 0, "protoc failed on proto/"
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    return out


@pytest.fixture(scope="session")
def server(tmp_path_factory, abdoseg):
    """`abdoseg serve all` on 127.0.0.1:0 over a fresh file store; yields its address."""
    running = serve(tmp_path_factory.mktemp("store"), abdoseg)
    yield running
    stop(running)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory, abdoseg):
    """A server of the module's own (the session's is stopped by the SIGTERM check)."""
    running = serve(tmp_path_factory.mktemp("own-store"), abdoseg)
    yield running
    stop(running)
