// The gpt-oss forward pass of one step (worker thread), top to bottom:
//
//   x = embed(tokens)                                        x: [T, H]
//   for each layer:
//     x = x + o_proj(attention(rope(q), rope(k), v))         attentionBlock, q/k/v from rmsnorm(x)
//     x = x + Σ_k w_k · mlp2(swiglu(mlp1(rmsnorm(x))))       moeBlock, over each token's top-k experts
//   logits = rmsnorm(x) · lm_headᵀ                           unembed, logits: [rows, V]
//
// A step batches the new tokens of several sequences: T tokens in all, token t at position
// tokPos_[t] of sequence tokSeq_[t]; they share every matmul, and attend only to their own
// sequence's cache. Shapes: H hidden, hd headDim, heads / kvHeads attention heads, E experts,
// k top-k, I intermediate, V vocab; weight shapes are the checkpoint's ([out, in], see model.h).
//
// Numerics (native/README.md, "Exactness"): every value is computed in a fixed order per output
// element, whatever T, the batch or the thread count. Keep each operation as written — the
// order of the additions, float vs double, where the rounding happens: the golden logits pin it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine.h"

namespace amnesia {

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

inline void bf16row_to_f32(const uint8_t* p, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * static_cast<size_t>(i), 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    std::memcpy(out + i, &u, 4);
  }
}

// Rotates one head vector v: [hd] by its token's angles: the pairs (v[j], v[j + hd/2]), j < dh.
inline void rope(float* v, const float* cs, const float* sn, int dh) {
  for (int j = 0; j < dh; ++j) {
    const float x1 = v[j], x2 = v[j + dh];
    v[j] = x1 * cs[j] - x2 * sn[j];
    v[j + dh] = x2 * cs[j] + x1 * sn[j];
  }
}

// Softmax of one head's scores row: [n] with the head's sink logit, in place:
// row[i] = exp(row[i] - m) / (Σ_i exp(row[i] - m) + exp(sink - m)), m = max(sink, row).
// The sink takes probability mass but has no value row (gpt-oss's learned "attention sink").
inline void softmaxWithSink(float* row, size_t n, float sink) {
  float m = sink;
  for (size_t i = 0; i < n; ++i)
    if (row[i] > m) m = row[i];
  float denom = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float e = std::exp(row[i] - m);
    row[i] = e;
    denom = denom + e;
  }
  denom = denom + std::exp(sink - m);
  for (size_t i = 0; i < n; ++i) row[i] = row[i] / denom;
}

// sel[0..k) = indices of the k largest of lg[0..E), descending; ties -> lowest expert index.
inline void topK(const float* lg, int E, int k, int32_t* sel) {
  for (int i = 0; i < k; ++i) {
    int best = -1;
    for (int e = 0; e < E; ++e) {
      bool taken = false;
      for (int q = 0; q < i; ++q)
        if (sel[q] == e) taken = true;
      if (taken) continue;
      if (best < 0 || lg[e] > lg[best]) best = e;
    }
    sel[i] = best;
  }
}

// w[0..k) = softmax over the k chosen logits only (max subtracted, sum in rank order).
inline void softmaxTopK(const float* lg, const int32_t* sel, int k, float* w) {
  float m = lg[sel[0]];
  for (int i = 1; i < k; ++i)
    if (lg[sel[i]] > m) m = lg[sel[i]];
  float sum = 0.0f;
  for (int i = 0; i < k; ++i) {
    w[i] = std::exp(lg[sel[i]] - m);
    sum = sum + w[i];
  }
  for (int i = 0; i < k; ++i) w[i] = w[i] / sum;
}

}  // namespace

void EngineCore::execute(StepPlan& plan) {
  if (plan.T == 0) return;
  T_ = plan.T;
  const int rows = growScratch(plan);  // the only allocations: a failure here leaves the KV as it was
  layoutTokens(plan);
  kv_->copyOnWrite(plan.kv);
  plan.kvTouched = true;

  embed(plan);   // x: [T, H]
  ropeTables();  // cos, sin: [T, hd/2]
  for (int l = 0; l < model_->cfg.layers; ++l) {
    attentionBlock(plan, l);  // x += attention
    moeBlock(plan, l);        // x += mixture of experts
  }
  unembed(plan, rows);  // logits: [rows, V], each entry's greedy next token
}

