"""The metrics service through an outside client (Python grpcio): EvaluatePrediction
agrees with MedPy on the real case, RenderOverlays draws each pixel in the colour of its
outcome on the canonical axial slice (checked against nibabel's reorientation), bad
requests get meaningful statuses, and a real Prometheus scrapes the evaluation metrics."""

import importlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import cv2
import grpc
import nibabel as nib
import numpy as np
import pytest
from medpy.metric import binary
from scipy import ndimage

YELLOW, GREEN, RED = (255, 255, 0), (0, 255, 0), (255, 0, 0)


@pytest.fixture(scope="module")
def api(own_server, stubs):
    common = importlib.import_module("abdoseg.common.v1.common_pb2")
    metrics = importlib.import_module("abdoseg.metrics.v1.metrics_pb2")
    grpc_module = importlib.import_module("abdoseg.metrics.v1.metrics_pb2_grpc")
    with grpc.insecure_channel(own_server["address"]) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield common, metrics, grpc_module.MetricsServiceStub(channel)


@pytest.fixture(scope="module")
def real_pair(own_server, real_abdomen):
    """The real CT, its labels and a damaged prediction, put in the server's store."""
    label = nib.load(str(real_abdomen[1]))
    truth = np.asarray(label.dataobj).astype(np.uint8)
    predicted = np.zeros_like(truth)
    damaged = {
        1: ndimage.binary_erosion(truth == 1, iterations=2),
        2: np.roll(truth == 2, 3, axis=1),
        3: ndimage.binary_dilation(truth == 3, iterations=2),
        4: np.roll(truth == 4, -2, axis=0),
    }
    for organ, mask in damaged.items():
        predicted[mask & (predicted == 0)] = organ
    root = pathlib.Path(own_server["store"]) / "volumes" / "py-metrics"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(real_abdomen[0], root / "ct.nii.gz")
    nib.save(nib.Nifti1Image(truth, label.affine), str(root / "truth.nii.gz"))
    nib.save(nib.Nifti1Image(predicted, label.affine), str(root / "pred.nii.gz"))
    keys = {name: f"volumes/py-metrics/{name}.nii.gz" for name in ("ct", "truth", "pred")}
    return keys, truth, predicted, label


def ref(common, key):
    return common.ObjectRef(key=key)


def test_evaluate_prediction_agrees_with_medpy(api, real_pair):
    common, metrics, stub = api
    keys, truth, predicted, label = real_pair
    response = stub.EvaluatePrediction(
        metrics.EvaluatePredictionRequest(
            prediction=ref(common, keys["pred"]),
            ground_truth=ref(common, keys["truth"]),
            surface_metrics=True,
        ),
        timeout=60,
    )
    classes = response.metrics.classes
    assert [c.organ for c in classes] == [1, 2, 3, 4, 5], "background first, then the organs"
    spacing = label.header.get_zooms()
    surface_distances = getattr(binary, "__surface_distances")
    for organ in (1, 2, 3, 4):
        c = classes[organ]
        p, t = predicted == organ, truth == organ
        assert c.iou == pytest.approx(binary.jc(p, t), abs=1e-6)
        assert c.dice == pytest.approx(binary.dc(p, t), abs=1e-6)
        assert c.true_positives == int((p & t).sum())
        a, b = surface_distances(p, t, spacing, 1), surface_distances(t, p, spacing, 1)
        assert c.HasField("hd95_mm") and c.HasField("nsd")
        assert c.hd95_mm == pytest.approx(max(np.percentile(a, 95), np.percentile(b, 95)), abs=1e-3)
    assert not classes[0].HasField("hd95_mm"), "no surface metrics for background"


