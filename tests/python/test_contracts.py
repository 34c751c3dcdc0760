"""An outside client (Python grpcio, not Rust) sees the contracts served as written:
health per service, reflection of all four services, and statuses that mean something."""

import importlib
import signal
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from google.protobuf import descriptor_pb2

SERVICES = {
    "abdoseg.preprocessing.v1.PreprocessingService": "abdoseg.preprocessing.v1.preprocessing_pb2",
    "abdoseg.training.v1.TrainingService": "abdoseg.training.v1.training_pb2",
    "abdoseg.inference.v1.InferenceService": "abdoseg.inference.v1.inference_pb2",
    "abdoseg.metrics.v1.MetricsService": "abdoseg.metrics.v1.metrics_pb2",
}


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(server["address"]) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield channel


@pytest.mark.parametrize("service", [*SERVICES, ""])
def test_health_reports_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def _reflect(channel, request):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    assert len(responses) == 1
    return responses[0]


def test_reflection_lists_all_four_services(channel):
    response = _reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in response.list_services_response.service}
    assert set(SERVICES) <= names, names
    assert "grpc.health.v1.Health" in names


@pytest.mark.parametrize("service", SERVICES)
def test_reflected_methods_match_the_proto_files(channel, stubs, service):
    """What the server describes is exactly what proto/ declares."""
    response = _reflect(
        channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    package, name = service.rsplit(".", 1)
    served = {
        m.name: (m.client_streaming, m.server_streaming)
        for f in files
        if f.package == package
        for s in f.service
        if s.name == name
        for m in s.method
    }
    module = importlib.import_module(SERVICES[service])
    declared = {
        m.name: (m.client_streaming, m.server_streaming)
        for m in module.DESCRIPTOR.services_by_name[name].methods
    }
    assert served == declared


def test_statuses_mean_something(channel, stubs):
    preprocessing = importlib.import_module("abdoseg.preprocessing.v1.preprocessing_pb2")
    preprocessing_grpc = importlib.import_module(
        "abdoseg.preprocessing.v1.preprocessing_pb2_grpc"
    )
    stub = preprocessing_grpc.PreprocessingServiceStub(channel)
    with pytest.raises(grpc.RpcError) as invalid:
        stub.GetManifest(preprocessing.GetManifestRequest(dataset_id="../x"), timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetManifest(preprocessing.GetManifestRequest(dataset_id="nope"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_training_refuses_bad_jobs_with_reasons(channel, stubs):
    training = importlib.import_module("abdoseg.training.v1.training_pb2")
    training_grpc = importlib.import_module("abdoseg.training.v1.training_pb2_grpc")
    stub = training_grpc.TrainingServiceStub(channel)
    with pytest.raises(grpc.RpcError) as invalid:
        stub.StartTraining(
            training.StartTrainingRequest(
                config=training.TrainingConfig(dataset_id="ds-x", depth=12)
            ),
            timeout=10,
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "depth" in invalid.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        stub.StartTraining(
            training.StartTrainingRequest(config=training.TrainingConfig(dataset_id="ds-x")),
            timeout=10,
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as no_model:
        stub.GetModel(training.GetModelRequest(model_id="latest"), timeout=10)
    assert no_model.value.code() == grpc.StatusCode.NOT_FOUND
    assert list(stub.ListJobs(training.ListJobsRequest(), timeout=10).jobs) == []


def test_sigterm_stops_the_server_cleanly(server, channel):
    """Runs last in this module: the session's server is stopped by it."""
    process = server["process"]
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("the server did not stop within 30 s of SIGTERM")
