#!/usr/bin/env bash
# text_golden_npu_test: the golden suite with npu-reference first and the CPU as the fallback (the
# plugin paths, fixtures and tolerance come from CTest's environment), then proof from the
# plugin's counters that the decoder layers' attention (KV_WRITE + PAGED_ATTENTION over the KV
# pool in NPU memory) really ran on the device, not on the CPU fallback.
# usage: npu_golden_test.sh <text_golden_test> <stats file>
set -euo pipefail

golden=$1 stats=$2
rm -f "$stats"
TESSERA_NPU_STATS_FILE=$stats "$golden"
echo "npu-reference counters: $(cat "$stats")"
for op in KV_WRITE PAGED_ATTENTION MATMUL; do
  grep -qE "\"$op\": [1-9]" "$stats" ||
    { echo "npu_golden_test: FAIL: no $op ran on npu-reference" >&2; exit 1; }
done
