// The engine: KV block pool, sequences, and the batched gpt-oss forward pass.
//
// Threading model: all public methods except execute() run on the JS thread. step() is split into
// prepare() (JS thread: validation and KV allocation — throws before changing anything),
// execute() (worker thread: the forward pass; touches only the plan, the scratch buffers and the KV
// slots the plan owns) and commit()/rollback() (JS thread). While a step is in flight the
// structural methods (fork/truncate/free/close of sequences) throw "engine busy".
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels.h"
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

struct KvStats {
  int blockSize;
  int64_t blocksTotal;
  int64_t blocksFree;
  double blockBytes;
};

struct Sequence {
  int64_t len = 0;
  std::vector<int32_t> blocks;  // block table: ceil(len / blockSize) entries
  std::vector<float> ring;      // ring mode: [slidingLayer][K|V][R][kvHeads*headDim]
  int64_t ringValidLo = 0;      // ring mode: lowest position whose ring slot is still valid
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
  // KV bookkeeping for rollback
  struct TableBackup {
    Sequence* seq;
    std::vector<int32_t> blocks;
  };
  std::vector<TableBackup> backups;
  std::vector<int32_t> newBlocks;
  std::vector<std::pair<int32_t, int32_t>> cow;  // (shared src, private dst): copy before compute
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
  // Negative controls (setDebug kvTrimNoop / freeSharedBlocks); see native-api.ts and engine.cpp.
  void setTrimNoop(bool on) { trimNoop_ = on; }
  void setFreeShared(bool on) { freeShared_ = on; }
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

  Sequence& getSeq(int64_t id);
  const Sequence& getSeq(int64_t id) const;
  void checkUsable(bool structural) const;
  int32_t allocBlock();
  void releaseBlock(int32_t b);
  void pushFree(int32_t b);
  bool ringLayer(int layer) const { return ring_ && model_->cfg.sliding[static_cast<size_t>(layer)]; }
  float* kvSlot(Sequence& s, int layer, int64_t pos, int kv);
  void releaseResources();

  void runDense(const std::vector<DenseSeg>& segs, bool variant, int stepT);
  void runMx(const std::vector<MxSeg>& segs);
  void rmsnorm(const float* x, const std::vector<float>& w, float* out) const;
  void attention(StepPlan& plan, int layer, const std::vector<int>& toks);
  void writeKv(StepPlan& plan, int layer, const std::vector<int>& toks);

  std::shared_ptr<const ModelData> model_;
  const KernelSet* K_;
  int bs_;
  int64_t nBlocks_;
  bool ring_;
  int ringSlack_;
  int ringLen_ = 0;  // slidingWindow + ringSlack
  int kvStride_;     // kvHeads * headDim
  std::vector<int> blockLayer_;  // layer -> index inside a block (-1: ring layer)
  std::vector<int> ringIndex_;   // layer -> ring index (-1: block layer)
  int nBlockLayers_ = 0;
  int nRingLayers_ = 0;
  size_t blockFloats_ = 0;
  std::unique_ptr<float[]> pool_;
  // Block bookkeeping. refcnt_[b] is always the number of block-table entries (over all sequences)
  // that hold b; isFree_[b] is 1 exactly when b is in freeList_ (so no block is ever listed twice).
  // Normally isFree_[b] implies refcnt_[b] == 0; only the freeSharedBlocks negative control makes a
  // block free while still referenced (see freeSequence).
  std::vector<int32_t> refcnt_;
  std::vector<uint8_t> isFree_;
  std::vector<int32_t> freeList_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> seqs_;
  int64_t nextSeqId_ = 1;
  std::unique_ptr<ThreadPool> threads_;
  bool closed_ = false;
  bool busy_ = false;
  bool batchVariant_ = false;
  bool trimNoop_ = false;    // negative control: truncateSequence keeps everything (exo #1362)
  bool freeShared_ = false;  // negative control: freeSequence frees blocks other sequences still use

  // scratch (grown as needed, reused across steps)
  std::vector<float> x_, xn_, q_, k_, v_, att_, tmp_, rl_, wt_, xg_, hg_, ag_, dg_, cos_, sin_, xf_, logits_;
  std::vector<int32_t> sel_, gOf_, cnt_, off_, fill_;
  std::vector<int64_t> tokPos_;
  std::vector<Sequence*> tokSeq_;
  std::vector<int> tokEntry_;
  std::vector<std::vector<float>> attnScratch_;
};

}  // namespace amnesia