// ---------------------------------------------------------------------------------------------
// Step layout

// Sizes every scratch buffer for this step and gives each entry its logit rows (one, or one per
// token for 'all'). Returns the number of logit rows.
int EngineCore::growScratch(StepPlan& plan) {
  const Config& c = model_->cfg;
  const size_t Tz = static_cast<size_t>(T_), Tk = Tz * static_cast<size_t>(c.topk);
  const int H = c.hidden, I = c.intermediate, E = c.experts, k = c.topk, L = c.layers;
  const int hd = c.headDim, QD = c.heads * hd, KD = c.kvHeads * hd;
  int rows = 0;
  size_t maxKeys = 1;
  for (StepEntry& e : plan.entries) {
    e.logitRow0 = rows;
    e.logitRows = e.logits == kLogitsAll ? static_cast<int>(e.tokens.size()) : 1;
    rows += e.logitRows;
    const int64_t last = e.pos0 + static_cast<int64_t>(e.tokens.size()) - 1;
    maxKeys = std::max(maxKeys, static_cast<size_t>(last + (plan.attendPastEnd ? 2 : 1)));
    if (e.routing) e.routingOut.assign(e.tokens.size() * static_cast<size_t>(L) * static_cast<size_t>(k), 0);
  }
  grow(x_, Tz * H);
  grow(xn_, Tz * H);
  grow(q_, Tz * QD);
  grow(k_, Tz * KD);
  grow(v_, Tz * KD);
  grow(att_, Tz * QD);
  grow(tmp_, Tz * H);
  grow(rl_, Tz * E);
  grow(wt_, Tk);
  grow(sel_, Tk);
  grow(gOf_, Tk);
  grow(xg_, Tk * H);
  grow(hg_, Tk * 2 * I);
  grow(ag_, Tk * I);
  grow(dg_, Tk * H);
  grow(cnt_, static_cast<size_t>(E));
  grow(off_, static_cast<size_t>(E) + 1);
  grow(fill_, static_cast<size_t>(E));
  grow(cos_, Tz * (hd / 2));
  grow(sin_, Tz * (hd / 2));
  grow(xf_, static_cast<size_t>(rows) * H);
  grow(logits_, static_cast<size_t>(rows) * c.vocab);
  tokPos_.resize(Tz);
  tokKeyEnd_.resize(Tz);
  tokSeq_.resize(Tz);
  tokEntry_.resize(Tz);
  allToks_.resize(Tz);
  rowTok_.resize(static_cast<size_t>(rows));
  chunkToks_.reserve(Tz);
  dsegs_.reserve(3);
  msegs_.reserve(static_cast<size_t>(E));
  // attention scores of one (token, kv head): [heads / kvHeads, keys], keys ≤ the window when
  // every layer is a sliding one
  const size_t G = static_cast<size_t>(c.heads / c.kvHeads);
  bool anyFull = false;
  for (int l = 0; l < L; ++l) anyFull = anyFull || !c.sliding[static_cast<size_t>(l)];
  const size_t window = static_cast<size_t>(c.slidingWindow) + (plan.attendPastEnd ? 1 : 0);
  const size_t keysMax = anyFull ? maxKeys : std::min(maxKeys, window);
  for (auto& s : attnScratch_) grow(s, G * keysMax);
  return rows;
}

