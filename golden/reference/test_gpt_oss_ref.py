#!/usr/bin/env python3
"""Self-checks of the numpy reference. Plain asserts, no pytest:

    python3 golden/reference/test_gpt_oss_ref.py CHECKPOINT_DIR

The decoder / YaRN / container checks need no checkpoint; the model checks run on CHECKPOINT_DIR
(a tiny gpt-oss checkpoint in the HF root layout; the sliding-window check needs layer 0 sliding
and layer 1 full, as gpt-oss has).
"""

import json
import math
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_oss_ref as ref  # noqa: E402


def check(name, fn, *args):
    fn(*args)
    print(f"ok   {name}")


# ------------------------------------------------------------------------------------------------
# Checkpoint-free checks
# ------------------------------------------------------------------------------------------------


def test_mxfp4_decoder():
    lut = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]
    # Row 0: byte i = (code i in the low nibble, code 15-i in the high nibble), i = 0..15.
    # Row 1: the same bytes with the nibbles swapped. Scale 127 (2^0) on row 0, 0 (2^-127) on row 1.
    blocks = np.zeros((2, 1, 16), dtype=np.uint8)
    for i in range(16):
        blocks[0, 0, i] = i | ((15 - i) << 4)
        blocks[1, 0, i] = (15 - i) | (i << 4)
    scales = np.array([[127], [0]], dtype=np.uint8)
    w = ref.dequant_mxfp4(blocks, scales)
    assert w.shape == (2, 32) and w.dtype == np.float32
    for i in range(16):
        # low nibble -> even element 2i, high nibble -> odd element 2i+1
        assert w[0, 2 * i] == np.float32(lut[i]), (i, w[0, 2 * i])
        assert w[0, 2 * i + 1] == np.float32(lut[15 - i]), (i, w[0, 2 * i + 1])
        # sign of zero is kept (code 8 = -0)
        assert math.copysign(1.0, float(w[0, 2 * i])) == math.copysign(1.0, lut[i])
        # scale 0: value * 2^-127, a float32 subnormal (not flushed to zero)
        want_even = np.float32(lut[15 - i] * 2.0 ** -127)
        want_odd = np.float32(lut[i] * 2.0 ** -127)
        assert w[1, 2 * i] == want_even and w[1, 2 * i + 1] == want_odd, (i, w[1, 2 * i], w[1, 2 * i + 1])
    # |LUT| 0.5..1.5 times 2^-127 lies below the smallest normal float32 (2^-126): subnormal, kept
    sub = w[1][(np.abs(w[1]) > 0) & (np.abs(w[1]) < np.finfo(np.float32).tiny)]
    assert sub.size == 12, sub  # +-0.5, +-1, +-1.5, each once per nibble
    assert w[1, 3] == np.float32(2.0 ** -128)  # code 1 (0.5) in the high nibble of byte 1: 0.5 * 2^-127
    # Other scales, several blocks per row, leading expert dimension.
    rng = np.random.default_rng(0)
    b = rng.integers(0, 256, (3, 5, 4, 16), dtype=np.uint8)
    s = rng.integers(100, 140, (3, 5, 4), dtype=np.uint8)
    v = ref.dequant_mxfp4(b, s)
    assert v.shape == (3, 5, 128)
    e, r, k = 2, 3, 77
    g, j = k // 32, k % 32
    byte = int(b[e, r, g, j // 2])
    code = byte & 0xF if j % 2 == 0 else byte >> 4
    assert v[e, r, k] == np.float32(lut[code] * 2.0 ** (int(s[e, r, g]) - 127))
    # 0xFF is NaN in the spec: rejected
    try:
        ref.dequant_mxfp4(blocks, np.array([[255], [0]], dtype=np.uint8))
        raise AssertionError("scale 0xFF accepted")
    except ValueError:
        pass


def test_bf16():
    u = np.array([0x3F80, 0xBF80, 0x0000, 0x8000, 0x7F80, 0x0001, 0x4049], dtype=np.uint16)
    f = ref.bf16_to_f32(u)
    assert f.dtype == np.float32
    assert f[0] == 1.0 and f[1] == -1.0 and f[2] == 0.0 and f[4] == np.inf
    assert math.copysign(1.0, float(f[3])) == -1.0
    assert f[5] == np.float32(2.0 ** -133)  # smallest bf16 subnormal
    assert f[6] == np.float32(3.140625)


def test_yarn_constants():
    conc, inv, low, high = ref.yarn_parameters(64, 150000.0, 32.0, 4096, 32.0, 1.0)
    assert abs(low - 8.092779) < 1e-6, low
    assert abs(high - 17.398025) < 1e-6, high
    assert abs(conc - 1.346574) < 1e-6, conc
    assert inv.dtype == np.float32 and inv.shape == (32,)
    freq = 150000.0 ** (np.arange(32) * 2 / 64)
    # j <= 8: original frequency; j >= 18: divided by 32; in between: blend
    assert np.array_equal(inv[:9], (1.0 / freq[:9]).astype(np.float32))
    assert np.array_equal(inv[18:], (1.0 / (32.0 * freq[18:])).astype(np.float32))
    ramp = (12 - low) / (high - low)
    assert inv[12] == np.float32((1 - ramp) / freq[12] + ramp / (32 * freq[12]))
    # Metal's equivalent constants (§1.6)
    assert abs(-low / (high - low) - -0.869701) < 1e-6 and abs(1 / (high - low) - 0.107466) < 1e-6
    # tiny config (head_dim 16) is valid
    _, _, lo16, hi16 = ref.yarn_parameters(16, 150000.0, 32.0, 4096, 32.0, 1.0)
    assert abs(lo16 - 2.0232) < 1e-3 and abs(hi16 - 4.3495) < 1e-3
    # plain RoPE when factor <= 1
    c1, inv1, l1, h1 = ref.yarn_parameters(64, 150000.0, 1.0, 4096, 32.0, 1.0)
    assert c1 == 1.0 and l1 is None and np.array_equal(inv1, (1.0 / freq).astype(np.float32))
    # rotate-half pairing: element i rotates with element i + d/2
    cos, sin = ref.rope_cos_sin(np.array([3]), inv, conc)
    x = np.zeros((1, 1, 64), np.float32)
    x[0, 0, 5] = 1.0
    y = ref.apply_rope(x, cos, sin)
    nz = set(np.nonzero(y[0, 0])[0].tolist())
    assert nz == {5, 37}, nz
    assert abs(y[0, 0, 5] - conc * math.cos(3 * float(inv[5]))) < 1e-6
    assert abs(y[0, 0, 37] - conc * math.sin(3 * float(inv[5]))) < 1e-6


def test_swiglu_and_topk_ties():
    h = np.array([[10.0, 10.0, -3.0, -9.0, 0.5, 0.25]], np.float32)  # (gate, lin) pairs
    a = ref.swiglu(h, 1.702, 7.0)
    sig = lambda z: 1 / (1 + math.exp(-z))
    want = [7 * sig(1.702 * 7) * (7 + 1), -3 * sig(1.702 * -3) * (-7 + 1), 0.5 * sig(1.702 * 0.5) * 1.25]
    assert np.allclose(a[0], want, rtol=1e-6), (a, want)
    assert np.isfinite(ref.swiglu(np.array([[-1e4, 1.0]], np.float32), 1.702, 7.0)).all()
    # the tie rule used by _moe: stable sort of -logits
    r = np.array([[0.5, 2.0, 2.0, 1.0, 2.0]], np.float32)
    assert np.argsort(-r, axis=1, kind="stable")[0, :2].tolist() == [1, 2]


def test_safetensors_container():
    with tempfile.TemporaryDirectory() as d:
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        b = np.array([0x3F80, 0x4000], dtype=np.uint16)  # bf16 1, 2
        hdr = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
               "b": {"dtype": "BF16", "shape": [2], "data_offsets": [24, 28]},
               "__metadata__": {"format": "pt"}}
        hj = json.dumps(hdr).encode() + b"   "  # deliberately not padded to 8: unaligned data
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(len(hj).to_bytes(8, "little") + hj + a.tobytes() + b.tobytes())
        ck = ref.Checkpoint(d)
        assert np.array_equal(ck.f32("a"), a) and ck.f32("b").tolist() == [1.0, 2.0]
        hdr["b"]["data_offsets"] = [20, 24]  # overlaps a
        hj = json.dumps(hdr).encode()
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(len(hj).to_bytes(8, "little") + hj + a.tobytes() + b.tobytes())
        try:
            ref.Checkpoint(d)
            raise AssertionError("overlapping tensors accepted")
        except ValueError:
            pass
    # Shards named by model.safetensors.index.json
    with tempfile.TemporaryDirectory() as d:
        for fname, tname, arr in (("model-00001-of-00002.safetensors", "x", np.float32([1, 2])),
                                  ("model-00002-of-00002.safetensors", "y", np.float32([3]))):
            hj = json.dumps({tname: {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [0, arr.nbytes]}}).encode()
            hj += b" " * ((-len(hj)) % 8)
            with open(os.path.join(d, fname), "wb") as f:
                f.write(len(hj).to_bytes(8, "little") + hj + arr.tobytes())
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 12}, "weight_map": {
                "x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}, f)
        ck = ref.Checkpoint(d)
        assert ck.f32("x").tolist() == [1.0, 2.0] and ck.f32("y").tolist() == [3.0]
        assert ck.files == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_config_variants():
    base = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 8,
            "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 1000, "sliding_window": 8}
    v4 = dict(base, num_local_experts=4, num_experts_per_tok=2, rope_theta=150000.0,
              rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                            "original_max_position_embeddings": 4096, "truncate": False})
    v5 = dict(base, num_experts=4, experts_per_token=2,
              rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                               "beta_slow": 1.0, "original_max_position_embeddings": 4096})
    a, b = ref.Config.from_hf(v4), ref.Config.from_hf(v5)
    for c in (a, b):
        assert (c.num_experts, c.experts_per_token, c.rope_theta, c.rope_factor) == (4, 2, 150000.0, 32.0)
        assert c.initial_context_length == 4096 and c.sliding_layers == [True, False, True]
    c = ref.Config.from_hf(dict(v4, layer_types=["full_attention", "sliding_attention", "full_attention"]))
    assert c.sliding_layers == [False, True, False]


