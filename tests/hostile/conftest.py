"""Fixtures of the hostile-client tests: a real server under a small memory budget,
its stubs and a tiny model (helpers in kit.py)."""

import grpc
import pytest

from kit import Api, modules, start_hostile
from servers import stop, train_tiny_model


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, abdoseg, stubs):
    running = start_hostile(tmp_path_factory, abdoseg)
    yield running
    stop(running)
    running["log_file"].close()


@pytest.fixture(scope="module")
def api(hostile, stubs):
    with grpc.insecure_channel(hostile["address"]) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield Api(channel, modules())


@pytest.fixture(scope="module")
def model(abdoseg, hostile):
    """A tiny model trained through the CLI: (model id, dataset id)."""
    model, dataset, _ = train_tiny_model(abdoseg, hostile, "h", cases=4, seed=9)
    return model, dataset
