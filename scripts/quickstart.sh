#!/usr/bin/env bash
# The main job, end to end, on the default emulated board (no hardware):
# install, train a small Keras model, convert to int8, generate firmware,
# build it, and validate it in QEMU (mps2-an386), exact with TensorFlow Lite Micro.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh convert
export PATH="$PWD/.venv/bin:$PATH"
examples/sine/run.sh
