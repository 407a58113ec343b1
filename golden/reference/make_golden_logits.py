#!/usr/bin/env python3
"""Golden logits for the engine test, from the numpy fp32 reference (gpt_oss_ref.py).

    python3 golden/reference/make_golden_logits.py CHECKPOINT_DIR OUT_JSON

Cases (prompts are real harmony prompts from golden/chat):
  long-prompt    exo-1362-p1's prompt (141 tokens, far beyond a tiny model's sliding window)
                 and its greedy continuation of 16 tokens;
  shared-prefix  exo-1362-p2's prompt, which extends p1's (checked), and 8 greedy tokens.

Per case: `prompt`, `greedy` (continuation ids), `routing` (for EVERY position of prompt +
continuation fed as one sequence: per layer the k expert ids in top-k order), and `positions`:
for the last 24 prompt positions and every continuation position, the top-16 [id, logit] pairs
and the logits of the `probe_ids` listed once at the top.

Logits are float32 values written as the shortest decimal that round-trips to the same float32
(numpy's float32 repr); Math.fround(parsed) gives the exact float32 back.
"""

import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt_oss_ref as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))  # repository root (golden/reference/ -> ../..)
N_TOP = 16
N_PROMPT_TAIL = 24


def probe_ids(vocab: int) -> list:
    """64 fixed ids: <|endoftext|> and the harmony formatting tokens 200002..200012, a spread of
    ordinary ids, and a few ids in the unused padding range above 200018."""
    harmony = [199999] + list(range(200002, 200013))  # 12
    ordinary = [int(round(x)) for x in np.linspace(0, 199997, 44)]  # 0 .. 199997
    padding = [200013, 200018, 200019, 200100, 200500, 200999, 201000, 201087]
    ids = harmony + ordinary + padding
    assert len(ids) == 64 and len(set(ids)) == 64
    if max(ids) >= vocab:
        raise SystemExit(f"vocab {vocab} is smaller than the probe ids (need the real 201088 vocab)")
    return ids


def f32s(x) -> str:
    """A float32 as the shortest decimal string that round-trips (JSON-safe: finite only)."""
    v = np.float32(x)
    if not np.isfinite(v):
        raise FloatingPointError(f"non-finite logit {v}")
    return str(v)  # numpy prints a float32 with the fewest digits that round-trip


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def top_k_pairs(row: np.ndarray, k: int):
    """Top-k ids by logit, ties -> lower id first (stable sort of -logit)."""
    order = np.argsort(-row, kind="stable")[:k]
    return [(int(i), row[i]) for i in order]


def run_case(model, name, prompt, n_gen, probes):
    cont = model.greedy(prompt, n_gen)
    seq = list(prompt) + cont
    logits, routing = model.forward(seq)
    T0 = len(prompt)
    if not np.isfinite(logits).all():
        raise FloatingPointError(f"{name}: non-finite logits")
    # The one-pass logits must give the same greedy tokens as the step-by-step greedy run.
    again = [int(np.argmax(logits[T0 - 1 + i])) for i in range(n_gen)]
    if again != cont:
        raise AssertionError(f"{name}: greedy {cont} but one-pass argmax {again}")
    positions = list(range(max(0, T0 - N_PROMPT_TAIL), len(seq)))
    rows = []
    for p in positions:
        row = logits[p]
        rows.append({
            "position": p,
            "token": int(seq[p]),
            "top": top_k_pairs(row, N_TOP),
            "probe": [row[i] for i in probes],
        })
    sel = logits[positions]
    gaps = []
    for p in positions:
        s = np.sort(logits[p])[::-1]
        gaps.append(float(s[0] - s[1]))
    last = T0 - 1
    s_last = np.sort(logits[last])[::-1]
    stats = {
        "max_abs_logit": float(np.abs(sel).max()),
        "logit_std": float(sel.astype(np.float64).std()),
        "last_prompt_top1_top2_gap": float(s_last[0] - s_last[1]),
        "min_top1_top2_gap": min(gaps),
        "min_top1_top2_gap_position": positions[int(np.argmin(gaps))],
        # the positions whose argmax IS the greedy continuation (T0-1 .. T0+n-2)
        "min_greedy_top1_top2_gap": min(g for p, g in zip(positions, gaps) if T0 - 1 <= p < T0 - 1 + n_gen),
    }
    return {
        "name": name,
        "prompt": [int(t) for t in prompt],
        "greedy": cont,
        "stats": stats,
        "positions": rows,
        "routing": routing.tolist(),
    }


