#!/usr/bin/env bash
# Installs what train.py, check_export.py and golden/reference/check_transformers.py need
# (requirements.txt: torch, numpy, transformers, accelerate from PyPI) into a
# virtual environment in amnesia's cache folder, never system-wide, and prints its python.
# About 5 GB: PyPI's torch for Linux brings its CUDA libraries even for CPU use.
set -euo pipefail
cache="${AMNESIA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/amnesia}"
venv="$cache/python/train"
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
echo "$venv/bin/python"
