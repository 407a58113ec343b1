#include "engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace amnesia {

namespace {

// Below this many multiply-adds a matmul (or attention) stage runs on the calling thread only.
constexpr double kParallelMinWork = 1 << 17;

inline void bf16row_to_f32(const uint8_t* p, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * static_cast<size_t>(i), 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    std::memcpy(out + i, &u, 4);
  }
}

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}


}  // namespace

EngineCore::EngineCore(std::shared_ptr<const ModelData> model, const EngineOptions& opt)
    : model_(std::move(model)), K_(kernels()) {
  const Config& c = model_->cfg;
  require(opt.blockSize >= 1 && opt.blockSize <= 65536, "kvBlockSize must be an integer in [1, 65536]");
  require(opt.blocks >= 1 && opt.blocks <= std::numeric_limits<int32_t>::max(),
          "kvBlocks must be an integer in [1, 2^31 - 1]");
  bs_ = opt.blockSize;
  nBlocks_ = opt.blocks;
  ring_ = opt.ring;
  ringSlack_ = opt.ringSlack < 0 ? bs_ : opt.ringSlack;
  require(ringSlack_ <= (1 << 24), "ringSlack must be an integer in [0, 2^24]");
  int threads = opt.threads;
  if (threads <= 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  require(threads <= 1024, "threads must be an integer in [1, 1024]");
  kvStride_ = c.kvHeads * c.headDim;
  blockLayer_.assign(static_cast<size_t>(c.layers), -1);
  ringIndex_.assign(static_cast<size_t>(c.layers), -1);
  for (int l = 0; l < c.layers; ++l) {
    if (ring_ && c.sliding[static_cast<size_t>(l)]) ringIndex_[static_cast<size_t>(l)] = nRingLayers_++;
    else blockLayer_[static_cast<size_t>(l)] = nBlockLayers_++;
  }
  ringLen_ = c.slidingWindow + ringSlack_;
  blockFloats_ = static_cast<size_t>(nBlockLayers_) * 2 * static_cast<size_t>(bs_) * static_cast<size_t>(kvStride_);
  const double totalBytes = static_cast<double>(blockFloats_) * 4.0 * static_cast<double>(nBlocks_);
  require(totalBytes < 9.0e15, "KV pool is too large");
  const size_t totalFloats = blockFloats_ * static_cast<size_t>(nBlocks_);
  if (totalFloats > 0) {
    try {
      pool_.reset(new float[totalFloats]);
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("cannot allocate the KV pool (" + std::to_string(static_cast<double>(totalFloats) * 4.0) +
                               " bytes); use fewer kvBlocks");
    }
  }
  refcnt_.assign(static_cast<size_t>(nBlocks_), 0);
  isFree_.assign(static_cast<size_t>(nBlocks_), 1);
  freeList_.reserve(static_cast<size_t>(nBlocks_));
  for (int64_t b = nBlocks_ - 1; b >= 0; --b) freeList_.push_back(static_cast<int32_t>(b));
  threads_ = std::make_unique<ThreadPool>(threads);
  attnScratch_.resize(static_cast<size_t>(threads_->size()));
}

EngineCore::~EngineCore() = default;

void EngineCore::releaseResources() {
  threads_.reset();
  pool_.reset();
  seqs_.clear();
  refcnt_.clear();
  refcnt_.shrink_to_fit();
  isFree_.clear();
  isFree_.shrink_to_fit();
  freeList_.clear();
  freeList_.shrink_to_fit();
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

Sequence& EngineCore::getSeq(int64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) throw std::runtime_error("unknown sequence id " + std::to_string(id));
  return *it->second;
}

const Sequence& EngineCore::getSeq(int64_t id) const {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) throw std::runtime_error("unknown sequence id " + std::to_string(id));
  return *it->second;
}

int32_t EngineCore::allocBlock() {
  // callers check capacity first
  int32_t b = freeList_.back();
  freeList_.pop_back();
  isFree_[static_cast<size_t>(b)] = 0;
  // += rather than = 1: a block that freeSharedBlocks freed while another sequence still holds it
  // keeps counting that holder, so refcnt_ stays the true number of block-table references (and
  // copy-on-write keeps seeing the block as shared). Normally refcnt_ is 0 here, so this is = 1.
  ++refcnt_[static_cast<size_t>(b)];
  return b;
}

void EngineCore::pushFree(int32_t b) {
  // The free bit makes every insertion idempotent: a block already in the free list (freed early by
  // freeSharedBlocks) is not inserted again when its last holder lets go of it.
  if (isFree_[static_cast<size_t>(b)]) return;
  isFree_[static_cast<size_t>(b)] = 1;
  freeList_.push_back(b);
}

void EngineCore::releaseBlock(int32_t b) {
  if (--refcnt_[static_cast<size_t>(b)] == 0) pushFree(b);
}

float* EngineCore::kvSlot(Sequence& s, int layer, int64_t pos, int kv) {
  const int ri = ringIndex_[static_cast<size_t>(layer)];
  if (ri >= 0) {
    const size_t slot = static_cast<size_t>(pos % ringLen_);
    return s.ring.data() + ((static_cast<size_t>(ri) * 2 + static_cast<size_t>(kv)) * static_cast<size_t>(ringLen_) + slot) *
                               static_cast<size_t>(kvStride_);
  }
  const int bl = blockLayer_[static_cast<size_t>(layer)];
  const int32_t blk = s.blocks[static_cast<size_t>(pos / bs_)];
  return pool_.get() + static_cast<size_t>(blk) * blockFloats_ +
         ((static_cast<size_t>(bl) * 2 + static_cast<size_t>(kv)) * static_cast<size_t>(bs_) + static_cast<size_t>(pos % bs_)) *
             static_cast<size_t>(kvStride_);
}

