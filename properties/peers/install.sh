#!/usr/bin/env bash
# Installs one peer server (spec/peers.md) from the registries into amnesia's cache folder, never
# system-wide, and prints the folder it lives in:
#   properties/peers/install.sh transformers    # a Python virtual environment, pinned requirements
#   properties/peers/install.sh mlx-lm          # a Python virtual environment (MLX's CPU backend)
#   properties/peers/install.sh llama.cpp       # llama-server, built from a pinned source distribution
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

# llama.cpp's llama-server at <cache>/peers/llama.cpp/bin, built from the llama.cpp tree in the source
# distribution llama.cpp/source.txt pins: a CPU build for any x86-64 with AVX2 (not tuned to this
# machine, so that it runs on the next one), static, without the web UI or HTTPS, nothing fetched
# while it builds. A few minutes on two cores; skipped when the pinned build is there.
llama_server() {
  local dir="$cache/peers/llama.cpp" pin
  pin="$(grep -v '^#' "$here/llama.cpp/source.txt")"
  if [ -x "$dir/bin/llama-server" ] && [ "$(cat "$dir/source.txt" 2>/dev/null)" = "$pin" ]; then
    echo "$dir"
    return
  fi
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: --require-hashes \
    -r "$here/llama.cpp/source.txt" -d "$tmp" >&2
  tar xzf "$tmp"/*.tar.gz -C "$tmp"
  cmake -S "$tmp"/llama_cpp_python-*/vendor/llama.cpp -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
  cmake --build "$tmp/build" --target llama-server -j"$(nproc)" >&2
  mkdir -p "$dir/bin"
  cp "$tmp/build/bin/llama-server" "$dir/bin/llama-server"
  echo "$pin" >"$dir/source.txt"
  echo "$dir"
}

case "$peer" in
  transformers | mlx-lm)
    python_peer "$peer"
    ;;
  llama.cpp)
    llama_server
    ;;
  *)
    echo "install.sh: unknown peer '$peer' (known: llama.cpp, transformers, mlx-lm)" >&2
    exit 2
    ;;
esac
