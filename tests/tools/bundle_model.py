#!/usr/bin/env python3
"""Copies a registered model out of a file store into shared/registry/bundled/ as the
model shipped in the binary (shared/registry/src/bundled.rs), under its fixed id.

    python3 tests/tools/bundle_model.py STORE_ROOT MODEL_ID

STORE_ROOT is the store's folder (quickstart prints it: `.../abdoseg/store`). Write the
provenance (command, commit, scores) into shared/registry/bundled/README.md by hand.
"""

import json
import sys
from pathlib import Path

BUNDLED_ID = "model-0000000000000-default"
OUT = Path(__file__).resolve().parents[2] / "shared/registry/bundled"


def main() -> None:
    store, model_id = Path(sys.argv[1]), sys.argv[2]
    source = store / "models" / model_id
    weights = (source / "weights.mpk").read_bytes()
    record = json.loads((source / "model.json").read_text())
    if record["weights_bytes"] != len(weights):
        raise SystemExit("the record and the weights disagree")
    record["model_id"] = BUNDLED_ID
    record["weights_key"] = f"models/{BUNDLED_ID}/weights.mpk"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "weights.mpk").write_bytes(weights)
    (OUT / "model.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"bundled {model_id}: {len(weights)} bytes of weights")


if __name__ == "__main__":
    main()
