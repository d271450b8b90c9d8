#!/bin/bash
# x64_35_gpu.sh BUNDLE_TAR (thirty-fifth session, cu35-x64): the decode-batch TMA tiles with every
# block's wgmmas issued unconditionally (TESSERA_CUDA_GEMM_UNCOND: 0 before, 1 MODE 8 twins, 2 the
# same with the 8B wide gate/up group pipelined), on the GPU machine. The tar holds bundle/ (ci/
# bundle.sh --gpu-tests, plus bin/cuda_gemm_lab). Logs under $OUT.
#   1. cuda_gemm_lab --group / --smallm-quick / --addfuse at each UNCOND: every output memcmp'd
#      against the GEMV rows (summary failures=0) and the lab's times
#   2. engine tg64x64 greedy (8B, 1B, 0.5B), UNCOND 0 / 2 / 1 interleaved, with the step times
#   3. greedy md5 at each UNCOND (36-token prompt: the 8B prefill takes the decode-batch tiles
#      too), CUDA op conformance / text golden / server_scheduler_test with UNCOND=2
# STEPS (default "lab x64 md5 suites") picks the steps, MODELS (default the three) the engine's
# checkpoints, ORDER (default "0 2 1 2 0 1 0 2") the x64 runs' UNCOND sequence.
STEPS=${STEPS:-lab x64 md5 suites}
MODELS=${MODELS:-llama-3.1-8b llama-3.2-1b qwen2.5-0.5b}
on() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
T=${1:?bundle tar}
W=/tmp/x35; mkdir -p $W; tar -C $W -xJf "$T"; B=$W/bundle; P=$B/lib/tessera/backends
export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
make_ckpts $MODELS
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
if [ -n "$CUOBJ" ]; then  # dummy wgmmas (HGMMA.64x8x16) per decode-batch tile kernel
  $CUOBJ -sass $P/libtessera_backend_cuda.so 2>/dev/null | awk '/Function : / {f=$3} /HGMMA.64x8x16/ {d[f]++} /HGMMA.64x64x16/ {r[f]++} END {for (k in r) print "sass dummy=" (d[k]+0) " real=" r[k] " " k}' | grep -E "GemmTma(Group)?Kernel.*Li3ELi[12]ELi64ELb0" | sed -E 's/_ZN7tessera4cuda12_GLOBAL__N_1//' | cut -c1-150
fi
on lab && for u in 0 1 2; do
  for mode in --group --smallm-quick --addfuse; do
    TESSERA_CUDA_GEMM_UNCOND=$u TESSERA_LAB_TERMS=3 timeout 200 $B/bin/cuda_gemm_lab $mode > $OUT/lab_u${u}${mode}.log 2>&1
    echo "lab UNCOND=$u $mode rc=$? ok=$(grep -c ' ok$' $OUT/lab_u${u}${mode}.log) $(grep -E '^summary' $OUT/lab_u${u}${mode}.log)"
  done
done

on lab && for u in 0 1 2; do
  echo "--group times UNCOND=$u:"; tr '\n' ' ' < $OUT/lab_u$u--group.log | grep -oE "group [^ ]+ fits|members_grouped=[0-9.]+us|group0=[0-9.]+us" | paste -sd' ' | sed 's/group /\n  /g'
done
on lab && for u in 0 1 2; do echo "--smallm-quick UNCOND=$u:"; grep -E "^smallm" $OUT/lab_u$u--smallm-quick.log | head -12; done
for m in $MODELS; do wait_ckpt $m; done
x64() {  # uncond model
  TESSERA_CUDA_GEMM_UNCOND=$1 TESSERA_BENCH_STEP_TIMES=1 TESSERA_BACKEND_PATH=$P timeout 150 $B/bin/engine bench /tmp/$2 \
    --backend cuda -p 0 -n 64 --parallel 64 --greedy -r 1 2>&1 | grep -E '^\| tg|step' | awk -F'|' '/tg/ {printf "%s ", $4} !/tg/ {printf "[%s] ", $0}'
}
on x64 && for m in $MODELS; do
  for u in ${ORDER:-0 2 1 2 0 1 0 2}; do echo "x64 $m UNCOND=$u: $(x64 $u $m)"; done
done
PROMPT=$(python3 -c "print(' '.join('t%d' % (i % 50) for i in range(36)))")
on md5 && for m in $MODELS; do
  for u in 0 1 2; do
    echo "$m UNCOND=$u md5: $(TESSERA_CUDA_GEMM_UNCOND=$u TESSERA_BACKEND_PATH=$P timeout 120 $B/bin/engine run /tmp/$m --backend cuda -n 48 --temperature 0 "$PROMPT" 2>/dev/null | md5sum)"
  done
done
export TESSERA_CUDA_GEMM_UNCOND=2
on suites && cuda_suites
