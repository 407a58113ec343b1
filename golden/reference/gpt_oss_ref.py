#!/usr/bin/env python3
"""A readable numpy fp32 reference forward pass for gpt-oss (Hugging Face root layout).

This is the golden model the CPU engine is checked against. It favours being obviously correct
over being fast: every step follows the gpt-oss forward pass of spec/engine.md §2 literally, in
float32, and the whole causal sequence (positions 0..T-1) is computed in one pass.

Only numpy is needed (no torch, no safetensors package): the safetensors container is parsed by
hand (§1.8), bf16 is widened to fp32 by a 16-bit shift, and the MXFP4 expert weights are decoded
with the 16-entry E2M1 table and np.ldexp (§1.7).

    from gpt_oss_ref import Model
    m = Model("/tmp/tiny")
    logits, routing = m.forward([200006, 17360, 200008])   # [T, V] float32, [T, L, k] int
    continuation = m.greedy([200006, 17360, 200008], 8)

Numerics, in one place (everything else is plain float32 with numpy's float32 kernels):
  * bf16 -> fp32 is exact; MXFP4 -> fp32 is exact (LUT value times a power of two, subnormals kept).
  * RoPE: inv_freq (YaRN blend included) is computed in float64 and rounded once to float32 (the
    OpenAI torch code does the same arithmetic in float32, which can land 1 ulp away: on the tiny
    config one of 8 entries differs, moving logits by ~1e-5); the
    angle is the float32 product float32(p) * inv_freq (as the torch reference's fp32 einsum);
    cos/sin of that float32 angle are evaluated in float64 and rounded to float32 (a correctly
    rounded value any implementation can reproduce with a double-precision cos/sin), then
    multiplied in float32 by float32(concentration).
  * Matrix products are numpy float32 matmuls (BLAS sgemm: fp32 accumulation, order unspecified),
    so an engine matches this reference to ~1e-6 relative, not bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

F32 = np.float32

# ----------------------------------------------------------------------------------------------
# Safetensors container (§1.8)
# ----------------------------------------------------------------------------------------------

# safetensors dtype name -> (numpy dtype of the stored bytes, bytes per element).
# BF16 has no numpy dtype: it is read as little-endian uint16 and widened by bf16_to_f32().
_ST_DTYPES = {
    "BF16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "BOOL": np.dtype("?"),
}


class SafetensorsFile:
    """One .safetensors file: an 8-byte little-endian header length N, N bytes of JSON, then the
    data buffer. Tensor offsets are relative to the start of the buffer (byte 8 + N)."""

    def __init__(self, path: str):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError(f"{path}: shorter than the 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > size - 8:
                raise ValueError(f"{path}: header length {n} exceeds the file size {size}")
            header = json.loads(f.read(n).decode("utf-8"))
        self.metadata = header.pop("__metadata__", {})
        self.data_start = 8 + n
        buf_len = size - self.data_start
        # The whole file, read-only, as bytes; tensors are views into it (no copy).
        self._mm = np.memmap(path, dtype=np.uint8, mode="r")
        self.entries = {}
        ranges = []
        for name, e in header.items():
            dtype = e["dtype"]
            if dtype not in _ST_DTYPES:
                raise ValueError(f"{path}: {name}: unsupported dtype {dtype}")
            shape = tuple(int(d) for d in e["shape"])
            begin, end = (int(o) for o in e["data_offsets"])
            if not (0 <= begin <= end <= buf_len):
                raise ValueError(f"{path}: {name}: range [{begin}, {end}) outside the buffer ({buf_len})")
            want = math.prod(shape) * _ST_DTYPES[dtype].itemsize
            if end - begin != want:
                raise ValueError(f"{path}: {name}: {end - begin} bytes for shape {shape} {dtype} ({want})")
            self.entries[name] = (dtype, shape, begin, end)
            ranges.append((begin, end, name))
        ranges.sort()
        for (b0, e0, n0), (b1, e1, n1) in zip(ranges, ranges[1:]):
            if b1 < e0 and e0 > b0 and e1 > b1:  # empty tensors may share an offset
                raise ValueError(f"{path}: tensors {n0} and {n1} overlap")

    def raw(self, name: str) -> tuple[str, np.ndarray]:
        """(safetensors dtype, array of the stored values) — a read-only view into the mmap.
        The view may be unaligned (some writers don't pad the header); numpy handles that."""
        dtype, shape, begin, end = self.entries[name]
        a = self._mm[self.data_start + begin : self.data_start + end].view(_ST_DTYPES[dtype])
        return dtype, a.reshape(shape)


def bf16_to_f32(u16: np.ndarray) -> np.ndarray:
    """bf16 is the top half of an fp32: widen the 16 bits into the high half of a uint32."""
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def to_f32(dtype: str, a: np.ndarray) -> np.ndarray:
    """Stored values of a floating tensor -> float32 (exact for BF16/F16/F32)."""
    if dtype == "BF16":
        return bf16_to_f32(a)
    if dtype in ("F16", "F32"):
        return np.asarray(a, dtype=np.float32)
    raise ValueError(f"expected a floating tensor, got {dtype}")


class Checkpoint:
    """All tensors of a checkpoint directory: `model.safetensors`, or the shards named by
    `model.safetensors.index.json` ({"weight_map": {tensor: file}})."""

    def __init__(self, directory: str):
        self.directory = directory
        index = os.path.join(directory, "model.safetensors.index.json")
        single = os.path.join(directory, "model.safetensors")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
            self.files = sorted(set(weight_map.values()))
        elif os.path.exists(single):
            self.files = ["model.safetensors"]
            weight_map = None
        else:
            raise FileNotFoundError(f"{directory}: no model.safetensors or model.safetensors.index.json")
        self._files = {name: SafetensorsFile(os.path.join(directory, name)) for name in self.files}
        self._where = {}
        for fname, sf in self._files.items():
            for t in sf.entries:
                if t in self._where:
                    raise ValueError(f"tensor {t} is in both {self._where[t]} and {fname}")
                self._where[t] = fname
        if weight_map is not None:
            for t, fname in weight_map.items():
                if self._where.get(t) != fname:
                    raise ValueError(f"index says {t} is in {fname}, found in {self._where.get(t)}")

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def raw(self, name: str) -> tuple[str, np.ndarray]:
        if name not in self._where:
            raise KeyError(f"tensor {name} not in the checkpoint")
        return self._files[self._where[name]].raw(name)

    def f32(self, name: str) -> np.ndarray:
        """A floating tensor converted to a float32 array (a copy)."""
        dtype, a = self.raw(name)
        return to_f32(dtype, a)

    def u8(self, name: str) -> np.ndarray:
        dtype, a = self.raw(name)
        if dtype != "U8":
            raise ValueError(f"{name}: expected U8, got {dtype}")
        return a


# ----------------------------------------------------------------------------------------------
# MXFP4 (§1.7)
# ----------------------------------------------------------------------------------------------

# E2M1 code -> value; bit 3 is the sign, bits 2-1 the exponent, bit 0 the mantissa.
MXFP4_LUT = np.array(
    [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
     -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0],
    dtype=np.float32,
)


def dequant_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """blocks [..., rows, G, 16] uint8, scales [..., rows, G] uint8 -> float32 [..., rows, G*32].

    A block is 32 consecutive elements of a row along the INPUT dimension. Element j of a block
    (j = 0..31) is in byte j // 2: the low nibble holds the even element, the high nibble the odd
    one. value = LUT[code] * 2^(scale - 127); np.ldexp keeps scale 0 (2^-127) as a subnormal.
    """
    blocks = np.asarray(blocks, dtype=np.uint8)
    scales = np.asarray(scales, dtype=np.uint8)
    if blocks.shape[-1] != 16 or blocks.shape[:-1] != scales.shape:
        raise ValueError(f"MXFP4 shapes don't match: blocks {blocks.shape}, scales {scales.shape}")
    if np.any(scales == 0xFF):
        raise ValueError("MXFP4 scale 0xFF is NaN in the OCP spec")
    codes = np.empty(blocks.shape[:-1] + (32,), dtype=np.uint8)
    codes[..., 0::2] = blocks & 0x0F  # even elements: low nibble
    codes[..., 1::2] = blocks >> 4  # odd elements: high nibble
    mant = MXFP4_LUT[codes]  # [..., rows, G, 32]
    exp = scales.astype(np.int32)[..., None] - 127
    vals = np.ldexp(mant, exp).astype(np.float32)
    return vals.reshape(blocks.shape[:-2] + (blocks.shape[-2] * 32,))


# ----------------------------------------------------------------------------------------------
# Config (§1.2)
# ----------------------------------------------------------------------------------------------


@dataclass
class Config:
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    num_experts: int
    experts_per_token: int
    sliding_window: int
    sliding_layers: list  # per layer: True = sliding-window attention
    rope_theta: float
    rope_factor: float  # 1 (or less) = plain RoPE, no YaRN
    rope_beta_fast: float  # OpenAI rope_ntk_beta
    rope_beta_slow: float  # OpenAI rope_ntk_alpha
    initial_context_length: int
    swiglu_limit: float = 7.0
    swiglu_alpha: float = 1.702
    rms_norm_eps: float = 1e-5
    raw: dict = field(default_factory=dict, repr=False)

    @staticmethod
    def from_hf(c: dict) -> "Config":
        def pick(*keys, default=None):
            for k in keys:
                if k in c and c[k] is not None:
                    return c[k]
            if default is None:
                raise KeyError(f"config.json lacks {' / '.join(keys)}")
            return default

        n_layers = int(c["num_hidden_layers"])
        n_heads = int(c["num_attention_heads"])
        # transformers v4 writes rope_scaling (+ top-level rope_theta); v5 writes rope_parameters
        # (with rope_theta inside). Accept either.
        rope = c.get("rope_scaling") or c.get("rope_parameters") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        theta = float(rope.get("rope_theta", c.get("rope_theta", 10000.0)))
        if rope_type == "yarn":
            if rope.get("truncate", False):
                # HF would floor/ceil low/high; gpt-oss uses truncate: false (§1.6). Don't guess.
                raise ValueError("rope truncate=true is not supported (gpt-oss uses false)")
            factor = float(rope.get("factor", 1.0))
        elif rope_type in ("default", None):
            factor = 1.0
        else:
            raise ValueError(f"unsupported rope_type {rope_type!r}")
        layer_types = c.get("layer_types")
        if layer_types is None:
            # gpt-oss alternates, starting with a sliding layer at layer 0.
            layer_types = ["sliding_attention" if n % 2 == 0 else "full_attention" for n in range(n_layers)]
        if len(layer_types) != n_layers:
            raise ValueError("layer_types has the wrong length")
        for t in layer_types:
            if t not in ("sliding_attention", "full_attention"):
                raise ValueError(f"unknown layer type {t!r}")
        return Config(
            hidden_size=int(c["hidden_size"]),
            intermediate_size=int(c["intermediate_size"]),
            num_layers=n_layers,
            num_heads=n_heads,
            num_kv_heads=int(c["num_key_value_heads"]),
            head_dim=int(c.get("head_dim") or c["hidden_size"] // n_heads),
            vocab_size=int(c["vocab_size"]),
            num_experts=int(pick("num_local_experts", "num_experts")),
            experts_per_token=int(pick("num_experts_per_tok", "experts_per_token")),
            sliding_window=int(c["sliding_window"]),
            sliding_layers=[t == "sliding_attention" for t in layer_types],
            rope_theta=theta,
            rope_factor=factor,
            rope_beta_fast=float(rope.get("beta_fast", 32.0)),
            rope_beta_slow=float(rope.get("beta_slow", 1.0)),
            initial_context_length=int(
                rope.get("original_max_position_embeddings", c.get("initial_context_length", 4096))
            ),
            swiglu_limit=float(c.get("swiglu_limit", 7.0)),
            swiglu_alpha=float(c.get("swiglu_alpha", 1.702)),
            rms_norm_eps=float(c.get("rms_norm_eps", 1e-5)),
            raw=c,
        )


# ----------------------------------------------------------------------------------------------
# RoPE + YaRN (§1.6)
# ----------------------------------------------------------------------------------------------


def yarn_parameters(head_dim, theta, factor, l0, beta_fast, beta_slow):
    """(concentration, inv_freq float32 [head_dim/2], low, high), all from float64 arithmetic.

    freq_j = theta^(2j/d); low/high are the (unrounded) dims where the wavelength crosses
    L0/beta_fast and L0/beta_slow; dims <= low keep their frequency, dims >= high are divided by
    `factor`, dims in between blend linearly. The concentration 0.1*ln(factor) + 1 scales cos and sin.
    With factor <= 1 it is plain RoPE: inv_freq = 1/freq, concentration 1, low/high None.
    """
    d_half = head_dim // 2
    j = np.arange(d_half, dtype=np.float64)
    freq = np.float64(theta) ** (2.0 * j / head_dim)
    if factor <= 1.0:
        return 1.0, (1.0 / freq).astype(np.float32), None, None
    low = d_half * math.log(l0 / (beta_fast * 2 * math.pi)) / math.log(theta)
    high = d_half * math.log(l0 / (beta_slow * 2 * math.pi)) / math.log(theta)
    if not (0 < low < high < d_half - 1):
        raise ValueError(f"YaRN needs 0 < low < high < d_half - 1 (low {low}, high {high}, d_half {d_half})")
    ramp = np.clip((j - low) / (high - low), 0.0, 1.0)  # 0 = original frequency, 1 = divided by factor
    inv_freq = (1.0 / (factor * freq)) * ramp + (1.0 / freq) * (1.0 - ramp)
    concentration = 0.1 * math.log(factor) + 1.0
    return concentration, inv_freq.astype(np.float32), low, high


def rope_cos_sin(positions: np.ndarray, inv_freq: np.ndarray, concentration: float):
    """cos, sin [T, d/2] float32 for absolute positions (see the module docstring for the numerics)."""
    angle = positions.astype(np.float32)[:, None] * inv_freq[None, :]  # float32 product
    assert angle.dtype == np.float32
    c = np.cos(angle.astype(np.float64)).astype(np.float32) * F32(concentration)
    s = np.sin(angle.astype(np.float64)).astype(np.float32) * F32(concentration)
    return c, s


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x [T, heads, d]: rotate-half (NeoX) pairing — element i pairs with element i + d/2."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    c, s = cos[:, None, :], sin[:, None, :]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


# ----------------------------------------------------------------------------------------------
# Small fp32 building blocks
# ----------------------------------------------------------------------------------------------


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x^2) + eps) * weight, all float32."""
    ms = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
    return (x / np.sqrt(ms + F32(eps))) * weight


def swiglu(h: np.ndarray, alpha: float, limit: float) -> np.ndarray:
    """h [..., 2I] with interleaved rows: even = gate (glu), odd = linear."""
    gate = h[..., 0::2]
    lin = h[..., 1::2]
    gate = np.minimum(gate, F32(limit))  # clamped from above only
    lin = np.clip(lin, F32(-limit), F32(limit))
    with np.errstate(over="ignore"):  # exp(+large) -> inf -> sigmoid 0: the right limit
        sig = F32(1.0) / (F32(1.0) + np.exp(-(F32(alpha) * gate)))
    return gate * sig * (lin + F32(1.0))


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------


class Model:
    def __init__(self, directory: str):
        with open(os.path.join(directory, "config.json")) as f:
            self.config = cfg = Config.from_hf(json.load(f))
        self.ckpt = ck = Checkpoint(directory)
        self.concentration, self.inv_freq, self.yarn_low, self.yarn_high = yarn_parameters(
            cfg.head_dim, cfg.rope_theta, cfg.rope_factor, cfg.initial_context_length,
            cfg.rope_beta_fast, cfg.rope_beta_slow,
        )
        if cfg.num_heads % cfg.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        H, D, E = cfg.hidden_size, cfg.head_dim, cfg.num_experts
        if H % 32 or cfg.intermediate_size % 32:
            raise ValueError("hidden_size and intermediate_size must be multiples of 32 (MXFP4 blocks)")
        self._expect("model.embed_tokens.weight", (cfg.vocab_size, H))
        self._expect("lm_head.weight", (cfg.vocab_size, H))
        self._expect("model.norm.weight", (H,))
        # Non-expert weights are small: convert them to float32 once. Expert weights stay MXFP4
        # in the mmap and are decoded one expert at a time (_expert()).
        self.layers = []
        for n in range(cfg.num_layers):
            p = f"model.layers.{n}."
            shapes = {
                "input_layernorm.weight": (H,),
                "post_attention_layernorm.weight": (H,),
                "self_attn.q_proj.weight": (cfg.num_heads * D, H),
                "self_attn.q_proj.bias": (cfg.num_heads * D,),
                "self_attn.k_proj.weight": (cfg.num_kv_heads * D, H),
                "self_attn.k_proj.bias": (cfg.num_kv_heads * D,),
                "self_attn.v_proj.weight": (cfg.num_kv_heads * D, H),
                "self_attn.v_proj.bias": (cfg.num_kv_heads * D,),
                "self_attn.o_proj.weight": (H, cfg.num_heads * D),
                "self_attn.o_proj.bias": (H,),
                "self_attn.sinks": (cfg.num_heads,),
                "mlp.router.weight": (E, H),
                "mlp.router.bias": (E,),
                "mlp.experts.gate_up_proj_bias": (E, 2 * cfg.intermediate_size),
                "mlp.experts.down_proj_bias": (E, H),
            }
            layer = {}
            for k, shape in shapes.items():
                self._expect(p + k, shape)
                layer[k] = self.ckpt.f32(p + k)
            for k, rows, cols in (
                ("mlp.experts.gate_up_proj", 2 * cfg.intermediate_size, H),
                ("mlp.experts.down_proj", H, cfg.intermediate_size),
            ):
                self._expect(p + k + "_blocks", (E, rows, cols // 32, 16), "U8")
                self._expect(p + k + "_scales", (E, rows, cols // 32), "U8")
            self.layers.append(layer)
        self.final_norm = ck.f32("model.norm.weight")
        self._lm_head = None  # converted on first use (V x H float32)

    def _expect(self, name, shape, dtype=None):
        d, a = self.ckpt.raw(name)
        if tuple(a.shape) != tuple(shape):
            raise ValueError(f"{name}: shape {a.shape}, expected {shape}")
        if dtype is not None and d != dtype:
            raise ValueError(f"{name}: dtype {d}, expected {dtype}")
        if dtype is None and d not in ("BF16", "F32", "F16"):
            raise ValueError(f"{name}: dtype {d}, expected a float type")

    @property
    def lm_head(self) -> np.ndarray:
        if self._lm_head is None:
            self._lm_head = self.ckpt.f32("lm_head.weight")
        return self._lm_head

    def _expert(self, n: int, e: int):
        """Dequantized weights of expert e in layer n: W1 [2I, H], b1 [2I], W2 [H, I], b2 [H]."""
        p = f"model.layers.{n}.mlp.experts."
        w1 = dequant_mxfp4(self.ckpt.u8(p + "gate_up_proj_blocks")[e], self.ckpt.u8(p + "gate_up_proj_scales")[e])
        w2 = dequant_mxfp4(self.ckpt.u8(p + "down_proj_blocks")[e], self.ckpt.u8(p + "down_proj_scales")[e])
        L = self.layers[n]
        return w1, L["mlp.experts.gate_up_proj_bias"][e], w2, L["mlp.experts.down_proj_bias"][e]

    # -- attention block ---------------------------------------------------------------------

    def _attention(self, n: int, x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """The attention block's output (before the residual add) for all T positions. x [T, H]."""
        cfg, L = self.config, self.layers[n]
        T, D = x.shape[0], cfg.head_dim
        nh, nkv = cfg.num_heads, cfg.num_kv_heads
        t = rms_norm(x, L["input_layernorm.weight"], cfg.rms_norm_eps)
        q = (t @ L["self_attn.q_proj.weight"].T + L["self_attn.q_proj.bias"]).reshape(T, nh, D)
        k = (t @ L["self_attn.k_proj.weight"].T + L["self_attn.k_proj.bias"]).reshape(T, nkv, D)
        v = (t @ L["self_attn.v_proj.weight"].T + L["self_attn.v_proj.bias"]).reshape(T, nkv, D)
        q = apply_rope(q, cos, sin)  # K is used AFTER rope (that is what a KV cache stores)
        k = apply_rope(k, cos, sin)

        # Visibility: key j is seen by query i iff j <= i, and on sliding layers j >= i - W + 1
        # (the window includes the current token: W keys at most).
        i = np.arange(T)[:, None]
        j = np.arange(T)[None, :]
        visible = j <= i
        if cfg.sliding_layers[n]:
            visible &= j >= i - cfg.sliding_window + 1

        scale = F32(1.0 / math.sqrt(D))
        group = nh // nkv  # consecutive query heads share a kv head: g = h // group
        sinks = L["self_attn.sinks"]
        out = np.empty((T, nh, D), dtype=np.float32)
        for h in range(nh):
            g = h // group
            s = (q[:, h, :] @ k[:, g, :].T) * scale  # [T(query), T(key)]
            s = np.where(visible, s, F32(-np.inf))
            # The sink is one more logit per head (not scaled, not masked, no value vector).
            m = np.maximum(s.max(axis=1), sinks[h])  # [T]
            e = np.exp(s - m[:, None])  # masked -> exp(-inf) = 0 exactly
            denom = e.sum(axis=1, dtype=np.float32) + np.exp(sinks[h] - m)
            p = e / denom[:, None]
            out[:, h, :] = p @ v[:, g, :]
        o = out.reshape(T, nh * D)
        return o @ L["self_attn.o_proj.weight"].T + L["self_attn.o_proj.bias"]

    # -- MoE block ---------------------------------------------------------------------------

    def _moe(self, n: int, x: np.ndarray):
        """(MoE output before the residual add [T, H], chosen experts [T, k] in top-k order)."""
        cfg, L = self.config, self.layers[n]
        T, k = x.shape[0], cfg.experts_per_token
        t = rms_norm(x, L["post_attention_layernorm.weight"], cfg.rms_norm_eps)
        r = t @ L["mlp.router.weight"].T + L["mlp.router.bias"]  # [T, E] float32
        # top-k by value, ties -> lowest index: a stable sort of -r keeps equal values in index order.
        idx = np.argsort(-r, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(r, idx, axis=1)  # descending
        # softmax over the k selected logits only
        ex = np.exp(top - top[:, :1])
        w = ex / ex.sum(axis=1, keepdims=True, dtype=np.float32)

        # Each (token, slot) pair's expert output, computed expert by expert (one decode each).
        expert_out = np.zeros((T, k, cfg.hidden_size), dtype=np.float32)
        for e in np.unique(idx):
            rows, slots = np.nonzero(idx == e)
            w1, b1, w2, b2 = self._expert(n, int(e))
            h = t[rows] @ w1.T + b1  # [R, 2I], interleaved gate/linear
            a = swiglu(h, cfg.swiglu_alpha, cfg.swiglu_limit)  # [R, I]
            expert_out[rows, slots] = a @ w2.T + b2  # per-expert bias inside the weighted sum
        # y = sum over slots in top-k order of w * (W2 a + b2)
        y = np.zeros((T, cfg.hidden_size), dtype=np.float32)
        for s in range(k):
            y = y + w[:, s : s + 1] * expert_out[:, s, :]
        return y, idx

    # -- whole model -------------------------------------------------------------------------

    def forward(self, tokens, trace: dict | None = None, logits_rows=None):
        """Run the causal sequence `tokens` (positions 0..T-1).

        Returns (logits [T, V] float32, routing [T, L, k] int64, experts in top-k order).
        `logits_rows` (a slice or index array) restricts which rows' logits are computed.
        If `trace` is a dict it receives per-layer lists: 'attn_out' (attention block output
        before the residual add), 'moe_out', 'resid_attn' (stream after the attention residual),
        'resid' (stream after the layer).
        """
        cfg = self.config
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 1 or tokens.size == 0:
            raise ValueError("tokens must be a non-empty 1-D sequence")
        if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
            raise ValueError(f"token id outside [0, {cfg.vocab_size})")
        T = tokens.size
        dtype, emb = self.ckpt.raw("model.embed_tokens.weight")
        x = to_f32(dtype, emb[tokens])  # [T, H], no scaling
        cos, sin = rope_cos_sin(np.arange(T), self.inv_freq, self.concentration)
        routing = np.zeros((T, cfg.num_layers, cfg.experts_per_token), dtype=np.int64)
        if trace is not None:
            for key in ("attn_out", "moe_out", "resid_attn", "resid"):
                trace[key] = []
        for n in range(cfg.num_layers):
            a = self._attention(n, x, cos, sin)
            x = x + a
            if trace is not None:
                trace["attn_out"].append(a)
                trace["resid_attn"].append(x)
            m, idx = self._moe(n, x)
            x = x + m
            routing[:, n, :] = idx
            if trace is not None:
                trace["moe_out"].append(m)
                trace["resid"].append(x)
        xf = rms_norm(x if logits_rows is None else x[logits_rows], self.final_norm, cfg.rms_norm_eps)
        logits = xf @ self.lm_head.T  # no bias, no softcap
        return logits, routing

    def greedy(self, tokens, n: int) -> list:
        """Greedy continuation of n tokens (argmax; lowest id on ties). Recomputes the whole
        sequence each step: slow but with no cache to get wrong."""
        seq = [int(t) for t in tokens]
        out = []
        for _ in range(n):
            logits, _ = self.forward(seq, logits_rows=slice(-1, None))
            row = logits[-1]
            if not np.all(np.isfinite(row)):
                raise FloatingPointError("non-finite logits")
            nxt = int(np.argmax(row))  # np.argmax returns the first (lowest) index among ties
            out.append(nxt)
            seq.append(nxt)
        return out


def sanity_report(model: Model, tokens) -> dict:
    """Numbers that show a (random) checkpoint behaves: per-layer RMS of the residual stream,
    expert usage across the positions, logit range."""
    cfg = model.config
    tr = {}
    logits, routing = model.forward(tokens, trace=tr)
    rms = lambda a: float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))
    dtype, emb = model.ckpt.raw("model.embed_tokens.weight")
    s = np.sort(logits[-1])[::-1]
    return {
        "positions": len(tokens),
        "embedding_rms": rms(to_f32(dtype, emb[np.asarray(tokens)])),
        "per_layer": [
            {"layer": n, "sliding": cfg.sliding_layers[n], "attn_out_rms": rms(tr["attn_out"][n]),
             "resid_after_attn_rms": rms(tr["resid_attn"][n]), "moe_out_rms": rms(tr["moe_out"][n]),
             "resid_rms": rms(tr["resid"][n]),
             "expert_usage": np.bincount(routing[:, n, :].ravel(), minlength=cfg.num_experts).tolist(),
             "expert_top1_usage": np.bincount(routing[:, n, 0], minlength=cfg.num_experts).tolist()}
            for n in range(cfg.num_layers)
        ],
        "logits_finite": bool(np.isfinite(logits).all()),
        "logit_max_abs": float(np.abs(logits).max()),
        "logit_std": float(logits.astype(np.float64).std()),
        "last_top1_top2_gap": float(s[0] - s[1]),
    }


if __name__ == "__main__":
    # python3 gpt_oss_ref.py CHECKPOINT_DIR [TOKENS_JSON | token ...]: sanity report as JSON
    m = Model(sys.argv[1])
    args = sys.argv[2:]
    if len(args) == 1 and args[0].endswith(".json"):
        with open(args[0]) as f:
            toks = json.load(f)
    else:
        toks = [int(t) for t in args] or [0, 1, 2, 3]
    print(json.dumps(sanity_report(m, toks), indent=1))
