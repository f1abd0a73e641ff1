#!/usr/bin/env bash
# Make .whl/: the wheels of dtg's dependencies that the GPU machine lacks (docs/gpu.md).
#
#     bash benchmarks/make_wheels.sh            # from the repository root, with network
#
# The lent GPU machine (Python 3.12, CUDA torch, numpy, scipy, sympy, matplotlib, scikit-learn,
# tqdm, opt-einsum, pytest and hypothesis preinstalled) has no network, so the packages dtg
# needs beyond those travel as wheels in the ignored folder .whl/ (`run` with carry: [".whl"]);
# benchmarks/gpu_check.sh installs them there with pip --no-index. The versions are the ones
# this repository's .venv pins; pure-Python wheels (py3-none-any) match any platform.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
WHEELS=(
  pyro-ppl==1.9.2     # needs numpy, opt_einsum, pyro-api, torch, tqdm
  pyro-api==0.1.2
  lark==1.3.1         # the parser; lark[interegular]
  interegular==0.3.3
  graphviz==0.21      # the Python package (the `dot` program is not needed for training)
)
mkdir -p .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >>.git/info/exclude
rm -rf .whl
mkdir -p .whl
for spec in "${WHEELS[@]}"; do
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$spec"
done
ls -l .whl
du -sh .whl
