#include "kv_pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

namespace amnesia {

KvPool::KvPool(const Config& c, int blockSize, int64_t blocks, bool ring, int ringSlack)
    : window_(c.slidingWindow), bs_(blockSize), nBlocks_(blocks), ringSlack_(ringSlack) {
  kvStride_ = c.kvHeads * c.headDim;
  blockLayer_.assign(static_cast<size_t>(c.layers), -1);
  ringIndex_.assign(static_cast<size_t>(c.layers), -1);
  for (int l = 0; l < c.layers; ++l) {
    if (ring && c.sliding[static_cast<size_t>(l)]) ringIndex_[static_cast<size_t>(l)] = nRingLayers_++;
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
}

// ---------------------------------------------------------------------------------------------
// Blocks

int32_t KvPool::allocBlock() {
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

void KvPool::pushFree(int32_t b) {
  // The free bit makes every insertion idempotent: a block already in the free list (freed early by
  // freeSharedBlocks) is not inserted again when its last holder lets go of it.
  if (isFree_[static_cast<size_t>(b)]) return;
  isFree_[static_cast<size_t>(b)] = 1;
  freeList_.push_back(b);
}

void KvPool::releaseBlock(int32_t b) {
  if (--refcnt_[static_cast<size_t>(b)] == 0) pushFree(b);
}

float* KvPool::slot(Sequence& s, int layer, int64_t pos, int kv) {
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

Sequence* KvPool::find(int64_t id) {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

Sequence& KvPool::get(int64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) throw std::runtime_error("unknown sequence id " + std::to_string(id));
  return *it->second;
}

const Sequence& KvPool::get(int64_t id) const {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) throw std::runtime_error("unknown sequence id " + std::to_string(id));
  return *it->second;
}

std::vector<float> KvPool::newRing() const {
  if (nRingLayers_ == 0) return {};
  return std::vector<float>(static_cast<size_t>(nRingLayers_) * 2 * static_cast<size_t>(ringLen_) * static_cast<size_t>(kvStride_), 0.0f);
}

int64_t KvPool::create() {
  auto s = std::make_unique<Sequence>();
  s->ring = newRing();
  const int64_t id = nextSeqId_++;
  seqs_.emplace(id, std::move(s));
  return id;
}

int64_t KvPool::fork(int64_t id, int64_t length) {
  Sequence& src = get(id);
  if (length < 0 || length > src.len)
    throw std::runtime_error("forkSequence: length " + std::to_string(length) + " is outside [0, " + std::to_string(src.len) +
                             "] for sequence " + std::to_string(id));
  if (nRingLayers_ > 0 && length > 0) {
    const int64_t needLo = std::max<int64_t>(0, length - window_ + 1);
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
  ns->ring = newRing();
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

bool KvPool::truncate(int64_t id, int64_t length) {
  Sequence& s = get(id);
  if (length < 0 || length > s.len)
    throw std::runtime_error("truncateSequence: length " + std::to_string(length) + " is outside [0, " + std::to_string(s.len) +
                             "] for sequence " + std::to_string(id));
  if (length == s.len) return true;
  // Negative control (setDebug kvTrimNoop, exo #1362): report success and keep everything — the
  // length, the block table, the KV and the ring (ring mode included, and even where the honest
  // answer would be false) — so the next tokens go after the stale tail, at the old positions.
  if (trimNoop_) return true;
  if (nRingLayers_ > 0 && length > 0) {
    const int64_t needLo = std::max<int64_t>(0, length - window_ + 1);
    if (needLo < s.ringValidLo) return false;
  }
  const size_t keep = static_cast<size_t>((length + bs_ - 1) / bs_);
  for (size_t i = keep; i < s.blocks.size(); ++i) releaseBlock(s.blocks[i]);
  s.blocks.resize(keep);
  s.len = length;
  s.ringValidLo = std::min(s.ringValidLo, length);
  return true;
}

int64_t KvPool::length(int64_t id) const { return get(id).len; }

void KvPool::free(int64_t id) {
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

void KvPool::zeroPool() {
  if (blockFloats_ > 0) std::memset(pool_.get(), 0, blockFloats_ * static_cast<size_t>(nBlocks_) * 4);
}

KvStats KvPool::stats() const {
  return KvStats{bs_, nBlocks_, static_cast<int64_t>(freeList_.size()), static_cast<double>(blockFloats_) * 4.0};
}

// ---------------------------------------------------------------------------------------------
// A step's blocks

void KvPool::reserve(KvStep& step) {
  // Capacity for the whole step, simulated before anything changes.
  // The copy-on-write decisions are taken here and applied as taken below (normally the same
  // answer as re-reading refcnt_ there; after freeSharedBlocks an allocation below can hand out a
  // block that an entry of this step still holds, and the count planned here must stay exact).
  int64_t need = 0;
  std::unordered_map<int32_t, int32_t> refDrop;
  std::vector<char> cowPlanned(step.appends.size(), 0);
  for (size_t i = 0; i < step.appends.size(); ++i) {
    const KvStep::Append& a = step.appends[i];
    const Sequence& s = *a.seq;
    const int64_t end = a.pos0 + a.n;
    need += (end + bs_ - 1) / bs_ - static_cast<int64_t>(s.blocks.size());
    if (a.pos0 % bs_ != 0) {
      const int32_t b = s.blocks[static_cast<size_t>(a.pos0 / bs_)];
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
  step.newBlocks.reserve(static_cast<size_t>(need));
  for (KvStep::Append& a : step.appends) {
    Sequence& s = *a.seq;
    const int64_t end = a.pos0 + a.n;
    s.blocks.reserve(static_cast<size_t>((end + bs_ - 1) / bs_));
    a.oldBlocks = s.blocks;
  }
  step.cow.reserve(step.appends.size());
  // -- no failure below this line --
  for (size_t i = 0; i < step.appends.size(); ++i) {
    const KvStep::Append& a = step.appends[i];
    Sequence& s = *a.seq;
    const int64_t end = a.pos0 + a.n;
    if (a.pos0 % bs_ != 0) {
      int32_t& slot = s.blocks[static_cast<size_t>(a.pos0 / bs_)];
      if (cowPlanned[i]) {
        const int32_t nb = allocBlock();
        step.newBlocks.push_back(nb);
        step.cow.emplace_back(slot, nb);
        --refcnt_[static_cast<size_t>(slot)];
        slot = nb;
      }
    }
    while (static_cast<int64_t>(s.blocks.size()) < (end + bs_ - 1) / bs_) {
      const int32_t nb = allocBlock();
      step.newBlocks.push_back(nb);
      s.blocks.push_back(nb);
    }
  }
}

void KvPool::copyOnWrite(const KvStep& step) {
  for (auto& cp : step.cow)
    if (blockFloats_ > 0 && cp.first != cp.second)  // equal only after freeSharedBlocks
      std::memcpy(pool_.get() + static_cast<size_t>(cp.second) * blockFloats_,
                  pool_.get() + static_cast<size_t>(cp.first) * blockFloats_, blockFloats_ * 4);
}

void KvPool::commit(const KvStep& step) {
  for (const KvStep::Append& a : step.appends) {
    Sequence& s = *a.seq;
    s.len = a.pos0 + a.n;
    if (nRingLayers_ > 0) s.ringValidLo = std::max(s.ringValidLo, s.len - ringLen_);
  }
}

void KvPool::undo(KvStep& step, bool kvTouched) {
  for (auto& cp : step.cow) ++refcnt_[static_cast<size_t>(cp.first)];
  for (int32_t b : step.newBlocks) {
    // undo allocBlock (normally 1 -> 0; a block still held elsewhere after freeSharedBlocks keeps
    // its other references) and put it back in the free list, where it was
    --refcnt_[static_cast<size_t>(b)];
    pushFree(b);
  }
  for (KvStep::Append& a : step.appends) a.seq->blocks = std::move(a.oldBlocks);
  if (kvTouched && nRingLayers_ > 0) {
    // The failed step may have overwritten ring slots that still held valid positions: mark the
    // rings unusable (the engine rejects these sequences until they are truncated to 0).
    for (KvStep::Append& a : step.appends) a.seq->ringValidLo = std::numeric_limits<int64_t>::max();
  }
}

}  // namespace amnesia
