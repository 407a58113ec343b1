#!/usr/bin/env python3
"""Hugging Face transformers loads a model folder amnesia wrote and matches its golden logits.

    python golden/reference/check_transformers.py MODEL_DIR GOLDEN_JSON

GOLDEN_JSON is one of golden/logits/*.json (the numpy reference's logits, which the engine matches
within |d| <= 1e-4 + 1e-5 |ref|, golden/engine-logits.test.ts). transformers' GptOssForCausalLM runs
every case's prompt and greedy continuation as one sequence in float32 (on a CPU it dequantizes the
MXFP4 experts, exactly: E2M1 values times powers of two); its logits at the recorded ids must be within
the same tolerance, and its argmax must be the golden greedy token. Prints one JSON line; exit 0 when
every case matches, 1 otherwise. Needs torch, transformers and accelerate (golden/tiny-chat/install.sh).
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: nothing to fetch

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.utils import logging  # noqa: E402

ATOL, RTOL = 1e-4, 1e-5


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: check_transformers.py MODEL_DIR GOLDEN_JSON", file=sys.stderr)
        return 2
    logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    model.eval()
    with open(sys.argv[2]) as f:
        golden = json.load(f)
    worst, bad, greedy_ok = 0.0, 0, True
    for case in golden["cases"]:
        seq = case["prompt"] + case["greedy"]
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0].numpy()
        for p in case["positions"]:
            row = logits[p["position"]]
            pairs = list(p["top"]) + list(zip(golden["probe_ids"], p["probe"]))
            for token, ref in pairs:
                d = abs(float(row[token]) - ref)
                worst = max(worst, d)
                bad += d > ATOL + RTOL * abs(ref)
        start = len(case["prompt"]) - 1
        argmax = [int(logits[start + i].argmax()) for i in range(len(case["greedy"]))]
        greedy_ok &= argmax == case["greedy"]
    ok = bad == 0 and greedy_ok
    print(json.dumps({"model": type(model).__name__, "max_abs_diff": worst, "outside_tolerance": bad, "greedy_equal": greedy_ok, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
