// EngineCore on the JS thread: construction, the sequence API (checks, then the KV pool), and the
// step phases around execute(): prepare (validate, reserve KV blocks), commit and rollback.
// The forward pass itself is forward.cpp.
#include "engine.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace amnesia {

EngineCore::EngineCore(std::shared_ptr<const ModelData> model, const EngineOptions& opt)
    : model_(std::move(model)), K_(kernels()) {
  require(opt.blockSize >= 1 && opt.blockSize <= 65536, "kvBlockSize must be an integer in [1, 65536]");
  require(opt.blocks >= 1 && opt.blocks <= std::numeric_limits<int32_t>::max(),
          "kvBlocks must be an integer in [1, 2^31 - 1]");
  const int ringSlack = opt.ringSlack < 0 ? opt.blockSize : opt.ringSlack;
  require(ringSlack <= (1 << 24), "ringSlack must be an integer in [0, 2^24]");
  int threads = opt.threads;
  if (threads <= 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  require(threads <= 1024, "threads must be an integer in [1, 1024]");
  kv_ = std::make_unique<KvPool>(model_->cfg, opt.blockSize, opt.blocks, opt.ring, ringSlack);
  threads_ = std::make_unique<ThreadPool>(threads);
  attnScratch_.resize(static_cast<size_t>(threads_->size()));
}

EngineCore::~EngineCore() = default;

void EngineCore::releaseResources() {
  threads_.reset();
  kv_.reset();
  std::vector<float>().swap(logits_);
  std::vector<float>().swap(xg_);
  std::vector<float>().swap(hg_);
  std::vector<float>().swap(dg_);
  attnScratch_.clear();
  model_.reset();
}

void EngineCore::close() {
  if (closed_) return;
  closed_ = true;
  if (!busy_) releaseResources();
}

void EngineCore::checkUsable(bool structural) const {
  if (closed_) throw std::runtime_error("engine is closed");
  if (structural && busy_)
    throw std::runtime_error("engine busy: a step is in flight; await it before changing sequences or starting another step");
}

// ---------------------------------------------------------------------------------------------
// Sequences (kv_pool.cpp does the work)

int64_t EngineCore::createSequence() {
  checkUsable(false);
  return kv_->create();
}

int64_t EngineCore::forkSequence(int64_t id, int64_t length) {
  checkUsable(true);
  return kv_->fork(id, length);
}

bool EngineCore::truncateSequence(int64_t id, int64_t length) {
  checkUsable(true);
  return kv_->truncate(id, length);
}

int64_t EngineCore::sequenceLength(int64_t id) const {
  checkUsable(false);
  return kv_->length(id);
}

void EngineCore::freeSequence(int64_t id) {
  checkUsable(true);
  kv_->free(id);
}

KvStats EngineCore::kvStats() const {
  checkUsable(false);
  return kv_->stats();
}

// ---------------------------------------------------------------------------------------------
// Step: prepare, commit, rollback (JS thread)

std::unique_ptr<StepPlan> EngineCore::prepare(std::vector<StepEntry>&& entries) {
  checkUsable(true);
  const Config& c = model_->cfg;
  auto plan = std::make_unique<StepPlan>();
  plan->batchVariant = batchVariant_;
  plan->attendPastEnd = attendPastEnd_;
  std::unordered_set<int64_t> seen;
  int64_t T = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    StepEntry& e = entries[i];
    Sequence* seq = kv_->find(e.seqId);
    if (seq == nullptr) throw std::runtime_error("step: entry " + std::to_string(i) + ": unknown sequence id " + std::to_string(e.seqId));
    if (!seen.insert(e.seqId).second)
      throw std::runtime_error("step: sequence " + std::to_string(e.seqId) + " appears twice in one step");
    if (e.tokens.empty()) throw std::runtime_error("step: entry " + std::to_string(i) + ": tokens is empty");
    for (size_t j = 0; j < e.tokens.size(); ++j) {
      const int32_t t = e.tokens[j];
      if (t < 0 || t >= c.vocab)
        throw std::runtime_error("step: entry " + std::to_string(i) + ": token id " + std::to_string(t) + " at index " +
                                 std::to_string(j) + " is outside [0, " + std::to_string(c.vocab) + ")");
    }
    e.seq = seq;
    e.pos0 = e.seq->len;
    if (kv_->ringLayers() > 0 && e.pos0 > 0 && std::max<int64_t>(0, e.pos0 - c.slidingWindow + 1) < e.seq->ringValidLo)
      throw std::runtime_error("step: sequence " + std::to_string(e.seqId) +
                               " lost its sliding-window ring state (a failed step); truncate it to 0 and recompute");
    if (e.pos0 + static_cast<int64_t>(e.tokens.size()) > (int64_t(1) << 31))
      throw std::runtime_error("step: entry " + std::to_string(i) + ": sequence would exceed 2^31 positions");
    e.tok0 = static_cast<int>(T);
    T += static_cast<int64_t>(e.tokens.size());
    if (T > (1 << 24)) throw std::runtime_error("step: too many tokens in one step");
  }
  plan->kv.appends.reserve(entries.size());
  for (const StepEntry& e : entries) plan->kv.appends.push_back({e.seq, e.pos0, static_cast<int64_t>(e.tokens.size()), {}});
  kv_->reserve(plan->kv);  // throws "out of KV blocks" having changed nothing
  // -- no failure below this line --
  plan->entries = std::move(entries);
  plan->T = static_cast<int>(T);
  busy_ = true;
  return plan;
}

void EngineCore::rollback(StepPlan& plan) {
  if (plan.done) return;
  plan.done = true;
  kv_->undo(plan.kv, plan.kvTouched);
  busy_ = false;
  if (closed_) releaseResources();
}

void EngineCore::commit(StepPlan& plan) {
  if (plan.done) return;
  plan.done = true;
  kv_->commit(plan.kv);
  busy_ = false;
  if (closed_) releaseResources();
}

}  // namespace amnesia