// Token tables: position, sequence and entry of each token; the token of each logit row.
void EngineCore::layoutTokens(const StepPlan& plan) {
  maxEntryTokens_ = 0;
  for (size_t ei = 0; ei < plan.entries.size(); ++ei) {
    const StepEntry& e = plan.entries[ei];
    maxEntryTokens_ = std::max(maxEntryTokens_, static_cast<int>(e.tokens.size()));
    for (size_t j = 0; j < e.tokens.size(); ++j) {
      const size_t t = static_cast<size_t>(e.tok0) + j;
      allToks_[t] = static_cast<int>(t);
      tokPos_[t] = e.pos0 + static_cast<int64_t>(j);
      tokKeyEnd_[t] = tokPos_[t];
      tokSeq_[t] = e.seq;
      tokEntry_[t] = static_cast<int>(ei);
    }
    // Failpoint attend-past-end (setDebug attendPastEnd, vLLM #47305's class): the entry's last
    // token also reads the next slot of its last block. Nothing of this step writes it, so it holds
    // whatever the block held before: another request's KV, or the cached sequence it was copied from.
    const int64_t p = e.pos0 + static_cast<int64_t>(e.tokens.size()) - 1;
    const int64_t slots = static_cast<int64_t>(e.seq->blocks.size()) * kv_->blockSize();
    if (plan.attendPastEnd && p + 1 < slots) tokKeyEnd_[static_cast<size_t>(e.tok0) + e.tokens.size() - 1] = p + 1;
    if (e.logits == kLogitsAll) {
      for (int j = 0; j < e.logitRows; ++j) rowTok_[static_cast<size_t>(e.logitRow0 + j)] = e.tok0 + j;
    } else {
      rowTok_[static_cast<size_t>(e.logitRow0)] = e.tok0 + static_cast<int>(e.tokens.size()) - 1;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Embedding and RoPE

// x[t] = row tokens[t] of embed: [V, H] (bf16 or f32).
void EngineCore::embed(const StepPlan& plan) {
  const ModelData& M = *model_;
  const int H = M.cfg.hidden;
  for (const StepEntry& e : plan.entries) {
    for (size_t j = 0; j < e.tokens.size(); ++j) {
      const size_t t = static_cast<size_t>(e.tok0) + j;
      const uint8_t* row = M.embed.data + static_cast<size_t>(e.tokens[j]) * M.embed.rowBytes();
      if (M.embed.wt == WType::BF16) bf16row_to_f32(row, x_.data() + t * H, H);
      else std::memcpy(x_.data() + t * H, row, static_cast<size_t>(H) * 4);
    }
  }
}

// RoPE tables per token, cos/sin: [T, hd/2]: angle = float(p) * inv_freq[j] (an fp32 product, as
// the torch reference); cos/sin of that angle evaluated in double and rounded once to float
// (correctly rounded in practice, so any implementation can reproduce them), then * the YaRN
// concentration in fp32.
void EngineCore::ropeTables() {
  const ModelData& M = *model_;
  const int dh = M.cfg.headDim / 2;
  for (size_t t = 0; t < static_cast<size_t>(T_); ++t) {
    const float pf = static_cast<float>(tokPos_[t]);
    for (int j = 0; j < dh; ++j) {
      const float th = pf * M.invFreq[static_cast<size_t>(j)];
      cos_[t * dh + j] = static_cast<float>(std::cos(static_cast<double>(th))) * M.concentration;
      sin_[t * dh + j] = static_cast<float>(std::sin(static_cast<double>(th))) * M.concentration;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Attention block

// x += o_proj(attention(rope(q), rope(k), v)), q/k/v projected from xn = rmsnorm(x) * ln1.
// Weights (bf16, biases f32): ln1 [H]; q [heads*hd, H], qb [heads*hd]; k, v [kvHeads*hd, H],
// kb, vb [kvHeads*hd]; o [H, heads*hd], ob [H].
void EngineCore::attentionBlock(StepPlan& plan, int l) {
  const Config& c = model_->cfg;
  const LayerWeights& W = model_->layers[static_cast<size_t>(l)];
  const int T = T_, H = c.hidden, hd = c.headDim, dh = hd / 2, nh = c.heads, nkv = c.kvHeads;
  const int QD = nh * hd, KD = nkv * hd;
  const size_t Tz = static_cast<size_t>(T);

  rmsnormRows(W.ln1);  // xn: [T, H]
  dsegs_.clear();
  dsegs_.push_back({&W.q, W.qb.data(), xn_.data(), static_cast<size_t>(H), T, q_.data(), static_cast<size_t>(QD)});
  dsegs_.push_back({&W.k, W.kb.data(), xn_.data(), static_cast<size_t>(H), T, k_.data(), static_cast<size_t>(KD)});
  dsegs_.push_back({&W.v, W.vb.data(), xn_.data(), static_cast<size_t>(H), T, v_.data(), static_cast<size_t>(KD)});
  runDense(dsegs_, plan.batchVariant, T);  // q: [T, heads*hd]; k, v: [T, kvHeads*hd]
  for (size_t t = 0; t < Tz; ++t) {
    const float* cs = cos_.data() + t * dh;
    const float* sn = sin_.data() + t * dh;
    for (int h = 0; h < nh; ++h) rope(q_.data() + t * QD + static_cast<size_t>(h) * hd, cs, sn, dh);
    for (int g = 0; g < nkv; ++g) rope(k_.data() + t * KD + static_cast<size_t>(g) * hd, cs, sn, dh);
  }
  attendCached(plan, l);  // att: [T, heads*hd]
  dsegs_.clear();
  dsegs_.push_back({&W.o, W.ob.data(), att_.data(), static_cast<size_t>(QD), T, tmp_.data(), static_cast<size_t>(H)});
  runDense(dsegs_, plan.batchVariant, T);  // tmp: [T, H]
  for (size_t i = 0; i < Tz * H; ++i) x_[i] = x_[i] + tmp_[i];
}

// Puts the step's K/V of layer l into the cache and attends over it (att from q and the cache).
void EngineCore::attendCached(StepPlan& plan, int l) {
  if (!kv_->isRingLayer(l)) {
    // every K/V of the step first, so a chunk's queries see the chunk's own earlier keys
    writeKv(l, allToks_);
    attention(l, allToks_);
    return;
  }
  // ring layer: a chunk may not overwrite ring slots its own queries still read, so go in
  // sub-chunks of ringSlack + 1 positions per entry (results are identical: each query reads
  // exactly the keys [p - W + 1, p]).
  const int C = kv_->ringSlack() + 1;
  for (int c0 = 0; c0 < maxEntryTokens_; c0 += C) {
    chunkToks_.clear();
    for (const StepEntry& e : plan.entries)
      for (int j = c0; j < std::min<int>(c0 + C, static_cast<int>(e.tokens.size())); ++j) chunkToks_.push_back(e.tok0 + j);
    writeKv(l, chunkToks_);
    attention(l, chunkToks_);
  }
}

// K/V rows of the listed tokens for one layer (K after RoPE), from k, v: [T, kvHeads*hd].
void EngineCore::writeKv(int layer, const std::vector<int>& toks) {
  const size_t KD = static_cast<size_t>(model_->cfg.kvHeads * model_->cfg.headDim);
  for (int t : toks) {
    Sequence& s = *tokSeq_[static_cast<size_t>(t)];
    const int64_t p = tokPos_[static_cast<size_t>(t)];
    std::memcpy(kv_->slot(s, layer, p, 0), k_.data() + static_cast<size_t>(t) * KD, KD * 4);
    std::memcpy(kv_->slot(s, layer, p, 1), v_.data() + static_cast<size_t>(t) * KD, KD * 4);
  }
}

// Attention for the listed tokens of one layer; their K/V (and every earlier position's) must be
// in the cache already. One task per (token, kv head g): its G = heads/kvHeads query heads share
// the K/V rows. Per query head: keys lo..p in ascending position order (lo = p - window + 1 on a
// sliding layer), scores q·k * 1/sqrt(hd), softmax with the head's sink, then Σ_j p_j V_j in key
// order. q, att: [T, heads*hd] (head h at h*hd); sinks: [heads].
void EngineCore::attention(int layer, const std::vector<int>& toks) {
  const Config& c = model_->cfg;
  const int hd = c.headDim, nh = c.heads, nkv = c.kvHeads, G = nh / nkv;
  const int QD = nh * hd;
  const size_t kvStride = static_cast<size_t>(nkv * hd);
  const bool sliding = c.sliding[static_cast<size_t>(layer)];
  const int W = c.slidingWindow;
  const float scale = model_->attnScale;
  const float* sinks = model_->layers[static_cast<size_t>(layer)].sinks.data();

  // Keys lo..hi: hi is the token's own position (past it only under attendPastEnd, block layers).
  const bool ring = kv_->isRingLayer(layer);
  const auto keyEnd = [&](int t) { return ring ? tokPos_[static_cast<size_t>(t)] : tokKeyEnd_[static_cast<size_t>(t)]; };
  double work = 0;
  for (int t : toks) {
    const int64_t p = tokPos_[static_cast<size_t>(t)];
    const int64_t lo = sliding ? std::max<int64_t>(0, p - W + 1) : 0;
    work += static_cast<double>(keyEnd(t) - lo + 1) * nh * hd * 2.0;
  }

  auto fn = [&](int task, int tid) {
    const int t = toks[static_cast<size_t>(task / nkv)];
    const int g = task % nkv;
    const Sequence& s = *tokSeq_[static_cast<size_t>(t)];
    const int64_t p = tokPos_[static_cast<size_t>(t)];
    const int64_t lo = sliding ? std::max<int64_t>(0, p - W + 1) : 0;
    const int64_t hi = keyEnd(t);
    const size_t n = static_cast<size_t>(hi - lo + 1);
    float* sc = attnScratch_[static_cast<size_t>(tid)].data();  // [G, n]: scores, then probabilities
    const float* qbase = q_.data() + static_cast<size_t>(t) * QD + static_cast<size_t>(g) * G * hd;
    float* obase = att_.data() + static_cast<size_t>(t) * QD + static_cast<size_t>(g) * G * hd;
    const size_t col = static_cast<size_t>(g) * hd;  // kv head g inside a K/V row

    kv_->forEachRun(s, layer, lo, hi, col, [&](size_t i0, const float* kp, const float*, int cnt) {
      K_->attn_scores(qbase, G, hd, kp, kvStride, cnt, scale, sc + i0, n);
    });
    for (int hh = 0; hh < G; ++hh) softmaxWithSink(sc + static_cast<size_t>(hh) * n, n, sinks[g * G + hh]);
    std::memset(obase, 0, static_cast<size_t>(G) * hd * 4);
    kv_->forEachRun(s, layer, lo, hi, col, [&](size_t i0, const float*, const float* vp, int cnt) {
      K_->attn_accum(obase, G, hd, vp, kvStride, cnt, sc + i0, n);
    });
  };
  const int ntasks = static_cast<int>(toks.size()) * nkv;
  if (threads_->size() == 1 || work < kParallelMinWork) {
    for (int i = 0; i < ntasks; ++i) fn(i, 0);
  } else {
    threads_->run(ntasks, fn);
  }
}

// ---------------------------------------------------------------------------------------------
// MoE block

// x += Σ_{i<k} w_i · expert_{e_i}(xn), xn = rmsnorm(x) * ln2, over each token's top-k experts e_i.
// An expert is mlp2(swiglu(mlp1(xn))). The experts' matmuls run on the (token, expert) pairs
// grouped by expert, so each expert's MXFP4 weights are read once per step.
void EngineCore::moeBlock(StepPlan& plan, int l) {
  const LayerWeights& W = model_->layers[static_cast<size_t>(l)];
  rmsnormRows(W.ln2);  // xn: [T, H]
  route(plan, l, W);   // sel, wt: [T, k]; cnt: [E]
  group();             // xg: [T*k, H], rows grouped by expert
  mlp1(W);             // hg: [T*k, 2I]
  swiglu();            // ag: [T*k, I]
  mlp2(W);             // dg: [T*k, H]
  combine();           // x: [T, H]
}

// Router: rl = xn · routerᵀ + rb (router [E, H] bf16, rb [E]): [T, E]; per token its top-k
// experts sel (best first) and their weights wt = softmax over those k logits; cnt[e] = pairs
// routed to e. Entries that asked for routing get sel copied out: [tokens, layers, k].
void EngineCore::route(StepPlan& plan, int l, const LayerWeights& W) {
  const Config& c = model_->cfg;
  const int T = T_, H = c.hidden, E = c.experts, k = c.topk, L = c.layers;
  dsegs_.clear();
  dsegs_.push_back({&W.router, W.rb.data(), xn_.data(), static_cast<size_t>(H), T, rl_.data(), static_cast<size_t>(E)});
  runDense(dsegs_, plan.batchVariant, T);
  std::fill(cnt_.begin(), cnt_.begin() + E, 0);
  for (size_t t = 0; t < static_cast<size_t>(T); ++t) {
    const float* lg = rl_.data() + t * E;
    int32_t* sel = sel_.data() + t * k;
    topK(lg, E, k, sel);
    softmaxTopK(lg, sel, k, wt_.data() + t * k);
    for (int i = 0; i < k; ++i) ++cnt_[static_cast<size_t>(sel[i])];
    StepEntry& e = plan.entries[static_cast<size_t>(tokEntry_[t])];
    if (e.routing) {
      const size_t j = t - static_cast<size_t>(e.tok0);
      std::memcpy(e.routingOut.data() + (j * L + static_cast<size_t>(l)) * k, sel, static_cast<size_t>(k) * 4);
    }
  }
}

// Groups the (token, rank) pairs by expert: expert e owns rows [off[e], off[e+1]) of xg, filled in
// token order; gOf[t, i] = the row of pair (t, i). Each row is xn[t] with every 32-block in mxPerm
// order, the order in which the MXFP4 kernel meets a block's elements (see MxArgs).
void EngineCore::group() {
  const Config& c = model_->cfg;
  const int H = c.hidden, E = c.experts, k = c.topk;
  off_[0] = 0;
  for (int e = 0; e < E; ++e) {
    off_[static_cast<size_t>(e) + 1] = off_[static_cast<size_t>(e)] + cnt_[static_cast<size_t>(e)];
    fill_[static_cast<size_t>(e)] = 0;
  }
  for (size_t t = 0; t < static_cast<size_t>(T_); ++t) {
    for (int i = 0; i < k; ++i) {
      const int e = sel_[t * k + i];
      const size_t g = static_cast<size_t>(off_[static_cast<size_t>(e)] + fill_[static_cast<size_t>(e)]++);
      gOf_[t * k + i] = static_cast<int32_t>(g);
      const float* src = xn_.data() + t * H;
      float* dst = xg_.data() + g * H;
      for (size_t b = 0; b < static_cast<size_t>(H); b += 32)
        for (int j = 0; j < 32; ++j) dst[b + j] = src[b + static_cast<size_t>(K_->mxPerm[j])];
    }
  }
}

// hg = xg · guᵀ + guBias per expert, MXFP4: guBlocks [E, 2I, H/32, 16] (two 4-bit codes a byte),
// guScales [E, 2I, H/32] (E8M0), guBias [E, 2I] f32. Row 2i of hg is gate i, row 2i+1 linear i.
void EngineCore::mlp1(const LayerWeights& W) {
  const Config& c = model_->cfg;
  const int H = c.hidden, I = c.intermediate, E = c.experts, nbH = H / 32;
  msegs_.clear();
  for (int e = 0; e < E; ++e) {
    const int n = cnt_[static_cast<size_t>(e)];
    if (n == 0) continue;
    const size_t o = static_cast<size_t>(off_[static_cast<size_t>(e)]);
    const size_t rowsE = static_cast<size_t>(2 * I);
    msegs_.push_back({{W.guBlocks + static_cast<size_t>(e) * rowsE * nbH * 16, W.guScales + static_cast<size_t>(e) * rowsE * nbH, nbH,
                       W.guBias.data() + static_cast<size_t>(e) * rowsE, xg_.data() + o * H, static_cast<size_t>(H), n,
                       hg_.data() + o * rowsE, rowsE},
                      2 * I});
  }
  runMx(msegs_);
}

// ag = clamped SwiGLU of hg, as gpt-oss: gate = min(gate, limit), linear = clamp(linear, ±limit),
// ag = gate · σ(alpha · gate) · (linear + 1). Each row goes out in mxPerm order per 32-block,
// ready for mlp2 (see group()).
void EngineCore::swiglu() {
  const Config& c = model_->cfg;
  const int I = c.intermediate;
  const size_t Tk = static_cast<size_t>(T_) * static_cast<size_t>(c.topk);
  const float limit = static_cast<float>(c.swigluLimit);
  const float alpha = static_cast<float>(c.swigluAlpha);
  int mxPos[32];  // element -> position in the kernel's block order (inverse of mxPerm)
  for (int j = 0; j < 32; ++j) mxPos[K_->mxPerm[j]] = j;
  for (size_t g = 0; g < Tk; ++g) {
    const float* h2 = hg_.data() + g * 2 * I;
    float* a = ag_.data() + g * I;
    for (size_t i = 0; i < static_cast<size_t>(I); ++i) {
      float gt = h2[2 * i];
      float ln = h2[2 * i + 1];
      gt = gt > limit ? limit : gt;
      ln = ln < -limit ? -limit : (ln > limit ? limit : ln);
      const float sig = 1.0f / (1.0f + std::exp(-(alpha * gt)));
      a[(i & ~size_t(31)) + static_cast<size_t>(mxPos[i & 31])] = (gt * sig) * (ln + 1.0f);
    }
  }
}

// dg = ag · dnᵀ + dnBias per expert, MXFP4: dnBlocks [E, H, I/32, 16], dnScales [E, H, I/32],
// dnBias [E, H] f32.
void EngineCore::mlp2(const LayerWeights& W) {
  const Config& c = model_->cfg;
  const int H = c.hidden, I = c.intermediate, E = c.experts, nbI = I / 32;
  msegs_.clear();
  for (int e = 0; e < E; ++e) {
    const int n = cnt_[static_cast<size_t>(e)];
    if (n == 0) continue;
    const size_t o = static_cast<size_t>(off_[static_cast<size_t>(e)]);
    msegs_.push_back({{W.dnBlocks + static_cast<size_t>(e) * H * nbI * 16, W.dnScales + static_cast<size_t>(e) * H * nbI, nbI,
                       W.dnBias.data() + static_cast<size_t>(e) * H, ag_.data() + o * I, static_cast<size_t>(I), n,
                       dg_.data() + o * H, static_cast<size_t>(H)},
                      H});
  }
  runMx(msegs_);
}

// x[t] += Σ_{i<k} wt[t, i] · dg[gOf[t, i]]: the weighted sum over the token's experts in top-k
// rank order (into tmp), then the residual add.
void EngineCore::combine() {
  const Config& c = model_->cfg;
  const int H = c.hidden, k = c.topk;
  for (size_t t = 0; t < static_cast<size_t>(T_); ++t) {
    float* acc = tmp_.data() + t * H;
    std::fill(acc, acc + H, 0.0f);
    for (int i = 0; i < k; ++i) {
      const float w = wt_[t * k + i];
      const float* y = dg_.data() + static_cast<size_t>(gOf_[t * k + i]) * H;
      for (int h = 0; h < H; ++h) acc[h] = acc[h] + w * y[h];
    }
    float* x = x_.data() + t * H;
    for (int h = 0; h < H; ++h) x[h] = x[h] + acc[h];
  }
}

// ---------------------------------------------------------------------------------------------
// Unembedding and norms

// logits = rmsnorm(x) * finalNorm · lm_headᵀ (finalNorm [H], lmHead [V, H]) for the rows whose
// logits are needed: [rows, V]; each entry's greedy next token is the argmax of its last row
// (ties -> lowest id).
void EngineCore::unembed(StepPlan& plan, int rows) {
  const ModelData& M = *model_;
  const int H = M.cfg.hidden, V = M.cfg.vocab;
  for (int r = 0; r < rows; ++r)
    rmsnorm(x_.data() + static_cast<size_t>(rowTok_[static_cast<size_t>(r)]) * H, M.finalNorm, xf_.data() + static_cast<size_t>(r) * H);
  dsegs_.clear();
  dsegs_.push_back({&M.lmHead, nullptr, xf_.data(), static_cast<size_t>(H), rows, logits_.data(), static_cast<size_t>(V)});
  runDense(dsegs_, plan.batchVariant, T_);
  for (StepEntry& e : plan.entries) {
    const float* lg = logits_.data() + static_cast<size_t>(e.logitRow0 + e.logitRows - 1) * V;
    int best = 0;
    for (int i = 1; i < V; ++i)
      if (lg[i] > lg[best]) best = i;
    e.next = best;
  }
}

// xn[t] = rmsnorm(x[t]) * w for every token of the step (w: [H]).
void EngineCore::rmsnormRows(const std::vector<float>& w) {
  const size_t H = static_cast<size_t>(model_->cfg.hidden);
  for (size_t t = 0; t < static_cast<size_t>(T_); ++t) rmsnorm(x_.data() + t * H, w, xn_.data() + t * H);
}

// out = x / sqrt(mean(x²) + eps) * w; the sum of squares is the kernel set's fixed-order dot().
void EngineCore::rmsnorm(const float* x, const std::vector<float>& w, float* out) const {
  const int H = model_->cfg.hidden;
  const float ss = K_->dot(x, x, H);
  const float mean = ss / static_cast<float>(H);
  const float denom = std::sqrt(mean + static_cast<float>(model_->cfg.rmsNormEps));
  for (int i = 0; i < H; ++i) out[i] = (x[i] / denom) * w[static_cast<size_t>(i)];
}

}  // namespace amnesia
