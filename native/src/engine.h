// The engine: the batched gpt-oss forward pass over a KV block pool (kv_pool.h).
//
// Threading model: all public methods except execute() run on the JS thread. step() is split into
// prepare() (JS thread: validation and KV allocation — throws before changing anything),
// execute() (worker thread: the forward pass; touches only the plan, the scratch buffers and the KV
// slots the plan owns) and commit()/rollback() (JS thread). While a step is in flight the
// structural methods (fork/truncate/free/close of sequences) throw "engine busy".
//
// Files: engine.cpp (lifecycle, sequences, step phases), forward.cpp (execute: the model, block by
// block), matmul.cpp (the threaded matmul drivers), kv_pool.{h,cpp} (blocks, sequences, rings).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "kv_pool.h"
#include "model.h"
#include "threadpool.h"

namespace amnesia {

struct EngineOptions {
  int blockSize = 16;
  int64_t blocks = 0;
  bool ring = false;
  int ringSlack = -1;  // -1: default (blockSize)
  int threads = 0;     // 0: hardware concurrency
};

enum LogitsMode { kLogitsNone = 0, kLogitsLast = 1, kLogitsAll = 2 };

struct StepEntry {
  int64_t seqId = 0;
  std::vector<int32_t> tokens;
  int logits = kLogitsNone;
  bool routing = false;
  // filled by prepare/execute
  Sequence* seq = nullptr;
  int64_t pos0 = 0;
  int tok0 = 0;       // index of the first token in the batch
  int logitRow0 = 0;  // first row in the step's logits matrix
  int logitRows = 0;  // rows this entry owns there (1, or tokens.size() for 'all')
  int next = 0;
  std::vector<int32_t> routingOut;  // tokens × layers × k
};

struct StepPlan {
  std::vector<StepEntry> entries;
  int T = 0;
  bool batchVariant = false;
  bool attendPastEnd = false;  // negative control, see EngineCore::setAttendPastEnd
  KvStep kv;               // the step's KV blocks (one append per entry), for commit or rollback
  bool kvTouched = false;  // execute() started writing K/V
  bool done = false;
};

class EngineCore {
 public:
  EngineCore(std::shared_ptr<const ModelData> model, const EngineOptions& opt);
  ~EngineCore();

  const Config& config() const { return model_->cfg; }
  bool closed() const { return closed_; }
  bool busy() const { return busy_; }

  int64_t createSequence();
  int64_t forkSequence(int64_t id, int64_t length);
  bool truncateSequence(int64_t id, int64_t length);
  int64_t sequenceLength(int64_t id) const;
  void freeSequence(int64_t id);
  KvStats kvStats() const;
  void setBatchVariant(bool on) { batchVariant_ = on; }
  // Negative controls (setDebug kvTrimNoop / freeSharedBlocks); see native-api.ts and kv_pool.cpp.
  void setTrimNoop(bool on) {
    if (kv_) kv_->setTrimNoop(on);
  }
  void setFreeShared(bool on) {
    if (kv_) kv_->setFreeShared(on);
  }
  // Negative control for the attend-past-end failpoint (setDebug attendPastEnd): the last token of
  // each entry also attends to the next slot of its last block, which holds stale KV (forward.cpp,
  // layoutTokens). Turning it on zeroes the pool, so a fresh engine reads zeros there rather than
  // uninitialised memory.
  void setAttendPastEnd(bool on) {
    if (on && !attendPastEnd_ && kv_) kv_->zeroPool();
    attendPastEnd_ = on;
  }
  // Frees the pool and threads (deferred to the end of an in-flight step).
  void close();

  // Step phases (see the file comment).
  std::unique_ptr<StepPlan> prepare(std::vector<StepEntry>&& entries);
  void execute(StepPlan& plan);
  void commit(StepPlan& plan);
  void rollback(StepPlan& plan);
  // Row r of the last step's logits (valid until the next step).
  const float* logitsRow(int r) const { return logits_.data() + static_cast<size_t>(r) * model_->cfg.vocab; }

 private:
  // y[t, :] = x[t, :] · Wᵀ (+ bias) for t < T: one bf16/f32 matmul of a step.
  struct DenseSeg {
    const Mat* W;
    const float* bias;
    const float* x;
    size_t ldx;
    int T;
    float* y;
    size_t ldy;
  };
  // One expert's MXFP4 matmul: the kernel's arguments and how many output rows it has.
  struct MxSeg {
    MxArgs args;
    int rows;
  };

