#!/usr/bin/env bash
# The device session's checks for issues 5 and 6, as one short script: on the GPU, with
# the CUDA build of abdoseg, train an epoch on 20 phantoms and segment a 512×512×200 volume
# (U-Net 1, depth 5, base 32) three times; then PyTorch CUDA on the same architecture.
#
# Here (no Rust toolchain on the device; the stripped CUDA binary is 71 MB, 19 MB gzipped,
# and a carry holds 64 MiB):
#     cargo build --release --features cuda --bin abdoseg
#     mkdir -p target/gpu && gzip -c target/release/abdoseg > target/gpu/abdoseg.gz
# There (carry target/gpu):
#     bash deploy/gpu-check.sh
set -euo pipefail
bin="${ABDOSEG_BIN:-/tmp/abdoseg-cuda}"
if [ ! -x "$bin" ]; then
    gunzip -c target/gpu/abdoseg.gz >"$bin" && chmod +x "$bin"
fi
nvidia-smi -L || true
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; cp "$work/serve.err" "${OUT:-/tmp}/serve.err" 2>/dev/null || true' EXIT
store="file://$work/store"
"$bin" serve all --listen 127.0.0.1:0 --store "$store" --inference-device cuda \
    >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url="http://$(awk '/listening/ {print $NF}' "$work/serve.out")"

"$bin" phantom --cases 20 --seed 1 --store "$store" --dataset gpu >/dev/null
dataset="$("$bin" dataset --url "$url" prepare --source raw/gpu --size 128 | grep -o 'ds-[0-9a-f]*' | tail -1)"
echo "== one epoch on the GPU (U-Net 1, depth 5, base 16, batch 30, 982 slices)"
"$bin" train --url "$url" --dataset "$dataset" --depth 5 --base-filters 16 --batch-size 30 \
    --epochs 1 --device cuda
model="$("$bin" train --url "$url" --dataset "$dataset" --depth 5 --base-filters 32 \
    --batch-size 30 --epochs 1 --slices-per-epoch 30 --device cuda | grep -o 'model-[0-9a-f-]*' | tail -1)"

mkdir -p "$work/big"
"$bin" phantom --cases 1 --seed 10 --matrix 512 --slices 200 --spacing 0.8 --thickness 1.5 \
    --out "$work/big" >/dev/null
echo "== 512×512×200 end to end on the GPU (U-Net 1, depth 5, base 32)"
for run in 1 2 3; do
    start=$(date +%s.%N)
    "$bin" segment "$work/big/images/Case_00001_0000.nii.gz" "$work/labels.nii.gz" \
        --url "$url" --model "$model" | grep seconds
    end=$(date +%s.%N)
    echo "run $run: $(echo "$end - $start" | bc) s end to end"
done
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$server/status")"
echo "== PyTorch CUDA, same architecture"
python3 shared/model/benches/unet_torch.py cuda