def test_bad_evaluation_requests_get_meaningful_statuses(api, real_pair):
    common, metrics, stub = api
    keys = real_pair[0]
    cases = [
        (dict(prediction=ref(common, keys["pred"])), grpc.StatusCode.INVALID_ARGUMENT),
        (
            dict(prediction=ref(common, "volumes/py-metrics/none.nii.gz"), ground_truth=ref(common, keys["truth"])),
            grpc.StatusCode.NOT_FOUND,
        ),
        # A CT is not a label map.
        (dict(prediction=ref(common, keys["ct"]), ground_truth=ref(common, keys["truth"])), grpc.StatusCode.INVALID_ARGUMENT),
        (dict(prediction=ref(common, "../escape"), ground_truth=ref(common, keys["truth"])), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for fields, code in cases:
        with pytest.raises(grpc.RpcError) as error:
            stub.EvaluatePrediction(metrics.EvaluatePredictionRequest(**fields), timeout=30)
        assert error.value.code() == code, (fields, error.value.details())
        assert error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        stub.GetReport(metrics.GetReportRequest(report_id="report-none"), timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def _canonical_slices(volume, affine, z):
    """Axial slice z on the LPS grid: rows anterior→posterior, columns right→left."""
    image = nib.Nifti1Image(volume, affine)
    lps = image.as_reoriented(
        nib.orientations.ornt_transform(
            nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt(("L", "P", "S"))
        )
    )
    return np.asarray(lps.dataobj)[:, :, z].T


def test_overlays_colour_each_pixel_by_its_outcome(own_server, api, real_pair):
    common, metrics, stub = api
    keys, truth, predicted, label = real_pair
    response = stub.RenderOverlays(
        metrics.RenderOverlaysRequest(
            image=ref(common, keys["ct"]),
            prediction=ref(common, keys["pred"]),
            ground_truth=ref(common, keys["truth"]),
            output_prefix="reports/py-metrics-overlays",
        ),
        timeout=120,
    )
    picked = {(o.organ, o.selection) for o in response.overlays if o.organ != 1}
    assert picked == {(organ, s) for organ in (2, 3, 4, 5) for s in ("best", "worst")}
    store = pathlib.Path(own_server["store"])
    checked = 0
    for overlay in response.overlays:
        path = store / overlay.png.key
        assert overlay.png.key.startswith("reports/py-metrics-overlays/")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        rgb = bgr[:, :, ::-1]
        t = _canonical_slices(truth, label.affine, overlay.slice)
        p = _canonical_slices(predicted, label.affine, overlay.slice)
        if overlay.organ == 1:  # the 2×3 grid
            assert rgb.shape == (2 * t.shape[0] + 4, 3 * t.shape[1] + 8, 3)
            continue
        organ = overlay.organ - 1
        assert rgb.shape == (*t.shape, 3)
        expected = np.full(t.shape, "", dtype=object)
        expected[(p == organ) & (t == organ)] = "found"
        expected[(p == organ) & (t != organ)] = "false positive"
        expected[(p != organ) & (t == organ)] = "missed"
        drawn = np.full(t.shape, "", dtype=object)
        for colour, name in ((YELLOW, "found"), (GREEN, "false positive"), (RED, "missed")):
            drawn[np.all(rgb == colour, axis=2)] = name
        assert (drawn == expected).all(), (overlay.png.key, (drawn != expected).sum())
        assert (expected == "found").any() or overlay.selection == "worst"
        checked += 1
    assert checked == 8


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prometheus_binary():
    explicit = os.environ.get("ABDOSEG_PROMETHEUS") or shutil.which("prometheus")
    assert explicit, "a real Prometheus is needed: tests/run.sh fetches Debian's package"
    return explicit


def _query(port, promql):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _scraped(metrics_url, name):
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


def test_a_real_prometheus_scrapes_the_evaluation_metrics(own_server, api, real_pair, tmp_path):
    common, metrics, stub = api
    keys = real_pair[0]
    for _ in range(2):
        stub.EvaluatePrediction(
            metrics.EvaluatePredictionRequest(
                prediction=ref(common, keys["pred"]), ground_truth=ref(common, keys["truth"])
            ),
            timeout=60,
        )
    ok = _scraped(own_server["metrics_url"], 'abdoseg_prediction_evaluations_total{outcome="ok"}')
    assert len(ok) == 1
    expected = float(ok[0].rsplit(" ", 1)[1])
    assert expected >= 3, ok  # this test's two and the agreement test's one

    target = urllib.parse.urlparse(own_server["metrics_url"]).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: abdoseg\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = _free_port()
    prometheus = subprocess.Popen(
        [
            _prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = []
        for _ in range(60):
            time.sleep(0.5)
            try:
                result = _query(port, 'abdoseg_prediction_evaluations_total{outcome="ok"}')
            except OSError:
                continue
            if result:
                break
        assert result, "Prometheus never scraped the metric"
        assert float(result[0]["value"][1]) == expected
        assert result[0]["metric"]["job"] == "abdoseg"
        up = _query(port, 'up{job="abdoseg"}')
        assert up and up[0]["value"][1] == "1"
        buckets = _query(port, "abdoseg_prediction_evaluation_seconds_count")
        assert buckets and float(buckets[0]["value"][1]) == expected
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
