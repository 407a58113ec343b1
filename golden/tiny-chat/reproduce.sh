#!/usr/bin/env bash
# Reproduces the committed tiny-chat-delta.safetensors from scratch: installs torch into the cache
# folder, writes the training data, trains (about an hour on 2 cores), and compares the new delta's
# bytes with the committed one. Bit-identity needs the same torch build, thread count (recipe.json)
# and instruction set as the run that wrote it; elsewhere the run is equally deterministic, but its
# float rounding may differ.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="$("$here/install.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && npx tsx golden/tiny-chat/write-data.ts "$work/data")
"$python" "$here/train.py" "$work/data" "$work/out"
if cmp -s "$work/out/tiny-chat-delta.safetensors" "$here/tiny-chat-delta.safetensors"; then
  echo "reproduced: the new delta is byte for byte the committed one"
else
  echo "the new delta differs from the committed one" >&2
  exit 1
fi