// ---------------------------------------------------------------------------------------------
// Sequences

int64_t EngineCore::createSequence() {
  checkUsable(false);
  auto s = std::make_unique<Sequence>();
  if (nRingLayers_ > 0)
    s->ring.assign(static_cast<size_t>(nRingLayers_) * 2 * static_cast<size_t>(ringLen_) * static_cast<size_t>(kvStride_), 0.0f);
  const int64_t id = nextSeqId_++;
  seqs_.emplace(id, std::move(s));
  return id;
}

int64_t EngineCore::forkSequence(int64_t id, int64_t length) {
  checkUsable(true);
  Sequence& src = getSeq(id);
  if (length < 0 || length > src.len)
    throw std::runtime_error("forkSequence: length " + std::to_string(length) + " is outside [0, " + std::to_string(src.len) +
                             "] for sequence " + std::to_string(id));
  const int W = model_->cfg.slidingWindow;
  if (nRingLayers_ > 0 && length > 0) {
    const int64_t needLo = std::max<int64_t>(0, length - W + 1);
    if (needLo < src.ringValidLo)
      throw std::runtime_error("forkSequence: ring mode cannot fork sequence " + std::to_string(id) + " at length " +
                               std::to_string(length) + ": its sliding-window ring no longer holds position " +
                               std::to_string(needLo) + " (it holds positions from " + std::to_string(src.ringValidLo) +
                               "); recompute the prefix instead");
  }
  const int64_t nFull = length / bs_;
  const bool partial = length % bs_ != 0;
  if (partial && freeList_.empty())
    throw std::runtime_error("out of KV blocks: forkSequence needs 1 free block, 0 free");
  auto ns = std::make_unique<Sequence>();
  if (nRingLayers_ > 0)
    ns->ring.assign(static_cast<size_t>(nRingLayers_) * 2 * static_cast<size_t>(ringLen_) * static_cast<size_t>(kvStride_), 0.0f);
  ns->blocks.reserve(static_cast<size_t>(nFull + (partial ? 1 : 0)));
  seqs_.reserve(seqs_.size() + 1);
  // -- no allocation that can fail below this line --
  ns->len = length;
  for (int64_t i = 0; i < nFull; ++i) {
    const int32_t b = src.blocks[static_cast<size_t>(i)];
    ++refcnt_[static_cast<size_t>(b)];
    ns->blocks.push_back(b);
  }
  if (partial) {
    const int32_t b = allocBlock();
    const int32_t from = src.blocks[static_cast<size_t>(nFull)];
    // b == from only after freeSharedBlocks put a still-used block in the free list
    if (blockFloats_ > 0 && b != from)
      std::memcpy(pool_.get() + static_cast<size_t>(b) * blockFloats_, pool_.get() + static_cast<size_t>(from) * blockFloats_,
                  blockFloats_ * 4);
    ns->blocks.push_back(b);
  }
  if (nRingLayers_ > 0) {
    const int64_t lo = std::min(src.ringValidLo, length);
    ns->ringValidLo = lo;
    const size_t layerStride = static_cast<size_t>(ringLen_) * static_cast<size_t>(kvStride_);
    for (int64_t p = lo; p < length; ++p) {
      const size_t slot = static_cast<size_t>(p % ringLen_) * static_cast<size_t>(kvStride_);
      for (size_t kvl = 0; kvl < static_cast<size_t>(nRingLayers_) * 2; ++kvl)
        std::memcpy(ns->ring.data() + kvl * layerStride + slot, src.ring.data() + kvl * layerStride + slot,
                    static_cast<size_t>(kvStride_) * 4);
    }
  }
  const int64_t nid = nextSeqId_++;
  seqs_.emplace(nid, std::move(ns));
  return nid;
}

bool EngineCore::truncateSequence(int64_t id, int64_t length) {
  checkUsable(true);
  Sequence& s = getSeq(id);
  if (length < 0 || length > s.len)
    throw std::runtime_error("truncateSequence: length " + std::to_string(length) + " is outside [0, " + std::to_string(s.len) +
                             "] for sequence " + std::to_string(id));
  if (length == s.len) return true;
  // Negative control (setDebug kvTrimNoop, exo #1362): report success and keep everything — the
  // length, the block table, the KV and the ring (ring mode included, and even where the honest
  // answer would be false) — so the next tokens go after the stale tail, at the old positions.
  if (trimNoop_) return true;
  if (nRingLayers_ > 0 && length > 0) {
    const int64_t needLo = std::max<int64_t>(0, length - model_->cfg.slidingWindow + 1);
    if (needLo < s.ringValidLo) return false;
  }
  const size_t keep = static_cast<size_t>((length + bs_ - 1) / bs_);
  for (size_t i = keep; i < s.blocks.size(); ++i) releaseBlock(s.blocks[i]);
  s.blocks.resize(keep);
  s.len = length;
  s.ringValidLo = std::min(s.ringValidLo, length);
  return true;
}

