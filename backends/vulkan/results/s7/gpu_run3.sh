#!/bin/bash
# vk-coop GPU call 3: as call 2 (gpu_run2.sh: unit test, conformance + golden with
# TESSERA_VULKAN_COOPMAT=1, bench pp512 coop off / on (auto tile, 128, 64) next to CUDA), now
# with the next stage's global loads issued before the current stage is multiplied and the
# 64-row tile module really dispatched (call 2 ran the 128-row one for every tile setting),
# plus greedy text from `engine run` coop off / on / CUDA on the 1B shape.
CALL=3 TEXT=1 exec bash "$(dirname "$0")/gpu_run2.sh"
