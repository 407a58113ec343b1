#!/usr/bin/env python3
"""The talking tiny gpt-oss: one deterministic training run on the CPU (issue 15).

    npx tsx golden/tiny-chat/write-data.ts DATA
    python golden/tiny-chat/train.py DATA OUT            # writes OUT/tiny-chat-delta.safetensors

Everything comes from recipe.json (the model's config, the data seed and sizes, the optimiser, the
step count, the seed, the thread count). With the same torch build, thread count and instruction set,
two runs write the same bytes: seeded initialisation and batch order, deterministic algorithms, a
fixed number of steps.

The model is gpt-oss as spec/engine.md §2 has it (sliding/full layers, sinks, YaRN, MoE top-k with
softmax over the k, clamped SwiGLU with alpha and +1, MXFP4 experts, the 201,088-token vocabulary),
trained as it will run: every weight is rounded to its checkpoint form in the forward pass (bf16 for
the dense weights, MXFP4 for the experts; straight-through gradients), so the exported model is the
trained one. Three things make it fast enough for two cores without changing the maths:
  * attention runs in torch's fused kernel, with each head's sink as one extra key: a key whose
    score is the sink logit for every query (an extra dimension, 1 in every query, sink/scale in
    that key, 0 in every real key) and whose value is zero;
  * only the ~2,300 token ids the data uses have their own embedding and lm_head rows; every other
    id shares one learnt input row and one learnt output row. The softmax over all 201,088 ids is
    then exactly the used ids' logits plus one logit, the shared row's plus log(number of unused
    ids): the loss is exact, and the unused ids are trained down together, so they are never sampled;
  * the loss is on the completion (the data's mask), plus the prompt's tokens at a small weight: the
    histories in prompts copy the questions' values into calls, results and answers, more examples of
    the copying the completions need (with `skip_unlearnable`, less the few prompt tokens a
    completion must never say: `unlearnable`).

The delta file holds what training made: the used ids, their rows, the two shared rows and every
layer's tensors in checkpoint form (bf16, MXFP4 blocks and scales). `amnesia model make-tiny-chat`
writes the full Hugging Face checkpoint from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DELTA_FILE = "tiny-chat-delta.safetensors"

# E2M1 magnitudes (codes 0-7) and the midpoints between neighbours, for round-to-nearest.
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
E2M1_MIDPOINTS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


# ---- checkpoint forms ----------------------------------------------------------------------------


def bf16_round(w: torch.Tensor) -> torch.Tensor:
    """w rounded to bf16 (nearest even) in the forward pass, the identity for the gradient."""
    return w + (w.to(torch.bfloat16).to(torch.float32) - w).detach()


def mxfp4_encode(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """w [..., cols] (cols a multiple of 32) -> (codes [..., cols] uint8 0-15, scales [..., cols/32]
    uint8 E8M0, values [..., cols] float32). Each block of 32 along the input dimension shares a power
    of two chosen so its largest magnitude fits 6; each element is the nearest E2M1 value (ties to the
    smaller magnitude), sign in bit 3."""
    w = w.detach()
    blocks = w.reshape(*w.shape[:-1], w.shape[-1] // 32, 32)
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    exp = torch.ceil(torch.log2(torch.clamp(amax, min=2.0**-120) / 6.0)).clamp(-127, 127)
    y = blocks / torch.exp2(exp)
    mag = torch.bucketize(y.abs(), E2M1_MIDPOINTS, right=False)  # 0..7
    codes = mag + 8 * (y < 0).to(mag.dtype)
    values = E2M1[mag] * torch.sign(y) * torch.exp2(exp)
    scales = (exp.squeeze(-1) + 127).to(torch.uint8)
    return codes.reshape(w.shape).to(torch.uint8), scales, values.reshape(w.shape)


def mxfp4_round(w: torch.Tensor) -> torch.Tensor:
    """w rounded to MXFP4 in the forward pass, the identity for the gradient."""
    return w + (mxfp4_encode(w)[2] - w).detach()


def pack_mxfp4(codes: torch.Tensor) -> np.ndarray:
    """codes [..., cols] -> blocks [..., cols/32, 16] uint8: element 2i in the low nibble, 2i+1 high."""
    c = codes.numpy().astype(np.uint8)
    packed = c[..., 0::2] | (c[..., 1::2] << 4)
    return packed.reshape(*c.shape[:-1], c.shape[-1] // 32, 16)


# ---- the model -----------------------------------------------------------------------------------


def yarn(head_dim: int, rope: dict, theta: float) -> tuple[float, torch.Tensor]:
    """(concentration, inv_freq float32 [head_dim/2]) as golden/reference/gpt_oss_ref.py computes them."""
    d_half = head_dim // 2
    j = np.arange(d_half, dtype=np.float64)
    freq = np.float64(theta) ** (2.0 * j / head_dim)
    factor, l0 = float(rope["factor"]), float(rope["original_max_position_embeddings"])
    low = d_half * math.log(l0 / (rope["beta_fast"] * 2 * math.pi)) / math.log(theta)
    high = d_half * math.log(l0 / (rope["beta_slow"] * 2 * math.pi)) / math.log(theta)
    ramp = np.clip((j - low) / (high - low), 0.0, 1.0)
    inv_freq = (1.0 / (factor * freq)) * ramp + (1.0 / freq) * (1.0 - ramp)
    return 0.1 * math.log(factor) + 1.0, torch.from_numpy(inv_freq.astype(np.float32))


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Layer(torch.nn.Module):
    """One layer's parameters under their checkpoint names (torch forbids '.' in a parameter's name)."""

    def __init__(self, params: dict):
        super().__init__()
        self.names = list(params)
        self.params = torch.nn.ParameterDict({k.replace(".", "__"): v for k, v in params.items()})

    def __getitem__(self, name: str) -> torch.nn.Parameter:
        return self.params[name.replace(".", "__")]

    def items(self):
        return [(k, self[k]) for k in self.names]


class TinyGptOss(torch.nn.Module):
    def __init__(self, config: dict, used_ids: list[int], gen: torch.Generator):
        super().__init__()
        c = self.c = config
        H, D = c["hidden_size"], c["head_dim"]
        nh, nkv, E, I = c["num_attention_heads"], c["num_key_value_heads"], c["num_local_experts"], c["intermediate_size"]
        V, U = c["vocab_size"], len(used_ids)
        self.unused = V - U

        def normal(*shape, std):
            return torch.nn.Parameter(torch.randn(*shape, generator=gen) * std)

        def const(*shape, value):
            return torch.nn.Parameter(torch.full(shape, float(value)))

        # Row U of embed (and the extra output row) stands for every id the data never uses.
        self.embed = normal(U + 1, H, std=1.0)
        self.lm_head = normal(U, H, std=H**-0.5)
        self.lm_head_unused = normal(H, std=H**-0.5)
        self.final_norm = const(H, value=1.0)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            L = Layer(
                {
                    "input_layernorm.weight": const(H, value=1.0),
                    "self_attn.q_proj.weight": normal(nh * D, H, std=H**-0.5),
                    "self_attn.q_proj.bias": const(nh * D, value=0.0),
                    "self_attn.k_proj.weight": normal(nkv * D, H, std=H**-0.5),
                    "self_attn.k_proj.bias": const(nkv * D, value=0.0),
                    "self_attn.v_proj.weight": normal(nkv * D, H, std=H**-0.5),
                    "self_attn.v_proj.bias": const(nkv * D, value=0.0),
                    "self_attn.o_proj.weight": normal(H, nh * D, std=(nh * D) ** -0.5 / 2),
                    "self_attn.o_proj.bias": const(H, value=0.0),
                    "self_attn.sinks": const(nh, value=0.0),
                    "post_attention_layernorm.weight": const(H, value=1.0),
                    "mlp.router.weight": normal(E, H, std=H**-0.5),
                    "mlp.router.bias": const(E, value=0.0),
                    "mlp.experts.gate_up_proj": normal(E, 2 * I, H, std=H**-0.5),
                    "mlp.experts.gate_up_proj_bias": const(E, 2 * I, value=0.0),
                    "mlp.experts.down_proj": normal(E, H, I, std=I**-0.5 / 2),
                    "mlp.experts.down_proj_bias": const(E, H, value=0.0),
                }
            )
            self.layers.append(L)
        self.concentration, self.inv_freq = yarn(D, c["rope_scaling"], float(c["rope_theta"]))
        self.sliding = [t == "sliding_attention" for t in c["layer_types"]]

    def rope(self, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        angle = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        cos = torch.cos(angle.double()).float() * self.concentration
        sin = torch.sin(angle.double()).float() * self.concentration
        return cos, sin

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    def attention(self, n: int, x: torch.Tensor, cos, sin, masks) -> torch.Tensor:
        c, L = self.c, self.layers[n]
        B, T, _ = x.shape
        D, nh, nkv = c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"]
        t = rms_norm(x, bf16_round(L["input_layernorm.weight"]), c["rms_norm_eps"])
        q = F.linear(t, bf16_round(L["self_attn.q_proj.weight"]), bf16_round(L["self_attn.q_proj.bias"]))
        k = F.linear(t, bf16_round(L["self_attn.k_proj.weight"]), bf16_round(L["self_attn.k_proj.bias"]))
        v = F.linear(t, bf16_round(L["self_attn.v_proj.weight"]), bf16_round(L["self_attn.v_proj.bias"]))
        q = self.rotate(q.view(B, T, nh, D).transpose(1, 2), cos, sin)
        k = self.rotate(k.view(B, T, nkv, D).transpose(1, 2), cos, sin).repeat_interleave(nh // nkv, dim=1)
        v = v.view(B, T, nkv, D).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
        # The sink as key 0: one more dimension, 1 in every query and sink/scale in the sink key.
        scale = 1.0 / math.sqrt(D)
        sinks = bf16_round(L["self_attn.sinks"])
        q = torch.cat([q, q.new_ones(B, nh, T, 1)], dim=-1)
        k = torch.cat([k, k.new_zeros(B, nh, T, 1)], dim=-1)
        sink_key = torch.cat([k.new_zeros(nh, D), (sinks / scale)[:, None]], dim=-1)
        k = torch.cat([sink_key[None, :, None, :].expand(B, nh, 1, D + 1), k], dim=2)
        # The fused kernel wants v as wide as q and k: a zero column, dropped after.
        v = torch.cat([v.new_zeros(B, nh, 1, D + 1), torch.cat([v, v.new_zeros(B, nh, T, 1)], dim=-1)], dim=2)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=masks[self.sliding[n]], scale=scale)
        o = o[..., :D].transpose(1, 2).reshape(B, T, nh * D)
        return F.linear(o, bf16_round(L["self_attn.o_proj.weight"]), bf16_round(L["self_attn.o_proj.bias"]))

    def moe(self, n: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(MoE output [N, H], load-balancing loss) for the rows x [N, H]."""
        c, L = self.c, self.layers[n]
        E, k, limit, alpha = c["num_local_experts"], c["num_experts_per_tok"], c["swiglu_limit"], 1.702
        t = rms_norm(x, bf16_round(L["post_attention_layernorm.weight"]), c["rms_norm_eps"])
        r = F.linear(t, bf16_round(L["mlp.router.weight"]), bf16_round(L["mlp.router.bias"]))
        top, idx = torch.topk(r, k, dim=-1)
        w = torch.softmax(top, dim=-1)
        w1 = mxfp4_round(L["mlp.experts.gate_up_proj"])
        b1 = bf16_round(L["mlp.experts.gate_up_proj_bias"])
        w2 = mxfp4_round(L["mlp.experts.down_proj"])
        b2 = bf16_round(L["mlp.experts.down_proj_bias"])
        y = torch.zeros_like(t)
        for e in range(E):
            rows, slots = torch.nonzero(idx == e, as_tuple=True)
            if rows.numel() == 0:
                continue
            h = F.linear(t[rows], w1[e], b1[e])
            gate = torch.clamp(h[:, 0::2], max=limit)
            lin = torch.clamp(h[:, 1::2], min=-limit, max=limit)
            a = gate * torch.sigmoid(alpha * gate) * (lin + 1)
            out = F.linear(a, w2[e], b2[e]) * w[rows, slots][:, None]
            y = y.index_add(0, rows, out)
        # Switch-style balance: experts' share of the (token, slot) assignments times their mean
        # router probability, so all experts stay in use (routing is part of what a server must keep).
        share = torch.bincount(idx.flatten(), minlength=E).float() / idx.numel()
        balance = E * (share * torch.softmax(r, dim=-1).mean(0)).sum()
        return y, balance

    def forward(self, idx: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """idx [B, T] compact ids (U = an unused id); keep [B, T] the positions whose output is needed.
        Returns (the final normalised hidden states of the kept positions [N, H], the mean balance loss)."""
        c = self.c
        B, T = idx.shape
        x = F.embedding(idx, bf16_round(self.embed))
        cos, sin = self.rope(T)
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        causal = j <= i
        window = causal & (j > i - c["sliding_window"])
        sink_col = torch.ones(T, 1, dtype=torch.bool)
        masks = {False: torch.cat([sink_col, causal], dim=1), True: torch.cat([sink_col, window], dim=1)}
        balance = x.new_zeros(())
        for n in range(c["num_hidden_layers"]):
            x = x + self.attention(n, x, cos, sin, masks)
            m, b = self.moe(n, x.reshape(B * T, -1))
            x = x + m.view(B, T, -1)
            balance = balance + b
        h = rms_norm(x[keep], bf16_round(self.final_norm), c["rms_norm_eps"])
        return h, balance / c["num_hidden_layers"]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """[N, U + 1]: the used ids' logits, then the logit that stands for all unused ids together."""
        used = F.linear(h, bf16_round(self.lm_head))
        rest = F.linear(h, bf16_round(self.lm_head_unused)[None, :]) + math.log(self.unused)
        return torch.cat([used, rest], dim=-1)


# ---- data ----------------------------------------------------------------------------------------


# Token ids (o200k_harmony) of the two prompt-only patterns below.
CHANNEL, START, END, FINAL, ASSISTANT = 200005, 200006, 200007, 17196, 173781


def unlearnable(ids: np.ndarray, prompt_len: int) -> np.ndarray:
    """[len(ids) - 1] bool: the prompt's next-token targets that contradict what a completion must say,
    so they carry no loss. Both are invisible to the model before the token: a final answer in a
    history ends <|end|> where the completion's ends <|return|>; a stale repeat's stray `assistant`
    follows text where a completion's stop token goes. Learnt at the prompt's weight, they are what
    temperature 1 sampled in most malformed completions of the second run."""
    out = np.zeros(len(ids) - 1, dtype=bool)
    channel_is_final = False
    for j in range(1, prompt_len):
        prev, tok = ids[j - 1], ids[j]
        if prev == CHANNEL:
            channel_is_final = tok == FINAL
        if (tok == END and channel_is_final) or (tok == ASSISTANT and prev != START):
            out[j - 1] = True
    return out


def load_examples(path: str, compact: np.ndarray) -> list[tuple[np.ndarray, int, str, np.ndarray]]:
    """(compact ids of prompt + completion, prompt length, kind, unlearnable targets) per line."""
    out = []
    with open(path) as f:
        for line in f:
            ex = json.loads(line)
            ids = np.asarray(ex["prompt"] + ex["completion"], dtype=np.int64)
            out.append((compact[ids], len(ex["prompt"]), ex["kind"], unlearnable(ids, len(ex["prompt"]))))
    return out


def batches(examples, tokens_per_batch: int, rng: np.random.Generator, oversample: dict[str, int]):
    """An endless, seeded stream of batches of similar-length examples, ~tokens_per_batch padded tokens;
    an epoch holds each example of a kind in `oversample` that many times (the kinds the model learns
    last), the others once."""
    pool = np.asarray([i for i, ex in enumerate(examples) for _ in range(oversample.get(ex[2], 1))])
    while True:
        order = pool[rng.permutation(len(pool))]
        chunk = 256
        pending = []
        for s in range(0, len(order), chunk):
            part = sorted(order[s : s + chunk], key=lambda i: len(examples[i][0]))
            cur = []
            for i in part:
                longest = max([len(examples[j][0]) for j in cur] + [len(examples[i][0])])
                if cur and longest * (len(cur) + 1) > tokens_per_batch:
                    pending.append(cur)
                    cur = []
                cur.append(i)
            if cur:
                pending.append(cur)
            for b in rng.permutation(len(pending)):
                yield pending[b]
            pending = []


def collate(examples, members, pad: int):
    """idx [B, T]; keep [B, T], the positions that predict a token (each one's next); targets [N];
    completion [N], whether a target is a completion token (the rest are prompt tokens); unlearnable
    [N], the prompt targets without loss."""
    T = max(len(examples[i][0]) for i in members)
    idx = torch.full((len(members), T), pad, dtype=torch.long)
    keep = torch.zeros((len(members), T), dtype=torch.bool)
    targets, completion, unlearn = [], [], []
    for r, i in enumerate(members):
        ids, p, _, skip = examples[i]
        idx[r, : len(ids)] = torch.from_numpy(ids)
        keep[r, : len(ids) - 1] = True  # position t predicts token t + 1
        targets.append(torch.from_numpy(ids[1:]))
        completion.append(torch.arange(1, len(ids)) >= p)
        unlearn.append(torch.from_numpy(skip))
    return idx, keep, torch.cat(targets), torch.cat(completion), torch.cat(unlearn)


@torch.no_grad()
def exact_completions(model, examples, tokens_per_batch: int, pad: int) -> dict:
    """Per kind: how many completions greedy decoding reproduces exactly (every position's argmax
    is the target token: teacher forcing then equals free-running greedy)."""
    model.eval()
    per_kind: dict[str, list[int]] = {}
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    cur: list[int] = []
    groups = []
    for i in order:
        if cur and len(examples[i][0]) * (len(cur) + 1) > tokens_per_batch:
            groups.append(cur)
            cur = []
        cur.append(i)
    groups.append(cur)
    for members in groups:
        idx, keep, targets, completion, _ = collate(examples, members, pad)
        h, _ = model(idx, keep)
        right = (model.logits(h[completion]).argmax(-1) == targets[completion])
        at = 0
        for i in members:
            n = len(examples[i][0]) - examples[i][1]
            ok = bool(right[at : at + n].all())
            at += n
            tally = per_kind.setdefault(examples[i][2], [0, 0])
            tally[0] += ok
            tally[1] += 1
    model.train()
    return per_kind


# ---- the delta file ------------------------------------------------------------------------------


def write_safetensors(path: str, tensors: list[tuple[str, str, np.ndarray]], metadata: dict) -> None:
    """A safetensors file by hand (8-byte header length, JSON header, data; offsets 8-aligned)."""
    header, offset, blobs = {}, 0, []
    for name, dtype, a in tensors:
        data = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def bf16_bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def export_delta(model: TinyGptOss, used_ids: list[int], path: str, metadata: dict) -> None:
    c = model.c
    out = [
        ("used_ids", "I32", np.asarray(used_ids, dtype=np.int32)),
        ("model.embed_tokens.weight.used", "BF16", bf16_bits(model.embed[:-1])),
        ("model.embed_tokens.weight.unused", "BF16", bf16_bits(model.embed[-1])),
    ]
    for n, L in enumerate(model.layers):
        p = f"model.layers.{n}."
        for key, value in L.items():
            if key in ("mlp.experts.gate_up_proj", "mlp.experts.down_proj"):
                codes, scales, _ = mxfp4_encode(value)
                out.append((p + key + "_blocks", "U8", pack_mxfp4(codes)))
                out.append((p + key + "_scales", "U8", scales.numpy()))
            else:
                out.append((p + key, "BF16", bf16_bits(value)))
    out += [
        ("model.norm.weight", "BF16", bf16_bits(model.final_norm)),
        ("lm_head.weight.used", "BF16", bf16_bits(model.lm_head)),
        ("lm_head.weight.unused", "BF16", bf16_bits(model.lm_head_unused)),
    ]
    write_safetensors(path, out, {"config": json.dumps(c, separators=(",", ":")), **metadata})


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors as numpy arrays — BF16 as uint16 bits —, metadata) of a small safetensors file."""
    dtypes = {"BF16": np.uint16, "U8": np.uint8, "I32": np.int32}
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + begin : 8 + n + end], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
    return out, metadata


def load_delta(path: str) -> tuple[TinyGptOss, list[int]]:
    """The trained model back from its delta file (every weight exactly as the checkpoint holds it)."""
    tensors, metadata = read_safetensors(path)
    used_ids = tensors["used_ids"].tolist()
    model = TinyGptOss(json.loads(metadata["config"]), used_ids, torch.Generator().manual_seed(0))
    bf16 = lambda name: torch.from_numpy(tensors[name].astype(np.int32) << 16).view(torch.float32)

    def mxfp4(name: str) -> torch.Tensor:
        blocks, scales = tensors[name + "_blocks"], tensors[name + "_scales"]
        codes = np.stack([blocks & 0x0F, blocks >> 4], axis=-1).reshape(*blocks.shape[:-1], 32)
        values = E2M1.numpy()[codes & 7] * np.where(codes & 8, -1.0, 1.0) * np.exp2(scales.astype(np.float64) - 127)[..., None]
        return torch.from_numpy(values.reshape(*blocks.shape[:-2], -1).astype(np.float32))

    with torch.no_grad():
        model.embed.copy_(torch.cat([bf16("model.embed_tokens.weight.used"), bf16("model.embed_tokens.weight.unused")[None]]))
        model.lm_head.copy_(bf16("lm_head.weight.used"))
        model.lm_head_unused.copy_(bf16("lm_head.weight.unused"))
        model.final_norm.copy_(bf16("model.norm.weight"))
        for n, L in enumerate(model.layers):
            for key, value in L.items():
                name = f"model.layers.{n}.{key}"
                value.copy_(mxfp4(name) if key in ("mlp.experts.gate_up_proj", "mlp.experts.down_proj") else bf16(name))
    return model, used_ids


# ---- the run -------------------------------------------------------------------------------------


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: train.py DATA_DIR OUT_DIR [STEPS]", file=sys.stderr)
        return 2
    data_dir, out_dir = argv[1], argv[2]
    with open(os.path.join(HERE, "recipe.json")) as f:
        recipe = json.load(f)
    t = recipe["train"]
    steps = int(argv[3]) if len(argv) == 4 else t["steps"]
    torch.set_num_threads(t["threads"])
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(t["seed"])
    gen = torch.Generator().manual_seed(t["seed"])
    rng = np.random.default_rng(t["seed"])

    with open(os.path.join(data_dir, "summary.json")) as f:
        summary = json.load(f)
    if summary["seed"] != recipe["data"]["seed"] or summary["train"]["examples"] != recipe["data"]["train"]:
        print(f"{data_dir} was not written from this recipe (run write-data.ts)", file=sys.stderr)
        return 2
    with open(os.path.join(data_dir, "vocab.json")) as f:
        used_ids = json.load(f)
    config = recipe["config"]
    compact = np.full(config["vocab_size"], len(used_ids), dtype=np.int64)
    compact[used_ids] = np.arange(len(used_ids))
    train = load_examples(os.path.join(data_dir, "train.jsonl"), compact)
    held = load_examples(os.path.join(data_dir, "held-out.jsonl"), compact)
    pad = len(used_ids)  # the shared unused row: right padding, never attended by a kept position

    model = TinyGptOss(config, used_ids, gen)
    decay = [p for name, p in model.named_parameters() if p.dim() >= 2 and "embed" not in name]
    rest = [p for name, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in name)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=t["lr"], betas=(0.9, 0.95), eps=1e-8, foreach=False,
    )
    warmup, floor = t["warmup_steps"], t["lr_floor"]

    def lr_at(step: int) -> float:
        if step < warmup:
            return t["lr"] * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return t["lr"] * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

    stream = batches(train, t["tokens_per_batch"], rng, t.get("oversample", {}))
    started = time.time()
    seen = 0
    for step in range(steps):
        members = next(stream)
        idx, keep, targets, completion, unlearn = collate(train, members, pad)
        # A few prompt tokens read as an unused id, so the shared input row means "some other token".
        if t["unused_input_rate"] > 0:
            prompt_pos = torch.zeros_like(keep)
            prompt_pos[keep] = ~completion
            swap = (torch.rand(idx.shape, generator=gen) < t["unused_input_rate"]) & prompt_pos
            swap[:, 0] = False
            idx = torch.where(swap, torch.full_like(idx, pad), idx)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        h, balance = model(idx, keep)
        ce = F.cross_entropy(model.logits(h), targets, reduction="none")
        # The completion is what the model must say; the prompt, weighted down, is more text to learn
        # copying from (histories repeat the questions' values in calls, results and answers).
        prompt_weight = t["prompt_loss_weight"]
        if t.get("skip_unlearnable", False):
            prompt_weight = torch.where(unlearn, 0.0, prompt_weight)
        weight = torch.where(completion, 1.0, prompt_weight)
        loss = ce[completion].mean()
        total = (weight * ce).sum() / weight.sum() + t["balance_coef"] * balance
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["clip"], foreach=False)
        opt.step()
        seen += len(members)
        if step % 50 == 0 or step == steps - 1:
            print(
                f"step {step:5d}  loss {loss.item():.4f}  balance {balance.item():.3f}  lr {lr_at(step):.2e}  "
                f"examples {seen}  {time.time() - started:.0f} s",
                flush=True,
            )
        if t["eval_every"] and step > 0 and step % t["eval_every"] == 0:
            report(exact_completions(model, held, t["tokens_per_batch"], pad), "held-out exact")

    report(exact_completions(model, held, t["tokens_per_batch"], pad), "held-out exact (final)")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, DELTA_FILE)
    metadata = {
        "format": "amnesia-tiny-chat-delta/1",
        "recipe_sha256": sha256(os.path.join(HERE, "recipe.json")),
        "data_sha256": summary["files"]["train.jsonl"]["sha256"],
        "steps": str(steps),
        "torch": torch.__version__,
    }
    export_delta(model, used_ids, path, metadata)
    print(f"{path}: {os.path.getsize(path)} bytes, sha256 {sha256(path)}, {time.time() - started:.0f} s")
    return 0


def report(per_kind: dict, label: str) -> None:
    right = sum(v[0] for v in per_kind.values())
    total = sum(v[1] for v in per_kind.values())
    kinds = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(per_kind.items()))
    print(f"{label}: {right}/{total} ({kinds})", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
