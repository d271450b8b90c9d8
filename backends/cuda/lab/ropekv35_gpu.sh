#!/bin/bash
# ropekv35_gpu.sh BUNDLE_TAR (thirty-fifth session, cu35-ropekv): a layer's ROPE q/k + KV_WRITE k/v
# as one grid launch on decode batches (TESSERA_CUDA_FUSE_ROPEKV=2, the default) against the
# three launches before (=0): x64_35b_gpu.sh's tg64x64 rounds and greedy md5s under both, then
# CUDA op conformance, text golden and server_scheduler_test (batch invariance) at the default.
T=${1:?bundle tar}
SETS=${SETS:-"grid= off=TESSERA_CUDA_FUSE_ROPEKV=0"} bash backends/cuda/lab/x64_35b_gpu.sh "$T"
B=/tmp/x35b/bundle; P=$B/lib/tessera/backends; export LD_LIBRARY_PATH=$B/lib
. backends/cuda/lab/lab_common.sh
cuda_suites
