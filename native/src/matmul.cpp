// The threaded matmul drivers of the forward pass. Threads split output rows (of one matrix, or of
// several matrices or experts handed over together), never a reduction: each output element is
// computed whole by one kernel call, so results do not depend on the thread count.
#include <algorithm>
#include <limits>

#include "engine.h"

namespace amnesia {

// bf16/f32 matmuls y = x · Wᵀ (+ bias) of one stage (e.g. q, k and v together).
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
    if (parts > 1) return runDenseSplitK(s, tk.r0, tk.r1, parts);
    auto kern = s.W->wt == WType::BF16 ? K_->dense_bf16 : K_->dense_f32;
    DenseArgs a{s.W->data, s.W->rowBytes(), s.bias, s.x, s.ldx, s.T, static_cast<int>(s.W->cols), s.y, s.ldy};
    kern(a, tk.r0, tk.r1);
  };
  if (tasks.size() == 1 || chunk == std::numeric_limits<int32_t>::max()) {
    for (size_t i = 0; i < tasks.size(); ++i) fn(static_cast<int>(i), 0);
  } else {
    threads_->run(static_cast<int>(tasks.size()), fn);
  }
}

// Negative control (setDebug batchVariantReduction): rows [r0, r1) of one matmul with each dot
// product split into `parts` partial sums over K, whose number depends on the step's token count.
void EngineCore::runDenseSplitK(const DenseSeg& s, int r0, int r1, int parts) {
  auto kern = s.W->wt == WType::BF16 ? K_->dense_bf16 : K_->dense_f32;
  const int Kd = static_cast<int>(s.W->cols);
  const int n = r1 - r0;
  const size_t esz = s.W->wt == WType::BF16 ? 2 : 4;
  std::vector<float> part(static_cast<size_t>(parts) * static_cast<size_t>(s.T) * static_cast<size_t>(n));
  for (int p = 0; p < parts; ++p) {
    const int k0 = static_cast<int>(static_cast<int64_t>(Kd) * p / parts);
    const int k1 = static_cast<int>(static_cast<int64_t>(Kd) * (p + 1) / parts);
    DenseArgs a{s.W->data + static_cast<size_t>(r0) * s.W->rowBytes() + static_cast<size_t>(k0) * esz,
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
      if (s.bias != nullptr) acc = acc + s.bias[r0 + r];
      s.y[static_cast<size_t>(t) * s.ldy + static_cast<size_t>(r0 + r)] = acc;
    }
  }
}

// MXFP4 matmuls of the MoE block: one segment per expert that has tokens.
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

}  // namespace amnesia