def dump(obj_top: dict, cases: list) -> str:
    """Compact JSON: one position (and one routing row) per line; floats via f32s()."""
    out = ["{"]
    for k, v in obj_top.items():
        out.append(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))},")
    out.append('  "cases": [')
    for ci, c in enumerate(cases):
        out.append("    {")
        out.append(f'      "name": {json.dumps(c["name"])},')
        out.append(f'      "prompt": {json.dumps(c["prompt"], separators=(",", ":"))},')
        out.append(f'      "greedy": {json.dumps(c["greedy"], separators=(",", ":"))},')
        out.append(f'      "stats": {json.dumps(c["stats"], separators=(",", ":"))},')
        out.append('      "positions": [')
        for pi, r in enumerate(c["positions"]):
            top = ",".join(f"[{i},{f32s(v)}]" for i, v in r["top"])
            probe = ",".join(f32s(v) for v in r["probe"])
            sep = "," if pi + 1 < len(c["positions"]) else ""
            out.append(f'        {{"position":{r["position"]},"token":{r["token"]},"top":[{top}],"probe":[{probe}]}}{sep}')
        out.append("      ],")
        out.append('      "routing": [')
        for pi, r in enumerate(c["routing"]):
            sep = "," if pi + 1 < len(c["routing"]) else ""
            out.append(f"        {json.dumps(r, separators=(',', ':'))}{sep}")
        out.append("      ]")
        out.append("    }" + ("," if ci + 1 < len(cases) else ""))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: make_golden_logits.py CHECKPOINT_DIR OUT_JSON")
    ckpt_dir, out_path = sys.argv[1], sys.argv[2]
    model = ref.Model(ckpt_dir)
    cfg = model.config
    probes = probe_ids(cfg.vocab_size)

    def load(rel):
        with open(os.path.join(ROOT, rel)) as f:
            return [int(t) for t in json.load(f)]

    p1 = load("golden/chat/exo-1362-p1/prompt.tokens.json")
    p2 = load("golden/chat/exo-1362-p2/prompt.tokens.json")
    if not (len(p2) > len(p1) and p2[: len(p1)] == p1):
        raise AssertionError("exo-1362-p2's prompt does not extend exo-1362-p1's")

    cases = [
        run_case(model, "long-prompt", p1, 16, probes),
        run_case(model, "shared-prefix", p2, 8, probes),
    ]
    # Same prefix, same numbers: p2's routing over p1's positions must equal p1's (causality).
    r1, r2 = np.array(cases[0]["routing"]), np.array(cases[1]["routing"])
    if not np.array_equal(r1[: len(p1)], r2[: len(p1)]):
        raise AssertionError("routing over the shared prefix differs between the cases")

    files = {name: sha256(os.path.join(ckpt_dir, name)) for name in model.ckpt.files}
    files["config.json"] = sha256(os.path.join(ckpt_dir, "config.json"))
    top = {
        "description": "numpy fp32 reference (golden/reference/gpt_oss_ref.py) logits for the engine test;"
        " logits are float32 (shortest round-trip decimal), ids are token ids; routing[position][layer] ="
        " the k experts in top-k order",
        "generator": "python3 golden/reference/make_golden_logits.py CHECKPOINT_DIR OUT_JSON",
        "checkpoint": {"files": files},
        "config": {
            "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
            "num_layers": cfg.num_layers, "num_heads": cfg.num_heads, "num_kv_heads": cfg.num_kv_heads,
            "head_dim": cfg.head_dim, "vocab_size": cfg.vocab_size, "num_experts": cfg.num_experts,
            "experts_per_token": cfg.experts_per_token, "sliding_window": cfg.sliding_window,
            "sliding_layers": cfg.sliding_layers,
        },
        "top_k": N_TOP,
        "prompt_tail": N_PROMPT_TAIL,
        "probe_ids": probes,
        "stats": {
            "max_abs_logit": max(c["stats"]["max_abs_logit"] for c in cases),
            "logit_std": max(c["stats"]["logit_std"] for c in cases),
            "min_top1_top2_gap": min(c["stats"]["min_top1_top2_gap"] for c in cases),
            "min_greedy_top1_top2_gap": min(c["stats"]["min_greedy_top1_top2_gap"] for c in cases),
            "note": "per case in cases[].stats; std/max over the full vocab at the recorded positions",
        },
    }
    text = dump(top, cases)
    json.loads(text)  # well-formed
    with open(out_path, "w") as f:
        f.write(text)
    print(f"wrote {out_path}: {len(text)} bytes")
    for c in cases:
        print(c["name"], "greedy", c["greedy"], "stats", c["stats"])


if __name__ == "__main__":
    main()
