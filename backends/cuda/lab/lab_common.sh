# Shared by the GPU lab scripts (sourced, not run): pieces every decode A/B script repeats.
# Needs $B (the relocatable bundle the script runs from).

# bench NAME DIR ENV...: batch-1 decode of checkpoint DIR on CUDA (`engine bench -p 16 -n 128
# -r ${REPS:-3}`) with the ENV assignments set, printing a "--- NAME: ENV" header and the tg128 row.
bench() {
  local name=$1 dir=$2
  shift 2
  echo "--- $name: $*"
  env "$@" timeout 120 "$B/bin/engine" bench --backend cuda "$dir" -p 16 -n 128 -r "${REPS:-3}" 2>&1 |
    grep -E "tg128"
}
