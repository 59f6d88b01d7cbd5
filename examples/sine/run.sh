#!/usr/bin/env bash
# The whole tinyedge flow on a tiny waveform classifier, in emulation (no board needed):
# train -> convert (int8) -> inspect -> generate -> build -> validate in QEMU (mps2-an386, Cortex-M4F).
# Needs: tinyedge installed with TensorFlow (pip install '.[convert]'), arm-none-eabi-gcc, qemu-system-arm.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"

"$PYTHON" train.py
mkdir -p out
tinyedge convert model.keras -o out/model_int8.tflite --calibration calibration.npy --validation validation.npz
tinyedge inspect out/model_int8.tflite
tinyedge generate out/model_int8.tflite --board mps2-an386 -o out/fw
tinyedge build out/fw
tinyedge validate out/model_int8.tflite --board mps2-an386 --emulator qemu --data validation.npz --report out/report.json --project out/fw