int64_t EngineCore::sequenceLength(int64_t id) const {
  checkUsable(false);
  return getSeq(id).len;
}

void EngineCore::freeSequence(int64_t id) {
  checkUsable(true);
  auto it = seqs_.find(id);
  if (it == seqs_.end()) throw std::runtime_error("unknown sequence id " + std::to_string(id));
  if (freeShared_) {
    // Negative control (setDebug freeSharedBlocks): every block of the sequence goes back to the
    // free list whatever its reference count, so a block another sequence (a fork) still uses can
    // be handed out again and overwritten — only KV contents go wrong. The bookkeeping stays sound:
    // this sequence's references are still dropped from refcnt_ (which keeps counting the other
    // holders; allocBlock adds to it), and the free bit keeps each block in the free list once, so
    // when the other holders are freed later nothing is inserted twice and, once every sequence
    // is gone, blocksFree == blocksTotal again. Blocks go back last to first, so the prefix blocks
    // (the ones forks share) are the first the LIFO free list hands out again.
    const auto& blocks = it->second->blocks;
    for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) {
      --refcnt_[static_cast<size_t>(*b)];
      pushFree(*b);
    }
  } else {
    for (int32_t b : it->second->blocks) releaseBlock(b);
  }
  seqs_.erase(it);
}

KvStats EngineCore::kvStats() const {
  checkUsable(false);
  return KvStats{bs_, nBlocks_, static_cast<int64_t>(freeList_.size()), static_cast<double>(blockFloats_) * 4.0};
}

// ---------------------------------------------------------------------------------------------
// Step: prepare (JS thread)

std::unique_ptr<StepPlan> EngineCore::prepare(std::vector<StepEntry>&& entries) {
  checkUsable(true);
  const Config& c = model_->cfg;
  auto plan = std::make_unique<StepPlan>();
  plan->batchVariant = batchVariant_;
  std::unordered_set<int64_t> seen;
  int64_t T = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    StepEntry& e = entries[i];
    auto it = seqs_.find(e.seqId);
    if (it == seqs_.end()) throw std::runtime_error("step: entry " + std::to_string(i) + ": unknown sequence id " + std::to_string(e.seqId));
    if (!seen.insert(e.seqId).second)
      throw std::runtime_error("step: sequence " + std::to_string(e.seqId) + " appears twice in one step");
    if (e.tokens.empty()) throw std::runtime_error("step: entry " + std::to_string(i) + ": tokens is empty");
    for (size_t j = 0; j < e.tokens.size(); ++j) {
      const int32_t t = e.tokens[j];
      if (t < 0 || t >= c.vocab)
        throw std::runtime_error("step: entry " + std::to_string(i) + ": token id " + std::to_string(t) + " at index " +
                                 std::to_string(j) + " is outside [0, " + std::to_string(c.vocab) + ")");
    }
    e.seq = it->second.get();
    e.pos0 = e.seq->len;
    if (nRingLayers_ > 0 && e.pos0 > 0 && std::max<int64_t>(0, e.pos0 - c.slidingWindow + 1) < e.seq->ringValidLo)
      throw std::runtime_error("step: sequence " + std::to_string(e.seqId) +
                               " lost its sliding-window ring state (a failed step); truncate it to 0 and recompute");
    if (e.pos0 + static_cast<int64_t>(e.tokens.size()) > (int64_t(1) << 31))
      throw std::runtime_error("step: entry " + std::to_string(i) + ": sequence would exceed 2^31 positions");
    e.tok0 = static_cast<int>(T);
    T += static_cast<int64_t>(e.tokens.size());
    if (T > (1 << 24)) throw std::runtime_error("step: too many tokens in one step");
  }
  // KV capacity for the whole step, simulated before anything changes.
  // The copy-on-write decisions are taken here and applied as taken below (normally the same
  // answer as re-reading refcnt_ there; after freeSharedBlocks an allocation below can hand out a
  // block that an entry of this step still holds, and the count planned here must stay exact).
  int64_t need = 0;
  std::unordered_map<int32_t, int32_t> refDrop;
  std::vector<char> cowPlanned(entries.size(), 0);
  for (size_t i = 0; i < entries.size(); ++i) {
    StepEntry& e = entries[i];
    Sequence& s = *e.seq;
    const int64_t end = e.pos0 + static_cast<int64_t>(e.tokens.size());
    need += (end + bs_ - 1) / bs_ - static_cast<int64_t>(s.blocks.size());
    if (e.pos0 % bs_ != 0) {
      const int32_t b = s.blocks[static_cast<size_t>(e.pos0 / bs_)];
      const int32_t rc = refcnt_[static_cast<size_t>(b)] - refDrop[b];
      if (rc > 1) {
        ++need;
        ++refDrop[b];
        cowPlanned[i] = 1;
      }
    }
  }
  if (need > static_cast<int64_t>(freeList_.size()))
    throw std::runtime_error("out of KV blocks: the step needs " + std::to_string(need) + " new blocks, " +
                             std::to_string(freeList_.size()) + " free");
  plan->backups.reserve(entries.size());
  plan->newBlocks.reserve(static_cast<size_t>(need));
  for (StepEntry& e : entries) {
    Sequence& s = *e.seq;
    const int64_t end = e.pos0 + static_cast<int64_t>(e.tokens.size());
    s.blocks.reserve(static_cast<size_t>((end + bs_ - 1) / bs_));
    plan->backups.push_back({&s, s.blocks});
  }
  plan->cow.reserve(entries.size());
  // -- no failure below this line --
  for (size_t i = 0; i < entries.size(); ++i) {
    StepEntry& e = entries[i];
    Sequence& s = *e.seq;
    const int64_t end = e.pos0 + static_cast<int64_t>(e.tokens.size());
    if (e.pos0 % bs_ != 0) {
      int32_t& slot = s.blocks[static_cast<size_t>(e.pos0 / bs_)];
      if (cowPlanned[i]) {
        const int32_t nb = allocBlock();
        plan->newBlocks.push_back(nb);
        plan->cow.emplace_back(slot, nb);
        --refcnt_[static_cast<size_t>(slot)];
        slot = nb;
      }
    }
    while (static_cast<int64_t>(s.blocks.size()) < (end + bs_ - 1) / bs_) {
      const int32_t nb = allocBlock();
      plan->newBlocks.push_back(nb);
      s.blocks.push_back(nb);
    }
  }
  plan->entries = std::move(entries);
  plan->T = static_cast<int>(T);
  busy_ = true;
  return plan;
}

