#!/usr/bin/env bash
# The GPU check (issue 23, docs/gpu.md): prove dtg's CUDA path and measure it in under 5 minutes.
#
#   bash benchmarks/gpu_check.sh [--cpu] [--out DIR] [--phases a,b] [--budget SECONDS]
#
# On the lent GPU machine (run with carry: [".whl"]) it installs the carried wheels of dtg's
# missing dependencies into /tmp/site (pip, no network), puts /tmp/site and this checkout on
# PYTHONPATH, and runs benchmarks/gpu_check.py, which writes DIR/gpu.json after every phase.
# --cpu: the CPU dry run (tiny sizes, this environment's Python: .venv/bin/python, no wheels).
# DIR: --out, else $OUT when set, else runs/gpu_check. Exit status: 0 when no phase failed.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

CPU=0
DIR=""
REST=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) CPU=1; shift ;;
    --out)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "gpu_check.sh: --out needs a folder" >&2; exit 2; fi
      DIR=$2; shift 2 ;;
    --out=*) DIR=${1#--out=}; shift ;;
    -h|--help) usage; exit 0 ;;
    --phases|--budget)
      if [ $# -lt 2 ]; then echo "gpu_check.sh: $1 needs a value" >&2; exit 2; fi
      REST+=("$1" "$2"); shift 2 ;;
    --phases=*|--budget=*) REST+=("$1"); shift ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
DIR=${DIR:-${OUT:-runs/gpu_check}}
mkdir -p "$DIR" || { echo "gpu_check.sh: cannot create $DIR" >&2; exit 2; }

if [ "$CPU" = 1 ]; then
  if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
  fi
  WHEELS="skipped: --cpu runs in this environment"
  MODE=(--cpu)
else
  PYTHON=${PYTHON:-python3}
  MODE=()
  if compgen -G ".whl/*.whl" >/dev/null; then
    SITE=${GPU_CHECK_SITE:-/tmp/site}
    if LOG=$("$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" .whl/*.whl 2>&1); then
      WHEELS="installed into $SITE: $(cd .whl && ls *.whl | tr '\n' ' ')"
    else
      WHEELS="failed: $(echo "$LOG" | tail -c 600)"
    fi
    export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
  else
    WHEELS="no .whl folder: run benchmarks/make_wheels.sh where there is network, carry .whl"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
if [ "$CPU" = 1 ]; then export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"; fi
export GPU_CHECK_WHEELS="$WHEELS" PYTHONUNBUFFERED=1
echo "gpu_check.sh: python $PYTHON; wheels: $WHEELS"
"$PYTHON" benchmarks/gpu_check.py "${MODE[@]}" --out "$DIR" "${REST[@]}" 2>&1 | tee "$DIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
