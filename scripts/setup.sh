#!/usr/bin/env bash
# Set up dtg in a virtual environment (.venv): torch, the package with its dev extras, and
# Graphviz's `dot` for rendering. Idempotent: run it as often as you like.
#
#   PYTHON=python3.11 scripts/setup.sh     # choose the interpreter (default: python3)
#   TORCH_SPEC='torch==2.13.0'             # the torch to install when none is importable
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PIP_FLAGS=(--quiet --disable-pip-version-check)

say() { printf 'setup: %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    # A torch is already importable (maybe a CUDA build): keep it, do not reinstall.
    say "found torch $("$PYTHON" -c 'import torch; print(torch.__version__)'); reusing it"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  # Install the pinned CPU build first, so that no dependency pulls a multi-GB CUDA build.
  say "installing $TORCH_SPEC"
  "$VENV/bin/pip" install "${PIP_FLAGS[@]}" "$TORCH_SPEC"
fi

say "installing dtg and its dependencies"
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -e '.[dev]'

if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Graphviz (dot) with apt-get"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }; then
      say "warning: could not install Graphviz; .dot and .tex diagrams still work"
    fi
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    say "installing Graphviz (dot) with sudo apt-get"
    sudo -n apt-get update -qq && sudo -n apt-get install -y -qq graphviz >/dev/null \
      || say "warning: could not install Graphviz; .dot and .tex diagrams still work"
  else
    say "warning: Graphviz's 'dot' is missing; install it (Debian/Ubuntu: apt-get install graphviz," \
        "macOS: brew install graphviz) to render SVG/PNG/PDF; .dot and .tex work without it"
  fi
fi
say "done ($("$VENV/bin/python" -c 'import torch, dtg; print("dtg", dtg.__version__, "torch", torch.__version__)'))"