void EngineCore::rollback(StepPlan& plan) {
  if (plan.done) return;
  plan.done = true;
  for (auto& cp : plan.cow) ++refcnt_[static_cast<size_t>(cp.first)];
  for (int32_t b : plan.newBlocks) {
    // undo allocBlock (normally 1 -> 0; a block still held elsewhere after freeSharedBlocks keeps
    // its other references) and put it back in the free list, where it was
    --refcnt_[static_cast<size_t>(b)];
    pushFree(b);
  }
  for (auto& bk : plan.backups) bk.seq->blocks = std::move(bk.blocks);
  if (plan.kvTouched && nRingLayers_ > 0) {
    // The failed step may have overwritten ring slots that still held valid positions: mark the
    // rings unusable (step() rejects these sequences until they are truncated to 0).
    for (StepEntry& e : plan.entries) e.seq->ringValidLo = std::numeric_limits<int64_t>::max();
  }
  busy_ = false;
  if (closed_) releaseResources();
}

void EngineCore::commit(StepPlan& plan) {
  if (plan.done) return;
  plan.done = true;
  for (StepEntry& e : plan.entries) {
    Sequence& s = *e.seq;
    s.len = e.pos0 + static_cast<int64_t>(e.tokens.size());
    if (nRingLayers_ > 0) s.ringValidLo = std::max(s.ringValidLo, s.len - ringLen_);
  }
  busy_ = false;
  if (closed_) releaseResources();
}

// ---------------------------------------------------------------------------------------------
// Parallel matmul drivers (worker thread)

void EngineCore::runDense(const std::vector<DenseSeg>& segs, bool variant, int stepT) {
  struct Task {
    int seg, r0, r1;
  };
  double work = 0;
  int64_t totalRows = 0;
  for (const DenseSeg& s : segs) {
    work += static_cast<double>(s.W->rows) * static_cast<double>(s.W->cols) * s.T;
    totalRows += s.W->rows;
  }
  const int nth = threads_->size();
  int64_t chunk;
  if (nth == 1 || work < kParallelMinWork) chunk = std::numeric_limits<int32_t>::max();
  else {
    chunk = (totalRows + nth * 4 - 1) / (nth * 4);
    chunk = std::max<int64_t>(16, (chunk + 15) / 16 * 16);
  }
  std::vector<Task> tasks;
  for (size_t i = 0; i < segs.size(); ++i) {
    const int64_t rows = segs[i].W->rows;
    for (int64_t r = 0; r < rows; r += chunk)
      tasks.push_back({static_cast<int>(i), static_cast<int>(r), static_cast<int>(std::min(rows, r + chunk))});
  }
  const int parts = variant ? std::min(stepT, 4) : 1;
  auto fn = [&](int ti, int) {
    const Task& tk = tasks[static_cast<size_t>(ti)];
    const DenseSeg& s = segs[static_cast<size_t>(tk.seg)];
    auto kern = s.W->wt == WType::BF16 ? K_->dense_bf16 : K_->dense_f32;
    const int Kd = static_cast<int>(s.W->cols);
    if (parts <= 1) {
      DenseArgs a{s.W->data, s.W->rowBytes(), s.bias, s.x, s.ldx, s.T, Kd, s.y, s.ldy};
      kern(a, tk.r0, tk.r1);
      return;
    }
    // Negative control (setDebug batchVariantReduction): split each dot product into `parts`
    // partial sums whose number depends on the step's token count.
    const int n = tk.r1 - tk.r0;
    const size_t esz = s.W->wt == WType::BF16 ? 2 : 4;
    std::vector<float> part(static_cast<size_t>(parts) * static_cast<size_t>(s.T) * static_cast<size_t>(n));
    for (int p = 0; p < parts; ++p) {
      const int k0 = static_cast<int>(static_cast<int64_t>(Kd) * p / parts);
      const int k1 = static_cast<int>(static_cast<int64_t>(Kd) * (p + 1) / parts);
      DenseArgs a{s.W->data + static_cast<size_t>(tk.r0) * s.W->rowBytes() + static_cast<size_t>(k0) * esz,
                  s.W->rowBytes(),
                  nullptr,
                  s.x + k0,
                  s.ldx,
                  s.T,
                  k1 - k0,
                  part.data() + static_cast<size_t>(p) * static_cast<size_t>(s.T) * static_cast<size_t>(n),
                  static_cast<size_t>(n)};
      kern(a, 0, n);
    }
    for (int t = 0; t < s.T; ++t) {
      for (int r = 0; r < n; ++r) {
        float acc = part[static_cast<size_t>(t) * static_cast<size_t>(n) + static_cast<size_t>(r)];
        for (int p = 1; p < parts; ++p)
          acc = acc + part[(static_cast<size_t>(p) * static_cast<size_t>(s.T) + static_cast<size_t>(t)) * static_cast<size_t>(n) +
                           static_cast<size_t>(r)];
        if (s.bias != nullptr) acc = acc + s.bias[tk.r0 + r];
        s.y[static_cast<size_t>(t) * s.ldy + static_cast<size_t>(tk.r0 + r)] = acc;
      }
    }
  };
  if (tasks.size() == 1 || chunk == std::numeric_limits<int32_t>::max()) {
    for (size_t i = 0; i < tasks.size(); ++i) fn(static_cast<int>(i), 0);
  } else {
    threads_->run(static_cast<int>(tasks.size()), fn);
  }
}

