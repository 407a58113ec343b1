#!/usr/bin/env python3
"""The exported model is the trained one: the torch model read back from the delta and the numpy fp32
reference (golden/reference/gpt_oss_ref.py) on the folder `amnesia model make-tiny-chat` wrote agree
on the logits of every used id, and of the unused ids, along a prompt and its greedy continuation.

    python golden/tiny-chat/check_export.py DELTA MODEL_DIR
"""

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
import gpt_oss_ref as ref  # noqa: E402
import train  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: check_export.py DELTA MODEL_DIR", file=sys.stderr)
        return 2
    model, used_ids = train.load_delta(sys.argv[1])
    model.eval()
    numpy_model = ref.Model(sys.argv[2])
    with open(os.path.join(os.path.dirname(HERE), "chat", "exo-1362-p1", "prompt.tokens.json")) as f:
        prompt = json.load(f)
    seq = prompt + numpy_model.greedy(prompt, 24)
    expected, _ = numpy_model.forward(seq)
    compact = np.full(model.c["vocab_size"], len(used_ids), dtype=np.int64)
    compact[used_ids] = np.arange(len(used_ids))
    idx = torch.from_numpy(compact[np.asarray(seq)])[None]
    with torch.no_grad():
        h, _ = model(idx, torch.ones_like(idx, dtype=torch.bool))
        used = torch.nn.functional.linear(h, train.bf16_round(model.lm_head)).numpy()
        unused = torch.nn.functional.linear(h, train.bf16_round(model.lm_head_unused)[None]).numpy()[:, 0]
    unused_id = next(i for i in range(model.c["vocab_size"]) if compact[i] == len(used_ids))
    d_used = np.abs(used - expected[:, used_ids]).max()
    d_unused = np.abs(unused - expected[:, unused_id]).max()
    scale = np.abs(expected[:, used_ids]).max()
    same_greedy = bool((used.argmax(-1) == expected[:, used_ids].argmax(-1)).all())
    print(f"{len(seq)} positions: max |torch - numpy| {d_used:.2e} on used ids, {d_unused:.2e} on the unused row "
          f"(largest logit {scale:.1f}); same argmax everywhere: {same_greedy}")
    return 0 if max(d_used, d_unused) <= 1e-3 and same_greedy else 1


if __name__ == "__main__":
    sys.exit(main())