  // Below this many multiply-adds a matmul (or attention) stage runs on the calling thread only.
  static constexpr double kParallelMinWork = 1 << 17;

  void checkUsable(bool structural) const;
  void releaseResources();

  // forward.cpp: execute() and the blocks it calls, in forward order.
  int growScratch(StepPlan& plan);
  void layoutTokens(const StepPlan& plan);
  void embed(const StepPlan& plan);
  void ropeTables();
  void attentionBlock(StepPlan& plan, int layer);
  void attendCached(StepPlan& plan, int layer);
  void writeKv(int layer, const std::vector<int>& toks);
  void attention(int layer, const std::vector<int>& toks);
  void moeBlock(StepPlan& plan, int layer);
  void route(StepPlan& plan, int layer, const LayerWeights& W);
  void group();
  void mlp1(const LayerWeights& W);
  void swiglu();
  void mlp2(const LayerWeights& W);
  void combine();
  void unembed(StepPlan& plan, int rows);
  void rmsnormRows(const std::vector<float>& w);
  void rmsnorm(const float* x, const std::vector<float>& w, float* out) const;

  // matmul.cpp: the threaded drivers (threads split output rows, never a reduction).
  void runDense(const std::vector<DenseSeg>& segs, bool variant, int stepT);
  void runDenseSplitK(const DenseSeg& s, int r0, int r1, int parts);
  void runMx(const std::vector<MxSeg>& segs);

  std::shared_ptr<const ModelData> model_;
  const KernelSet* K_;
  std::unique_ptr<KvPool> kv_;
  std::unique_ptr<ThreadPool> threads_;
  bool closed_ = false;
  bool busy_ = false;
  bool batchVariant_ = false;
  bool attendPastEnd_ = false;

  // Scratch, grown as needed and reused across steps. T = tokens in the step, H = hidden,
  // hd = headDim, Tk = T * topk (token-expert pairs), I = intermediate, rows = logit rows.
  int T_ = 0;                      // tokens in the current step
  std::vector<float> x_;           // [T, H] residual stream
  std::vector<float> xn_;          // [T, H] rmsnorm(x) of the current block
  std::vector<float> q_;           // [T, heads * hd]
  std::vector<float> k_, v_;       // [T, kvHeads * hd] (k after RoPE)
  std::vector<float> att_;         // [T, heads * hd] attention output, before o_proj
  std::vector<float> tmp_;         // [T, H] a block's output, before the residual add
  std::vector<float> cos_, sin_;   // [T, hd / 2] RoPE tables of the tokens' positions
  std::vector<float> rl_;          // [T, experts] router logits
  std::vector<int32_t> sel_;       // [T, topk] chosen experts, best first
  std::vector<float> wt_;          // [T, topk] their softmax weights
  std::vector<int32_t> cnt_;       // [experts] pairs routed to each expert
  std::vector<int32_t> off_;       // [experts + 1] first group row of each expert
  std::vector<int32_t> fill_;      // [experts] group rows filled so far
  std::vector<int32_t> gOf_;       // [T, topk] group row of each (token, rank) pair
  std::vector<float> xg_;          // [Tk, H] xn rows grouped by expert (mxPerm order per block)
  std::vector<float> hg_;          // [Tk, 2I] mlp1 output (gate, linear interleaved)
  std::vector<float> ag_;          // [Tk, I] swiglu output (mxPerm order per block)
  std::vector<float> dg_;          // [Tk, H] mlp2 output
  std::vector<float> xf_;          // [rows, H] final norm of the rows whose logits are needed
  std::vector<float> logits_;      // [rows, vocab]
  std::vector<int64_t> tokPos_;    // [T] position of each token
  std::vector<int64_t> tokKeyEnd_;  // [T] last key position it attends to (its own, but see attendPastEnd)
  std::vector<Sequence*> tokSeq_;  // [T] its sequence
  std::vector<int> tokEntry_;      // [T] its entry in the plan
  std::vector<int> rowTok_;        // [rows] token of each logit row
  std::vector<int> allToks_;       // [T] 0..T-1
  std::vector<int> chunkToks_;     // ring layers: the tokens of one sub-chunk
  int maxEntryTokens_ = 0;         // most tokens any entry has in this step
  std::vector<DenseSeg> dsegs_;    // the matmuls of one stage
  std::vector<MxSeg> msegs_;       // the experts of one MoE matmul
  std::vector<std::vector<float>> attnScratch_;  // per worker: [heads / kvHeads, keys] scores
};

}  // namespace amnesia
