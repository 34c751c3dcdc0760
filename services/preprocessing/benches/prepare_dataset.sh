#!/usr/bin/env bash
# End-to-end PrepareDataset throughput for 512×512 input: phantoms written as files,
# imported through gRPC, then prepared by the service (read from the store, window, HE,
# resize, shard, write to the store). Prints slices per second and the server's peak RSS.
#
#   bash services/preprocessing/benches/prepare_dataset.sh [CASES] [SIZE]
set -euo pipefail
cd "$(dirname "$0")/../../.."
cases="${1:-4}"
size="${2:-128}"
cargo build --release --quiet --bin abdoseg
bin=target/release/abdoseg
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" phantom --cases "$cases" --seed 2026 --matrix 512 --slices 200 --spacing 0.8 \
  --thickness 1.25 --out "$work/raw" > /dev/null
/usr/bin/time -f "%M" -o "$work/rss" "$bin" serve all --listen 127.0.0.1:0 \
  --store "file://$work/store" > "$work/server.out" 2> /dev/null &
server=$!
until grep -q listening "$work/server.out" 2>/dev/null; do sleep 0.1; done
url="http://$(awk '{print $NF}' "$work/server.out")"
"$bin" dataset --url "$url" import "$work/raw" --name bench > /dev/null 2>&1

start=$(date +%s.%N)
"$bin" dataset --url "$url" prepare --source raw/bench --size "$size" > /dev/null 2>&1
end=$(date +%s.%N)
pkill -TERM -P "$server"; wait "$server" || true
slices=$((cases * 200))
seconds=$(echo "$end - $start" | bc -l)
printf 'cases %d, slices %d at 512x512 -> %dx%d: %.2f s, %.1f slices/s, server peak RSS %d MB\n' \
  "$cases" "$slices" "$size" "$size" "$seconds" "$(echo "$slices / $seconds" | bc -l)" \
  "$(( $(cat "$work/rss") / 1024 ))"
