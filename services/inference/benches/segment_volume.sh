#!/usr/bin/env bash
# End-to-end segmentation of a 512×512×200 CT on this machine: a real `abdoseg serve all`
# over a file store, a registered U-Net 1 (depth 5, base 32; trained for a moment: speed
# does not depend on the weights), a 512×512×200 phantom, `abdoseg segment` three times
# through SegmentStream. Prints seconds per volume, the server's stage timings and its
# peak resident memory.
#
#     cargo build --release --bin abdoseg && bash services/inference/benches/segment_volume.sh
set -euo pipefail
bin="${ABDOSEG_BIN:-target/release/abdoseg}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
store="file://$work/store"

"$bin" serve all --listen 127.0.0.1:0 --store "$store" --inference-device "${DEVICE:-cpu}" \
    >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url="http://$(awk '/listening/ {print $NF}' "$work/serve.out")"

"$bin" phantom --cases 3 --seed 9 --store "$store" --dataset bench >/dev/null
dataset="$("$bin" dataset --url "$url" prepare --source raw/bench --size 128 | grep -o 'ds-[0-9a-f]*' | tail -1)"
model="$("$bin" train --url "$url" --dataset "$dataset" --depth 5 --base-filters 32 \
    --batch-size 4 --epochs 1 --slices-per-epoch 4 --no-augmentation --device cpu |
    grep -o 'model-[0-9a-f-]*' | tail -1)"
mkdir -p "$work/big"
"$bin" phantom --cases 1 --seed 10 --matrix 512 --slices 200 --spacing 0.8 --thickness 1.5 \
    --out "$work/big" >/dev/null
volume="$work/big/images/Case_00001_0000.nii.gz"
echo "U-Net 1, depth 5, base 32, input 128×128, batch 16; volume 512×512×200 int16 (.nii.gz, $(du -h "$volume" | cut -f1))"
for run in 1 2 3; do
    start=$(date +%s.%N)
    timings="$("$bin" segment "$volume" "$work/labels.nii.gz" --url "$url" --model "$model" | grep seconds)"
    end=$(date +%s.%N)
    printf 'run %d: %.2f s end to end (%s)\n' "$run" "$(echo "$end - $start" | bc)" "$timings"
done
echo "server peak RSS after the three runs: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$server/status")"

# 20 calls at once on a 512×512×100 volume (1 running + 8 queued by default): each either
# succeeds or is refused with RESOURCE_EXHAUSTED; memory stays bounded by the queue.
mkdir -p "$work/mid"
"$bin" phantom --cases 1 --seed 11 --matrix 512 --slices 100 --spacing 0.8 --thickness 3 \
    --out "$work/mid" >/dev/null
for i in $(seq 20); do
    "$bin" segment "$work/mid/images/Case_00001_0000.nii.gz" "$work/c$i.nii.gz" --url "$url" \
        --model "$model" >"$work/c$i.out" 2>"$work/c$i.err" &
done
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
ok=$(ls "$work"/c*.nii.gz 2>/dev/null | wc -l)
refused=$(grep -l "RESOURCE_EXHAUSTED\|ResourceExhausted\|retry later" "$work"/c*.err | wc -l)
echo "20 concurrent calls: $ok succeeded, $refused refused with RESOURCE_EXHAUSTED"
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$server/status")"