# ------------------------------------------------------------------------------------------------
# Model checks
# ------------------------------------------------------------------------------------------------


def sample_tokens(model, T, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, model.config.vocab_size, T).tolist()


def test_causality(model):
    toks = sample_tokens(model, 40, 1)
    full, rfull = model.forward(toks)
    for cut in (1, 7, 9, 23):
        part, rpart = model.forward(toks[:cut])
        scale = float(np.abs(full).max())
        err = float(np.abs(part - full[:cut]).max())
        assert err <= 1e-5 * scale + 1e-6, (cut, err, scale)
        assert np.array_equal(rpart, rfull[:cut]), cut


def test_sliding_window(model):
    cfg = model.config
    assert cfg.sliding_layers[0] and not cfg.sliding_layers[1], "needs layer 0 sliding, layer 1 full"
    W = cfg.sliding_window
    T, c = 3 * W + 5, 4
    a = sample_tokens(model, T, 2)
    b = list(a)
    b[c] = (a[c] + 1) % cfg.vocab_size
    ta, tb = {}, {}
    model.forward(a, trace=ta)
    model.forward(b, trace=tb)
    diff0 = np.abs(ta["attn_out"][0] - tb["attn_out"][0]).max(axis=1)  # per position, sliding layer 0
    diff1 = np.abs(ta["attn_out"][1] - tb["attn_out"][1]).max(axis=1)  # full layer 1
    # Before the change: nothing moves (causality). Within [c, c+W-1]: layer 0 sees the change.
    assert np.all(diff0[:c] == 0) and np.all(diff1[:c] == 0)
    assert np.all(diff0[c : c + W] > 0), diff0[c : c + W]
    # More than W-1 positions later the sliding layer cannot see token c any more ...
    assert np.all(diff0[c + W :] == 0), diff0[c + W :]
    # ... while the full layer still does (so the check above is not vacuous).
    assert np.all(diff1[c + W :] > 0), diff1[c + W :]


