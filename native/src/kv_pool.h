// The KV cache: a pool of fixed-size blocks that sequences hold through block tables (forks share
// full blocks, a shared partial block is copied on write), and in ring mode a per-sequence ring for
// the sliding-window layers instead.
//
// Layout, per layer l and position p of a sequence s (kvStride = kvHeads * headDim floats a row):
//   block layer: pool[block s.blocks[p / bs]][blockLayer(l)][K|V][p % bs][kvStride]
//   ring layer:  s.ring[ringIndex(l)][K|V][p % ringLen][kvStride]     (ringLen = window + slack)
//
// All methods run on the JS thread except slot(), forEachRun() and copyOnWrite(), which the step's
// worker thread calls on the blocks that reserve() handed to the step.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model.h"

namespace amnesia {

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

// The KV side of one step: which positions each sequence appends (filled by the caller), and what
// reserve() changed so that undo() can put it back.
struct KvStep {
  struct Append {
    Sequence* seq;
    int64_t pos0;                   // first new position (the sequence's length before the step)
    int64_t n;                      // new positions
    std::vector<int32_t> oldBlocks; // block table before the step (for undo)
  };
  std::vector<Append> appends;
  std::vector<int32_t> newBlocks;
  std::vector<std::pair<int32_t, int32_t>> cow;  // (shared src, private dst): copy before compute
};

class KvPool {
 public:
  // Options were checked by the caller; throws when the pool cannot be allocated.
  KvPool(const Config& c, int blockSize, int64_t blocks, bool ring, int ringSlack);

  int blockSize() const { return bs_; }
  int ringSlack() const { return ringSlack_; }
  int ringLayers() const { return nRingLayers_; }
  bool isRingLayer(int layer) const { return ringIndex_[static_cast<size_t>(layer)] >= 0; }
  Sequence* find(int64_t id);  // nullptr when unknown

  // Sequences (the engine's public API; errors name the API function).
  int64_t create();
  int64_t fork(int64_t id, int64_t length);
  bool truncate(int64_t id, int64_t length);
  int64_t length(int64_t id) const;
  void free(int64_t id);
  KvStats stats() const;

  // Negative controls (setDebug kvTrimNoop / freeSharedBlocks); see truncate() and free().
  void setTrimNoop(bool on) { trimNoop_ = on; }
  void setFreeShared(bool on) { freeShared_ = on; }
  // Zeroes every block (for the attendPastEnd negative control: stale slots then start as zeros).
  void zeroPool();

  // A step: reserve() allocates every block the appends need (copy-on-write of shared partial
  // blocks included) or throws having changed nothing; then exactly one of commit() (the lengths
  // grow) or undo() (blocks and tables go back; kvTouched: the step may have overwritten ring slots).
  void reserve(KvStep& step);
  void copyOnWrite(const KvStep& step);  // worker thread, before the first K/V write
  void commit(const KvStep& step);
  void undo(KvStep& step, bool kvTouched);

  // K (kv = 0) or V (kv = 1) row of one position: kvStride floats.
  float* slot(Sequence& s, int layer, int64_t pos, int kv);

  // Visits the keys lo..p of one layer in ascending order as contiguous runs:
  // f(index of the run's first key from lo, K row ptr, V row ptr, run length), each pointer
  // already offset by `col` floats; rows inside a run are kvStride floats apart.
  template <class F>
  void forEachRun(const Sequence& s, int layer, int64_t lo, int64_t p, size_t col, F&& f) const;

 private:
  Sequence& get(int64_t id);
  const Sequence& get(int64_t id) const;
  int32_t allocBlock();
  void releaseBlock(int32_t b);
  void pushFree(int32_t b);
  std::vector<float> newRing() const;

  int window_;   // sliding window (positions)
  int bs_;       // block size (positions)
  int64_t nBlocks_;
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
  // block free while still referenced (see free()).
  std::vector<int32_t> refcnt_;
  std::vector<uint8_t> isFree_;
  std::vector<int32_t> freeList_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> seqs_;
  int64_t nextSeqId_ = 1;
  bool trimNoop_ = false;    // negative control: truncate keeps everything (exo #1362)
  bool freeShared_ = false;  // negative control: free releases blocks other sequences still use
};

template <class F>
void KvPool::forEachRun(const Sequence& s, int layer, int64_t lo, int64_t p, size_t col, F&& f) const {
  const int ri = ringIndex_[static_cast<size_t>(layer)];
  const size_t n = static_cast<size_t>(p - lo + 1);
  if (ri >= 0) {
    const float* Kb = s.ring.data() + (static_cast<size_t>(ri) * 2) * ringLen_ * static_cast<size_t>(kvStride_);
    const float* Vb = Kb + static_cast<size_t>(ringLen_) * kvStride_;
    size_t i = 0;
    size_t slot = static_cast<size_t>(lo % ringLen_);
    while (i < n) {
      const size_t cnt = std::min(n - i, static_cast<size_t>(ringLen_) - slot);
      const size_t o = slot * kvStride_ + col;
      f(i, Kb + o, Vb + o, static_cast<int>(cnt));
      i += cnt;
      slot = 0;
    }
  } else {
    const int bl = blockLayer_[static_cast<size_t>(layer)];
    size_t i = 0;
    int64_t j = lo;
    while (j <= p) {
      const int64_t bi = j / bs_;
      const int64_t off = j - bi * bs_;
      const float* base = pool_.get() + static_cast<size_t>(s.blocks[static_cast<size_t>(bi)]) * blockFloats_ +
                          static_cast<size_t>(bl) * 2 * bs_ * static_cast<size_t>(kvStride_);
      const size_t o = static_cast<size_t>(off) * kvStride_ + col;
      const int64_t cnt = std::min<int64_t>(bs_ - off, p - j + 1);
      f(i, base + o, base + static_cast<size_t>(bs_) * kvStride_ + o, static_cast<int>(cnt));
      i += static_cast<size_t>(cnt);
      j += cnt;
    }
  }
}

}  // namespace amnesia
