"""Finding 5, shutdown: one open health Watch kept the process alive for the whole grace
(30 s), polling probes never saw NOT_SERVING (no delay by default), and WatchJob ended
with OK and no final event. Now Watch streams end with the delay, polling sees
NOT_SERVING during it (a delay is on by default), and a job watcher is told the server
is stopping (UNAVAILABLE) while the job pauses to resume later."""

import signal
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit import Api, modules, start_hostile
from servers import run_cli, stop, write_small_phantoms

DELAY = 2


def test_an_open_watch_does_not_hold_shutdown_and_probes_see_not_serving(
    tmp_path_factory, abdoseg, stubs
):
    # The grace (5 s, see servers.py) is longer than the delay + 1 s: a watch that held
    # the process would show.
    server = start_hostile(tmp_path_factory, abdoseg, "--shutdown-delay-secs", str(DELAY))
    try:
        with grpc.insecure_channel(server["address"]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            health = health_pb2_grpc.HealthStub(channel)
            seen = []
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))

            def follow():
                try:
                    for update in watch:
                        seen.append(update.status)
                except grpc.RpcError as error:
                    seen.append(error.code())

            follower = threading.Thread(target=follow)
            follower.start()
            time.sleep(0.5)
            sent = time.monotonic()
            server["process"].send_signal(signal.SIGTERM)
            polled = None
            while time.monotonic() - sent < DELAY - 0.5:
                reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                polled = reply.status
                if polled == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                time.sleep(0.05)
            assert polled == health_pb2.HealthCheckResponse.NOT_SERVING
            assert server["process"].wait(timeout=DELAY + 10) == 0
            took = time.monotonic() - sent
            assert took < DELAY + 1, f"exited {took:.1f} s after SIGTERM"
            follower.join(timeout=5)
            assert health_pb2.HealthCheckResponse.NOT_SERVING in seen, seen
    finally:
        stop(server)
        server["log_file"].close()


def test_a_job_watcher_is_told_the_server_is_stopping(tmp_path_factory, abdoseg, stubs):
    server = start_hostile(tmp_path_factory, abdoseg, "--shutdown-delay-secs", "1")
    try:
        url = f"http://{server['address']}"
        write_small_phantoms(abdoseg, server, "s", cases=4, seed=2)
        prepared = run_cli(
            abdoseg, "dataset", "--url", url, "prepare", "--source", "raw/s", "--size", 32
        )
        dataset = prepared.split("dataset ")[1].split()[0]
        with grpc.insecure_channel(server["address"]) as channel:
            api = Api(channel, modules())
            train = api.m["train"]
            job = api.train.StartTraining(
                train.StartTrainingRequest(
                    config=train.TrainingConfig(
                        dataset_id=dataset, depth=4, base_filters=4, batch_size=4,
                        epochs=10_000, slices_per_epoch=64,
                    )
                ),
                timeout=30,
            ).job
            events = api.train.WatchJob(train.WatchJobRequest(job_id=job.job_id), timeout=120)
            kinds = []
            ended = None
            try:
                for event in events:
                    kinds.append(event.WhichOneof("event"))
                    if kinds.count("batch_progress") == 1 and kinds[-1] == "batch_progress":
                        server["process"].send_signal(signal.SIGTERM)
            except grpc.RpcError as error:
                ended = error
            assert ended is not None, f"the watch ended with OK after {kinds}"
            assert ended.code() == grpc.StatusCode.UNAVAILABLE
            assert "resumes" in ended.details()
            assert server["process"].wait(timeout=60) == 0
    finally:
        stop(server)
        server["log_file"].close()
