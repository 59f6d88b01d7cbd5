#!/usr/bin/env bash
# Reproduce benchmarks/results.json and results.md: the four MLPerf Tiny models
# on Cortex-M4 (mps2-an386), Cortex-M7 (mps2-an500) and Cortex-M55
# (mps3-an547), each with the board's default kernels and with
# --kernels portable, every op profiled, beside TensorFlow Lite Micro's figures
# (benchmarks/tflm_qemu.json). Method: benchmarks/README.md.
#
#   scripts/bench.sh                   writes benchmarks/results.json and results.md
#   scripts/bench.sh -o /tmp/bench     elsewhere (options go on to `tinyedge bench`)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/tinyedge ] || scripts/setup.sh
models=()
for m in kws_ref_model vww_96_int8 pretrainedResnet_quant ad01_int8; do
  models+=("tests/data/models/$m.tflite")
done
exec .venv/bin/tinyedge bench "${models[@]}" \
    --board mps2-an386 --board mps2-an500 --board mps3-an547 \
    --kernels auto --kernels portable --profile \
    --baselines benchmarks/tflm_qemu.json --workdir tinyedge_build/bench "$@"