def naive_attention(model, n, x, p):
    """§1.4 literally for one position p: explicit key range, per-head loop, float64 math."""
    cfg, L = model.config, model.layers[n]
    D = cfg.head_dim
    t = x[: p + 1].astype(np.float64)
    t = t / np.sqrt((t * t).mean(axis=1, keepdims=True) + cfg.rms_norm_eps) * L["input_layernorm.weight"]
    q = (t @ L["self_attn.q_proj.weight"].T.astype(np.float64) + L["self_attn.q_proj.bias"]).reshape(p + 1, -1, D)
    k = (t @ L["self_attn.k_proj.weight"].T.astype(np.float64) + L["self_attn.k_proj.bias"]).reshape(p + 1, -1, D)
    v = (t @ L["self_attn.v_proj.weight"].T.astype(np.float64) + L["self_attn.v_proj.bias"]).reshape(p + 1, -1, D)
    inv = model.inv_freq.astype(np.float64)
    half = D // 2

    def rope(vec, pos):
        ang = pos * inv
        c, s = np.cos(ang) * model.concentration, np.sin(ang) * model.concentration
        return np.concatenate([vec[:half] * c - vec[half:] * s, vec[half:] * c + vec[:half] * s])

    lo = max(0, p - cfg.sliding_window + 1) if cfg.sliding_layers[n] else 0
    group = cfg.num_heads // cfg.num_kv_heads
    o = []
    for h in range(cfg.num_heads):
        g = h // group
        qh = rope(q[p, h], p)
        s = [float(qh @ rope(k[j, g], j)) / math.sqrt(D) for j in range(lo, p + 1)]
        sink = float(L["self_attn.sinks"][h])
        m = max(max(s), sink)
        den = sum(math.exp(z - m) for z in s) + math.exp(sink - m)
        o.append(sum(math.exp(z - m) / den * v[j, g] for z, j in zip(s, range(lo, p + 1))))
    o = np.concatenate(o)
    return o @ L["self_attn.o_proj.weight"].T.astype(np.float64) + L["self_attn.o_proj.bias"]


