#!/bin/bash
# cu23-b8's second GPU call (twenty-third session, H200): whole-line weight loads in the 8B's
# decode GEMVs (TESSERA_CUDA_GEMV_LINES, GemvLoadLines). Carries .dev/bundle23.tar.xz (HEAD's
# bundle: "old") and .dev/cu23-b8/c2 (this script, lab_common.sh's copy and b8c.tar.xz: the
# stripped CUDA plugin and cuda_gemv_lab of this tree: "new"; LINES is off unless set, 32 = the
# card rule, 15 on the H200).
# (1) in parallel while the 8B checkpoint is made: lab GEMV + SWIGLU checks (memcmp against the
#     GEMM's rows / the unfused launches) with LINES=32 (the rule) and LINES=31 (every kind, every
#     shape and M), CUDA suites + graph replay on the new plugin with LINES=32; (2) lab timing
#     alone: `--dec16` (reads incl. the GemvLoadLines pattern), `--dec17` 8B lines per LINES mask,
#     and from them the engine's mask (the kinds whose launches gained); (3) greedy md5 old / new;
#     (4) 8B tg128 old new new old (+ LINES=0 on the new plugin), -r 2.
# (The first try of this call, 09:25 UTC, hung at (1): a bare `wait` also waits for the
# `exec > >(tee ...)` process substitution; now it waits for the three pids.)
# Run: `DEADLINE=110 OUT=$OUT timeout 170 bash .dev/cu23-b8/c2/b8_23b_gpu.sh` (~130 s warm).
set -u
export OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee $OUT/console.log) 2>&1
T0=$(date +%s); DEADLINE=${DEADLINE:-100}
left() { [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; }
el() { echo "  [t=$(( $(date +%s) - T0 )) s]"; }
. backends/cuda/lab/lab_common.sh
make_checkpoints llama-3.1-8b
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
rm -rf /tmp/bundle /tmp/newp /tmp/b8c && tar xJf .dev/bundle23.tar.xz -C /tmp && tar xJf .dev/cu23-b8/c2/b8c.tar.xz -C /tmp
O=/tmp/bundle; N=/tmp/newp
cp -r $O $N && cp /tmp/b8c/libtessera_backend_cuda.so $N/lib/tessera/backends/ && cp /tmp/b8c/cuda_gemv_lab $N/bin/
md5sum $O/lib/tessera/backends/libtessera_backend_cuda.so $N/lib/tessera/backends/libtessera_backend_cuda.so | cut -c1-12
LAB=$N/bin/cuda_gemv_lab
echo "=== (1) lab checks + CUDA suites (new plugin, LINES=32), in parallel $(date +%T)"
PIDS=""
for m in 32 31; do
  ( e=TESSERA_CUDA_GEMV_LINES=$m
    env $e LD_LIBRARY_PATH=$N/lib GEMV_LAB_GEMV_ONLY=1 GEMV_LAB_SWIGLU_ONLY=1 timeout 80 $LAB --quick > /tmp/chk_$m.log 2>&1
    echo "rc=$?" >> /tmp/chk_$m.log ) &
  PIDS="$PIDS $!"
done
( B=$N; P=$N/lib/tessera/backends; export LD_LIBRARY_PATH=$N/lib TESSERA_CUDA_GEMV_LINES=32; OUT=/tmp/suites; mkdir -p $OUT
  cuda_suites > /tmp/suites.txt 2>&1
  echo "graph replay: $(TESSERA_CUDA_PLUGIN=$P/libtessera_backend_cuda.so timeout 60 $B/bin/cuda_argmax_graph_test --gtest_brief=1 2>&1 | grep -E "PASSED|FAILED|Failure" | head -3 | tr '\n' ' ')" >> /tmp/suites.txt ) &
PIDS="$PIDS $!"
wait $PIDS
for m in 32 31; do
  echo "[lab --quick LINES=$m] $(tail -1 /tmp/chk_$m.log) shapes $(grep -c '^checked' /tmp/chk_$m.log); same-bits lines $(grep -c 'same bits' /tmp/chk_$m.log); $(grep -c DIFFERENT /tmp/chk_$m.log) DIFFERENT; $(grep -E '^checks' /tmp/chk_$m.log)"
  grep -E "FAILED" /tmp/chk_$m.log | head -3
  { echo "##### LINES=$m"; cat /tmp/chk_$m.log; } >> $OUT/lab_checks.log
done
cat /tmp/suites.txt; cp /tmp/suites/tests.log $OUT/tests.log 2>/dev/null
el
echo "=== (2) lab timing: --dec16 reads + 8B launches, --dec17 per LINES mask $(date +%T)"
TESSERA_CUDA_GEMV_LINES=32 LD_LIBRARY_PATH=$N/lib timeout 40 $LAB --dec16 > $OUT/lab_dec16.log 2>&1; echo "dec16 rc=$?"
grep -E "^read 8B-(down|gate-up|o) .*kind=(0|3|6|8) warps=16 per_sm=(1|2)|^read 8B-(down|gate-up|o) .*kind=(1|7)|^engine_gemv 8B.* v=0 " $OUT/lab_dec16.log | sed -E 's/ (N|K)=[0-9]+//g; s/GB\/s=//'
L8=8B-o-res,8B-norm-qkv,8B-norm-gate-up,8B-down-res,8B-norm-head
for m in 0 32 0 32 1 2 4 8; do
  left || break
  TESSERA_CUDA_GEMV_LINES=$m LD_LIBRARY_PATH=$N/lib GEMV_LAB_TAG=LINES=$m GEMV_LAB_DEC17_ONLY=$L8 timeout 20 $LAB --dec17 2>&1 |
    grep -E "^dec17" | tee -a $OUT/lab_dec17.log
done
# The mask for the engine: each kind's bit where its launches (o + down for 1) were faster than
# with LINES=0 (mean of the two rounds) by more than 0.3 us.
M=$(awk '/^dec17/ { split($3, t, "="); tag = t[3]; split($4, u, "="); us[tag, $2] += u[2]; n[tag, $2]++ }
  END { m = 0; split("1 8B-o-res 1 8B-down-res 2 8B-norm-gate-up 4 8B-norm-qkv 8 8B-norm-head", a, " ");
        for (i = 1; i < 10; i += 2) { b = a[i]; l = a[i + 1]; d[b] += us[b, l] / n[b, l] - us[0, l] / n[0, l] }
        for (b in d) if (d[b] < -0.3) m += b; print m }' $OUT/lab_dec17.log)
echo "  engine mask from the lab: LINES=$M"
el
i=0; while [ ! -f /tmp/llama-3.1-8b.done ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
echo "=== (3) greedy md5 (8B, 48 tokens) $(date +%T)"
for side in old new31 new; do
  d=$O; e=X_NONE=1; [ $side = new ] && d=$N && e=TESSERA_CUDA_GEMV_LINES=32
  [ $side = new31 ] && d=$N && e=TESSERA_CUDA_GEMV_LINES=31
  env $e LD_LIBRARY_PATH=$d/lib timeout 40 $d/bin/engine --backend cuda run /tmp/llama-3.1-8b "t1 t2 t3 t4" --raw -n 48 --temperature 0 2>/dev/null > /tmp/run_$side.txt
  echo "  $side rc=$? $(md5sum < /tmp/run_$side.txt | cut -c1-12) $(wc -c < /tmp/run_$side.txt) bytes"
done
el
echo "=== (4) 8B tg128 (-r 2): old new new old, new LINES=0 $(date +%T)"
ab() {  # ab SIDE ENVS
  local side=$1 envs=$2 d=$N; [ $side = old ] && d=$O
  env $envs LD_LIBRARY_PATH=$d/lib timeout 40 $d/bin/engine bench --backend cuda /tmp/llama-3.1-8b -p 16 -n 128 -r 2 2>&1 |
    grep -E "\| tg128|rror" | awk -F'|' -v s="$side" -v e="$envs" '{printf "    %-4s %-26s %s\n", s, e, $3}'
}
NE=TESSERA_CUDA_GEMV_LINES=$M; [ "$M" = 15 ] && NE=TESSERA_CUDA_GEMV_LINES=32
echo "  new = $NE"
for a in "old X_NONE=1" "new $NE" "new $NE" "old X_NONE=1" "new TESSERA_CUDA_GEMV_LINES=0" "new $NE" "old X_NONE=1"; do
  left || break
  ab $a
done
el
echo "total $(( $(date +%s) - T0 )) s"
