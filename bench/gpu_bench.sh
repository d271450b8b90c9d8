#!/usr/bin/env bash
# Serving and embedding benchmarks on the GPU machine, from a relocatable bundle (ci/bundle.sh):
#   bench/gpu_bench.sh BUNDLE OUT
# - embeddings: bench/embedding_bench.py (BERT-base shape; sentence-transformers on cpu and cuda
#   beside `engine bench-embed` on the cpu and cuda backends);
# - serving: `engine serve` on the Qwen2.5-0.5B-shaped checkpoint (bench/make_checkpoint.py) with
#   the cuda backend (concurrency 1, 4, 16, 64) and the cpu backend (1, 4, 16), driven by
#   `engine bench-serve` (128-token prompts, 64 generated tokens).
# Every result is JSON Lines under OUT; logs next to them.
set -uo pipefail
B=${1:?bundle folder}
OUT=${2:?output folder}
mkdir -p "$OUT"
export PATH="$B/bin:$PATH"
t0=$SECONDS
stage() { echo "== $1 ($((SECONDS - t0)) s)"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
nproc >> "$OUT/gpu.csv"

stage "embeddings"
python3 bench/embedding_bench.py --engine "$B/bin/engine" --out "$OUT/embed" --reps 3 \
  > "$OUT/embed.log" 2>&1 || echo "embedding bench failed (see embed.log)"

stage "checkpoint"
python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out /tmp/q05 > "$OUT/ckpt.log" 2>&1

serve_bench() {  # backend levels
  local backend=$1 levels=$2 port
  engine serve --backend "$backend" -m /tmp/q05 --port 0 > "$OUT/serve_$backend.out" 2> "$OUT/serve_$backend.err" &
  local pid=$!
  for _ in $(seq 600); do
    port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$OUT/serve_$backend.out")
    [ -n "$port" ] && grep -q "ready:" "$OUT/serve_$backend.err" && break
    sleep 0.2
  done
  engine bench-serve --url "http://127.0.0.1:$port" -c "$levels" --prompt-tokens 128 --max-tokens 64 \
    --json > "$OUT/serve_$backend.jsonl" 2> "$OUT/bench_$backend.err" || echo "bench-serve $backend failed"
  kill "$pid"
  wait "$pid"
}
stage "serve cuda"
serve_bench cuda 1,4,16,64
stage "serve cpu"
serve_bench cpu 1,4,16
stage "done"