def naive_moe(model, n, x):
    """§1.4 literally for one position: full E logits, top-k, softmax of k, expert loop (float64)."""
    cfg, L = model.config, model.layers[n]
    t = x.astype(np.float64)
    t = t / np.sqrt((t * t).mean() + cfg.rms_norm_eps) * L["post_attention_layernorm.weight"]
    r = L["mlp.router.weight"].astype(np.float64) @ t + L["mlp.router.bias"]
    idx = sorted(range(cfg.num_experts), key=lambda e: (-r[e], e))[: cfg.experts_per_token]
    w = np.exp(r[idx] - r[idx].max())
    w /= w.sum()
    y = np.zeros(cfg.hidden_size)
    for e, we in zip(idx, w):
        w1, b1, w2, b2 = model._expert(n, e)
        h2 = w1.astype(np.float64) @ t + b1
        gate, lin = np.minimum(h2[0::2], cfg.swiglu_limit), np.clip(h2[1::2], -cfg.swiglu_limit, cfg.swiglu_limit)
        a = gate / (1 + np.exp(-cfg.swiglu_alpha * gate)) * (lin + 1)
        y += we * (w2.astype(np.float64) @ a + b2)
    return y, idx


def test_against_naive(model):
    cfg = model.config
    T = 2 * cfg.sliding_window + 3
    toks = sample_tokens(model, T, 3)
    tr = {}
    logits, routing = model.forward(toks, trace=tr)
    x_in = [ref.to_f32("BF16", model.ckpt.raw("model.embed_tokens.weight")[1][np.array(toks)])] + tr["resid"][:-1]
    for n in range(cfg.num_layers):
        for p in (0, cfg.sliding_window - 1, cfg.sliding_window, T - 1):
            want = naive_attention(model, n, x_in[n], p)
            got = tr["attn_out"][n][p]
            err = np.abs(got - want).max()
            assert err <= 2e-5 * max(1.0, np.abs(want).max()), (n, p, err)
            want_m, idx = naive_moe(model, n, tr["resid_attn"][n][p])
            assert list(routing[p, n]) == idx, (n, p, routing[p, n], idx)
            err = np.abs(tr["moe_out"][n][p] - want_m).max()
            assert err <= 2e-5 * max(1.0, np.abs(want_m).max()), (n, p, err)
    # final norm + lm_head for the last position
    xf = tr["resid"][-1][-1].astype(np.float64)
    xf = xf / np.sqrt((xf * xf).mean() + cfg.rms_norm_eps) * model.final_norm
    want = model.lm_head.astype(np.float64) @ xf
    assert np.abs(logits[-1] - want).max() <= 2e-5 * max(1.0, np.abs(want).max())


def test_greedy(model):
    toks = sample_tokens(model, 12, 4)
    cont = model.greedy(toks, 5)
    logits, _ = model.forward(toks + cont)
    assert [int(np.argmax(logits[len(toks) - 1 + i])) for i in range(5)] == cont
    assert np.isfinite(logits).all()


if __name__ == "__main__":
    check("mxfp4 decoder (16 codes, both nibbles, scale 127 and 0)", test_mxfp4_decoder)
    check("bf16 widening", test_bf16)
    check("YaRN constants (d 64, theta 150000, factor 32)", test_yarn_constants)
    check("swiglu clamp, top-k tie rule", test_swiglu_and_topk_ties)
    check("safetensors container (unaligned, overlap rejected, shards)", test_safetensors_container)
    check("config.json variants (rope_scaling / rope_parameters, key aliases)", test_config_variants)
    if len(sys.argv) > 1:
        m = ref.Model(sys.argv[1])
        check("causality (prefix logits = first rows)", test_causality, m)
        check("sliding window limits layer-0 attention", test_sliding_window, m)
        check("vectorized layers = per-position float64 §1.4", test_against_naive, m)
        check("greedy = argmax of the full-sequence logits", test_greedy, m)
    else:
        print("(no CHECKPOINT_DIR: model checks skipped)")