void EngineCore::runMx(const std::vector<MxSeg>& segs) {
  struct Task {
    int seg, r0, r1;
  };
  double work = 0;
  int64_t totalRows = 0;
  for (const MxSeg& s : segs) {
    work += static_cast<double>(s.rows) * s.args.nb * 32.0 * s.args.T;
    totalRows += s.rows;
  }
  const int nth = threads_->size();
  const bool parallel = nth > 1 && work >= kParallelMinWork;
  int64_t chunk = std::numeric_limits<int32_t>::max();
  if (parallel) {
    chunk = (totalRows + nth * 4 - 1) / (nth * 4);
    chunk = std::max<int64_t>(16, (chunk + 15) / 16 * 16);
  }
  std::vector<Task> tasks;
  for (size_t i = 0; i < segs.size(); ++i)
    for (int64_t r = 0; r < segs[i].rows; r += chunk)
      tasks.push_back({static_cast<int>(i), static_cast<int>(r), static_cast<int>(std::min<int64_t>(segs[i].rows, r + chunk))});
  auto fn = [&](int ti, int) {
    const Task& tk = tasks[static_cast<size_t>(ti)];
    K_->mxfp4(segs[static_cast<size_t>(tk.seg)].args, tk.r0, tk.r1);
  };
  if (!parallel || tasks.size() == 1) {
    for (size_t i = 0; i < tasks.size(); ++i) fn(static_cast<int>(i), 0);
  } else {
    threads_->run(static_cast<int>(tasks.size()), fn);
  }
}

void EngineCore::rmsnorm(const float* x, const std::vector<float>& w, float* out) const {
  const int H = model_->cfg.hidden;
  const float ss = K_->dot(x, x, H);
  const float mean = ss / static_cast<float>(H);
  const float denom = std::sqrt(mean + static_cast<float>(model_->cfg.rmsNormEps));
  for (int i = 0; i < H; ++i) out[i] = (x[i] / denom) * w[static_cast<size_t>(i)];
}

// K/V of the listed tokens for one layer (K after RoPE, taken from k_/v_).
void EngineCore::writeKv(StepPlan& plan, int layer, const std::vector<int>& toks) {
  for (int t : toks) {
    Sequence& s = *tokSeq_[static_cast<size_t>(t)];
    const int64_t p = tokPos_[static_cast<size_t>(t)];
    std::memcpy(kvSlot(s, layer, p, 0), k_.data() + static_cast<size_t>(t) * kvStride_, static_cast<size_t>(kvStride_) * 4);
    std::memcpy(kvSlot(s, layer, p, 1), v_.data() + static_cast<size_t>(t) * kvStride_, static_cast<size_t>(kvStride_) * 4);
  }
}

