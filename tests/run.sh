#!/usr/bin/env bash
# The test command: every Rust test (unit, storage suite on memory/file/S3, cross-service),
# then the Python grpcio client checks against a real `abdoseg serve all` (and a real
# Prometheus scraping it), then the hostile client's (tests/hostile: refused requests,
# bounded memory, untouched store, shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
cargo test --workspace --all-targets --locked
ABDOSEG_PROMETHEUS="$(bash tests/tools/prometheus.sh)" python3 -m pytest -q tests/python tests/hostile
