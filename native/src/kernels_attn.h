// Attention kernels written once on top of a kernel set's own dot() and axpy(), for the sets that
// have no dedicated attention code (scalar, avx2; avx512 has its own in kernels_avx512.cpp).
//
// Include this *after* the kernel file's `#pragma GCC target(...)`: the templates are then
// compiled for that file's instruction set when the file instantiates them with its dot/axpy.
// Everything here is in an anonymous namespace, so each kernel file gets its own copies and the
// linker never merges an AVX2 instantiation with a scalar one. (No include guard on purpose: a
// second inclusion fails to compile instead of silently keeping the first one's ISA.)
#include <cstddef>

#include "kernels.h"

namespace amnesia {
namespace {

using DotFn = float (*)(const float* a, const float* b, int n);
using AxpyFn = void (*)(float* y, float s, const float* x, int n);

// S[h*ldS + i] = Dot(q_h, K_i, hd) * scale for nq query heads (q_h = q + h*hd) and n keys
// (K_i = K + i*ks): bit-identical to calling Dot per (h, i), as KernelSet::attn_scores promises.
template <DotFn Dot>
void attn_scores_by_dot(const float* q, int nq, int hd, const float* K, size_t ks, int n, float scale, float* S, size_t ldS) {
  for (int h = 0; h < nq; ++h)
    for (int i = 0; i < n; ++i) S[static_cast<size_t>(h) * ldS + i] = Dot(q + static_cast<size_t>(h) * hd, K + static_cast<size_t>(i) * ks, hd) * scale;
}

// o_h += P[h*ldP + i] * V_i for keys i = 0..n-1 in ascending order (o_h = o + h*hd, V_i = V + i*vs),
// each step one Axpy, as KernelSet::attn_accum promises.
template <AxpyFn Axpy>
void attn_accum_by_axpy(float* o, int nq, int hd, const float* V, size_t vs, int n, const float* P, size_t ldP) {
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < nq; ++h) Axpy(o + static_cast<size_t>(h) * hd, P[static_cast<size_t>(h) * ldP + i], V + static_cast<size_t>(i) * vs, hd);
}

}  // namespace
}  // namespace amnesia
