"""Starting and stopping a real `abdoseg serve all` for the outside-client tests."""

import os
import re
import subprocess


def serve(store, abdoseg, *extra, env=None, stderr=None):
    """Starts `abdoseg serve all` over a file store in `store`, with `extra` flags;
    its log goes to `stderr` (a file) when given."""
    process = subprocess.Popen(
        [
            str(abdoseg),
            "serve",
            "all",
            "--listen",
            "127.0.0.1:0",
            "--store",
            f"file://{store}",
            "--shutdown-grace-secs",
            "5",
            "--metrics-listen",
            "127.0.0.1:0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    line = process.stdout.readline()
    assert line.startswith("abdoseg listening on "), line
    address = line.rsplit(" ", 1)[1].strip()
    line = process.stdout.readline()
    assert line.startswith("abdoseg metrics on "), line
    metrics_url = line.rsplit(" ", 1)[1].strip()
    return {"address": address, "process": process, "store": store, "metrics_url": metrics_url}


def stop(server):
    process = server["process"]
    if process.poll() is None:
        process.kill()
        process.wait()


def run_cli(abdoseg, *args):
    """Runs the `abdoseg` command; its standard output."""
    result = subprocess.run(
        [str(abdoseg), *map(str, args)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def write_small_phantoms(abdoseg, server, name, cases, seed):
    """Phantoms into the server's store as `raw/NAME`, on a fixed small grid (128 × 128
    pixels of 3 mm, 40 slices of 6 mm: every organ, a fifteenth of a drawn grid's voxels)
    so that the tests that only need some trained model do not spend their time drawing."""
    store = f"file://{server['store']}"
    run_cli(
        abdoseg, "phantom", "--cases", cases, "--seed", seed, "--store", store, "--dataset", name,
        "--matrix", 128, "--slices", 40, "--spacing", 3, "--thickness", 6,
    )


def train_tiny_model(abdoseg, server, name, cases=4, seed=4):
    """Small phantoms into the server's store, prepared at 32×32, one short epoch of a
    tiny U-Net through the CLI: (model id, dataset id, what `abdoseg train` printed)."""
    url = f"http://{server['address']}"
    write_small_phantoms(abdoseg, server, name, cases, seed)
    prepared = run_cli(
        abdoseg, "dataset", "--url", url, "prepare", "--source", f"raw/{name}", "--size", 32
    )
    dataset = re.search(r"dataset (ds-[0-9a-f]+)", prepared).group(1)
    trained = run_cli(
        abdoseg, "train", "--url", url, "--dataset", dataset, "--depth", 4,
        "--base-filters", 4, "--batch-size", 4, "--epochs", 1, "--slices-per-epoch", 8,
        "--no-augmentation", "--device", "cpu",
    )
    model = re.search(r"model (model-[0-9a-f-]+)", trained).group(1)
    return model, dataset, trained