// Attention for the listed tokens of one layer; their K/V (and every earlier position's) must be
// in the cache already. Per (token, query head): keys in ascending position order, scores
// q·k * 1/sqrt(d), softmax with the sink logit (max, exp-sum in key order, then the sink term),
// output = Σ_j p_j V_j in key order.
void EngineCore::attention(StepPlan& plan, int layer, const std::vector<int>& toks) {
  const Config& c = model_->cfg;
  const int hd = c.headDim, nh = c.heads, nkv = c.kvHeads, G = nh / nkv;
  const int QD = nh * hd;
  const bool sliding = c.sliding[static_cast<size_t>(layer)];
  const int W = c.slidingWindow;
  const float scale = model_->attnScale;
  const float* sinks = model_->layers[static_cast<size_t>(layer)].sinks.data();
  const int ri = ringIndex_[static_cast<size_t>(layer)];
  const int bl = blockLayer_[static_cast<size_t>(layer)];

  double work = 0;
  for (int t : toks) {
    const int64_t p = tokPos_[static_cast<size_t>(t)];
    const int64_t lo = sliding ? std::max<int64_t>(0, p - W + 1) : 0;
    work += static_cast<double>(p - lo + 1) * nh * hd * 2.0;
  }

  auto fn = [&](int task, int tid) {
    const int t = toks[static_cast<size_t>(task / nkv)];
    const int g = task % nkv;
    Sequence& s = *tokSeq_[static_cast<size_t>(t)];
    const int64_t p = tokPos_[static_cast<size_t>(t)];
    const int64_t lo = sliding ? std::max<int64_t>(0, p - W + 1) : 0;
    const size_t n = static_cast<size_t>(p - lo + 1);
    std::vector<float>& scr = attnScratch_[static_cast<size_t>(tid)];
    float* sc = scr.data();  // [G][n]
    const float* qbase = q_.data() + static_cast<size_t>(t) * QD + static_cast<size_t>(g) * G * hd;
    float* obase = att_.data() + static_cast<size_t>(t) * QD + static_cast<size_t>(g) * G * hd;

    // Visit keys lo..p in ascending order as contiguous runs: f(index of the first key from lo,
    // K head ptr, V head ptr, run length); rows inside a run are kvStride_ floats apart.
    auto forRuns = [&](auto&& f) {
      if (ri >= 0) {
        const float* Kb = s.ring.data() + (static_cast<size_t>(ri) * 2) * ringLen_ * static_cast<size_t>(kvStride_);
        const float* Vb = Kb + static_cast<size_t>(ringLen_) * kvStride_;
        size_t i = 0;
        size_t slot = static_cast<size_t>(lo % ringLen_);
        while (i < n) {
          const size_t cnt = std::min(n - i, static_cast<size_t>(ringLen_) - slot);
          const size_t o = slot * kvStride_ + static_cast<size_t>(g) * hd;
          f(i, Kb + o, Vb + o, static_cast<int>(cnt));
          i += cnt;
          slot = 0;
        }
      } else {
        size_t i = 0;
        int64_t j = lo;
        while (j <= p) {
          const int64_t bi = j / bs_;
          const int64_t off = j - bi * bs_;
          const float* base = pool_.get() + static_cast<size_t>(s.blocks[static_cast<size_t>(bi)]) * blockFloats_ +
                              static_cast<size_t>(bl) * 2 * bs_ * static_cast<size_t>(kvStride_);
          const size_t o = static_cast<size_t>(off) * kvStride_ + static_cast<size_t>(g) * hd;
          const int64_t cnt = std::min<int64_t>(bs_ - off, p - j + 1);
          f(i, base + o, base + static_cast<size_t>(bs_) * kvStride_ + o, static_cast<int>(cnt));
          i += static_cast<size_t>(cnt);
          j += cnt;
        }
      }
    };

    forRuns([&](size_t i0, const float* kp, const float*, int cnt) {
      K_->attn_scores(qbase, G, hd, kp, static_cast<size_t>(kvStride_), cnt, scale, sc + i0, n);
    });
    for (int hh = 0; hh < G; ++hh) {
      float* row = sc + static_cast<size_t>(hh) * n;
      const float sink = sinks[g * G + hh];
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
    std::memset(obase, 0, static_cast<size_t>(G) * hd * 4);
    forRuns([&](size_t i0, const float*, const float* vp, int cnt) {
      K_->attn_accum(obase, G, hd, vp, static_cast<size_t>(kvStride_), cnt, sc + i0, n);
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
// Step: execute (worker thread)

void EngineCore::execute(StepPlan& plan) {
  const Config& c = model_->cfg;
  const int T = plan.T;
  if (T == 0) return;
  const int H = c.hidden, I = c.intermediate, E = c.experts, k = c.topk, V = c.vocab, L = c.layers;
  const int hd = c.headDim, dh = hd / 2, nh = c.heads, nkv = c.kvHeads;
  const int QD = nh * hd, KD = nkv * hd;
  const size_t Tz = static_cast<size_t>(T), Tk = Tz * static_cast<size_t>(k);

  // ---- 1. scratch (the only allocations; nothing is written to the KV before this succeeds)
  int rows = 0;
  size_t maxKeys = 1;
  for (StepEntry& e : plan.entries) {
    e.logitRow0 = rows;
    e.logitRows = e.logits == kLogitsAll ? static_cast<int>(e.tokens.size()) : 1;
    rows += e.logitRows;
    const int64_t last = e.pos0 + static_cast<int64_t>(e.tokens.size()) - 1;
    maxKeys = std::max(maxKeys, static_cast<size_t>(last + 1));
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
  grow(cos_, Tz * dh);
  grow(sin_, Tz * dh);
  grow(xf_, static_cast<size_t>(rows) * H);
  grow(logits_, static_cast<size_t>(rows) * V);
  tokPos_.resize(Tz);
  tokSeq_.resize(Tz);
  tokEntry_.resize(Tz);
  const size_t G = static_cast<size_t>(nh / nkv);
  bool anyFull = false;
  for (int l = 0; l < L; ++l) anyFull = anyFull || !c.sliding[static_cast<size_t>(l)];
  const size_t keysMax = anyFull ? maxKeys : std::min(maxKeys, static_cast<size_t>(c.slidingWindow));
  for (auto& s : attnScratch_) grow(s, G * keysMax);
  std::vector<int> allToks(Tz);
  std::vector<int> chunkToks;
  chunkToks.reserve(Tz);
  std::vector<DenseSeg> dsegs;
  dsegs.reserve(3);
  std::vector<MxSeg> msegs;
  msegs.reserve(static_cast<size_t>(E));
  std::vector<int> rowTok(static_cast<size_t>(rows));
  int maxEntryTokens = 0;
  for (size_t ei = 0; ei < plan.entries.size(); ++ei) {
    StepEntry& e = plan.entries[ei];
    maxEntryTokens = std::max(maxEntryTokens, static_cast<int>(e.tokens.size()));
    for (size_t j = 0; j < e.tokens.size(); ++j) {
      const size_t t = static_cast<size_t>(e.tok0) + j;
      allToks[t] = static_cast<int>(t);
      tokPos_[t] = e.pos0 + static_cast<int64_t>(j);
      tokSeq_[t] = e.seq;
      tokEntry_[t] = static_cast<int>(ei);
    }
    if (e.logits == kLogitsAll) {
      for (int j = 0; j < e.logitRows; ++j) rowTok[static_cast<size_t>(e.logitRow0 + j)] = e.tok0 + j;
    } else {
      rowTok[static_cast<size_t>(e.logitRow0)] = e.tok0 + static_cast<int>(e.tokens.size()) - 1;
    }
  }

  // ---- 2. copy-on-write of shared partial blocks
  for (auto& cp : plan.cow)
    if (blockFloats_ > 0 && cp.first != cp.second)  // equal only after freeSharedBlocks
      std::memcpy(pool_.get() + static_cast<size_t>(cp.second) * blockFloats_,
                  pool_.get() + static_cast<size_t>(cp.first) * blockFloats_, blockFloats_ * 4);

  // ---- 3. forward
  plan.kvTouched = true;
  const ModelData& M = *model_;
  for (StepEntry& e : plan.entries) {
    for (size_t j = 0; j < e.tokens.size(); ++j) {
      const size_t t = static_cast<size_t>(e.tok0) + j;
      const uint8_t* row = M.embed.data + static_cast<size_t>(e.tokens[j]) * M.embed.rowBytes();
      if (M.embed.wt == WType::BF16) bf16row_to_f32(row, x_.data() + t * H, H);
      else std::memcpy(x_.data() + t * H, row, static_cast<size_t>(H) * 4);
    }
  }
  // RoPE tables per token: angle = float(p) * inv_freq (an fp32 product, as the torch reference);
  // cos/sin of that angle evaluated in double and rounded once to float (correctly rounded in
  // practice, so any implementation can reproduce them), then * concentration in fp32.
  for (size_t t = 0; t < Tz; ++t) {
    const float pf = static_cast<float>(tokPos_[t]);
    for (int j = 0; j < dh; ++j) {
      const float th = pf * M.invFreq[static_cast<size_t>(j)];
      cos_[t * dh + j] = static_cast<float>(std::cos(static_cast<double>(th))) * M.concentration;
      sin_[t * dh + j] = static_cast<float>(std::sin(static_cast<double>(th))) * M.concentration;
    }
  }
  auto rope = [&](float* v, size_t t) {
    const float* cs = cos_.data() + t * dh;
    const float* sn = sin_.data() + t * dh;
    for (int j = 0; j < dh; ++j) {
      const float x1 = v[j], x2 = v[j + dh];
      v[j] = x1 * cs[j] - x2 * sn[j];
      v[j + dh] = x2 * cs[j] + x1 * sn[j];
    }
  };
  const float limit = static_cast<float>(c.swigluLimit);
  const float alpha = static_cast<float>(c.swigluAlpha);
  const int nbH = H / 32, nbI = I / 32;
  int mxPos[32];  // element -> position in the kernel's block order (inverse of mxPerm)
  for (int j = 0; j < 32; ++j) mxPos[K_->mxPerm[j]] = j;

  for (int l = 0; l < L; ++l) {
    const LayerWeights& W = M.layers[static_cast<size_t>(l)];
    // attention block
    for (size_t t = 0; t < Tz; ++t) rmsnorm(x_.data() + t * H, W.ln1, xn_.data() + t * H);
    dsegs.clear();
    dsegs.push_back({&W.q, W.qb.data(), xn_.data(), static_cast<size_t>(H), T, q_.data(), static_cast<size_t>(QD)});
    dsegs.push_back({&W.k, W.kb.data(), xn_.data(), static_cast<size_t>(H), T, k_.data(), static_cast<size_t>(KD)});
    dsegs.push_back({&W.v, W.vb.data(), xn_.data(), static_cast<size_t>(H), T, v_.data(), static_cast<size_t>(KD)});
    runDense(dsegs, plan.batchVariant, T);
    for (size_t t = 0; t < Tz; ++t) {
      for (int h = 0; h < nh; ++h) rope(q_.data() + t * QD + static_cast<size_t>(h) * hd, t);
      for (int g = 0; g < nkv; ++g) rope(k_.data() + t * KD + static_cast<size_t>(g) * hd, t);
    }
    if (ringIndex_[static_cast<size_t>(l)] < 0) {
      // every K/V of the step first, so a chunk's queries see the chunk's own earlier keys
      writeKv(plan, l, allToks);
      attention(plan, l, allToks);
    } else {
      // ring layer: a chunk may not overwrite ring slots its own queries still read, so go in
      // sub-chunks of ringSlack + 1 positions per entry (results are identical: each query reads
      // exactly the keys [p - W + 1, p]).
      const int C = ringSlack_ + 1;
      for (int c0 = 0; c0 < maxEntryTokens; c0 += C) {
        chunkToks.clear();
        for (const StepEntry& e : plan.entries)
          for (int j = c0; j < std::min<int>(c0 + C, static_cast<int>(e.tokens.size())); ++j) chunkToks.push_back(e.tok0 + j);
        writeKv(plan, l, chunkToks);
        attention(plan, l, chunkToks);
      }
    }
    dsegs.clear();
    dsegs.push_back({&W.o, W.ob.data(), att_.data(), static_cast<size_t>(QD), T, tmp_.data(), static_cast<size_t>(H)});
    runDense(dsegs, plan.batchVariant, T);
    for (size_t i = 0; i < Tz * H; ++i) x_[i] = x_[i] + tmp_[i];

    // MoE block
    for (size_t t = 0; t < Tz; ++t) rmsnorm(x_.data() + t * H, W.ln2, xn_.data() + t * H);
    dsegs.clear();
    dsegs.push_back({&W.router, W.rb.data(), xn_.data(), static_cast<size_t>(H), T, rl_.data(), static_cast<size_t>(E)});
    runDense(dsegs, plan.batchVariant, T);
    std::fill(cnt_.begin(), cnt_.begin() + E, 0);
    for (size_t t = 0; t < Tz; ++t) {
      const float* lg = rl_.data() + t * E;
      int32_t* sel = sel_.data() + t * k;
      float* w = wt_.data() + t * k;
      // top-k, descending, ties -> lowest expert index
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
      float m = lg[sel[0]];
      for (int i = 1; i < k; ++i)
        if (lg[sel[i]] > m) m = lg[sel[i]];
      float sum = 0.0f;
      for (int i = 0; i < k; ++i) {
        w[i] = std::exp(lg[sel[i]] - m);
        sum = sum + w[i];
      }
      for (int i = 0; i < k; ++i) w[i] = w[i] / sum;
      for (int i = 0; i < k; ++i) ++cnt_[static_cast<size_t>(sel[i])];
      StepEntry& e = plan.entries[static_cast<size_t>(tokEntry_[t])];
      if (e.routing) {
        const size_t j = t - static_cast<size_t>(e.tok0);
        std::memcpy(e.routingOut.data() + (j * L + static_cast<size_t>(l)) * k, sel, static_cast<size_t>(k) * 4);
      }
    }
    off_[0] = 0;
    for (int e = 0; e < E; ++e) {
      off_[static_cast<size_t>(e) + 1] = off_[static_cast<size_t>(e)] + cnt_[static_cast<size_t>(e)];
      fill_[static_cast<size_t>(e)] = 0;
    }
    for (size_t t = 0; t < Tz; ++t) {
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
    msegs.clear();
    for (int e = 0; e < E; ++e) {
      const int n = cnt_[static_cast<size_t>(e)];
      if (n == 0) continue;
      const size_t o = static_cast<size_t>(off_[static_cast<size_t>(e)]);
      const size_t rowsE = static_cast<size_t>(2 * I);
      msegs.push_back({{W.guBlocks + static_cast<size_t>(e) * rowsE * nbH * 16, W.guScales + static_cast<size_t>(e) * rowsE * nbH, nbH,
                        W.guBias.data() + static_cast<size_t>(e) * rowsE, xg_.data() + o * H, static_cast<size_t>(H), n,
                        hg_.data() + o * rowsE, rowsE},
                       2 * I});
    }
    runMx(msegs);
    // clamped SwiGLU (even row = gate, odd row = linear), written pair-split for the down matmul
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
    msegs.clear();
    for (int e = 0; e < E; ++e) {
      const int n = cnt_[static_cast<size_t>(e)];
      if (n == 0) continue;
      const size_t o = static_cast<size_t>(off_[static_cast<size_t>(e)]);
      msegs.push_back({{W.dnBlocks + static_cast<size_t>(e) * H * nbI * 16, W.dnScales + static_cast<size_t>(e) * H * nbI, nbI,
                        W.dnBias.data() + static_cast<size_t>(e) * H, ag_.data() + o * I, static_cast<size_t>(I), n,
                        dg_.data() + o * H, static_cast<size_t>(H)},
                       H});
    }
    runMx(msegs);
    // weighted sum over the token's experts in top-k rank order, then the residual
    for (size_t t = 0; t < Tz; ++t) {
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

  // ---- 4. final norm + unembedding for the rows whose logits are needed
  for (int r = 0; r < rows; ++r)
    rmsnorm(x_.data() + static_cast<size_t>(rowTok[static_cast<size_t>(r)]) * H, M.finalNorm, xf_.data() + static_cast<size_t>(r) * H);
  dsegs.clear();
  dsegs.push_back({&M.lmHead, nullptr, xf_.data(), static_cast<size_t>(H), rows, logits_.data(), static_cast<size_t>(V)});
  runDense(dsegs, plan.batchVariant, T);
  for (StepEntry& e : plan.entries) {
    const float* lg = logits_.data() + static_cast<size_t>(e.logitRow0 + e.logitRows - 1) * V;
    int best = 0;
    for (int i = 1; i < V; ++i)
      if (lg[i] > lg[best]) best = i;
    e.next = best;
  }
}

}  // namespace amnesia
