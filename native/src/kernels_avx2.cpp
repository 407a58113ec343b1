// AVX2 + FMA kernels. Compiled with `#pragma GCC target`; only called after dispatch.cpp checked
// the CPU.
//
// Reduction order per output element (t, r):
//   dense: one 8-lane accumulator, chunks of 8 elements in ascending order (one FMA each); the last
//          partial chunk is zero-padded through a small stack copy (a function of K only); then the
//          fixed 8->1 tree of hsum8(); then + bias.
//   mxfp4: two 8-lane accumulators per element: "lo" gets even elements 0..14 then 16..30 of each
//          32-block, "hi" the odd ones; blocks ascending; weights are LUT * 2^(s-127) (exact);
//          then lo+hi lane-wise, hsum8(), + bias.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC diagnostic push
// GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c")

#include "kernels_attn.h"  // after the pragma: compiled for AVX2 here

namespace amnesia {
namespace {

inline float hsum8(__m256 v) {
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  const __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
  return _mm_cvtss_f32(d);
}

template <bool BF16>
inline __m256 load_w(const uint8_t* row, int k) {
  if (BF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * static_cast<size_t>(k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  return _mm256_loadu_ps(reinterpret_cast<const float*>(row + 4 * static_cast<size_t>(k)));
}

template <bool BF16>
inline __m256 load_w_tail(const uint8_t* row, int k, int n) {
  alignas(32) uint8_t tmp[32] = {0};
  std::memcpy(tmp, row + (BF16 ? 2 : 4) * static_cast<size_t>(k), static_cast<size_t>(n) * (BF16 ? 2 : 4));
  return load_w<BF16>(tmp, 0);
}

inline __m256 load_x_tail(const float* x, int n) {
  alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(tmp, x, static_cast<size_t>(n) * 4);
  return _mm256_load_ps(tmp);
}

template <bool BF16, int NR, int NT>
inline void dense_tile(const DenseArgs& a, int r, int t) {
  __m256 acc[NR][NT];
  const uint8_t* w[NR];
  const float* x[NT];
  for (int i = 0; i < NR; ++i) {
    w[i] = a.W + static_cast<size_t>(r + i) * a.ldwBytes;
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  for (int j = 0; j < NT; ++j) x[j] = a.x + static_cast<size_t>(t + j) * a.ldx;
  const int K = a.K;
  const int Kv = K & ~7;
  for (int k = 0; k < Kv; k += 8) {
    __m256 wv[NR];
    for (int i = 0; i < NR; ++i) wv[i] = load_w<BF16>(w[i], k);
    for (int j = 0; j < NT; ++j) {
      const __m256 xv = _mm256_loadu_ps(x[j] + k);
      for (int i = 0; i < NR; ++i) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  if (Kv < K) {
    __m256 wv[NR];
    for (int i = 0; i < NR; ++i) wv[i] = load_w_tail<BF16>(w[i], Kv, K - Kv);
    for (int j = 0; j < NT; ++j) {
      const __m256 xv = load_x_tail(x[j] + Kv, K - Kv);
      for (int i = 0; i < NR; ++i) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  for (int i = 0; i < NR; ++i) {
    for (int j = 0; j < NT; ++j) {
      float s = hsum8(acc[i][j]);
      if (a.bias != nullptr) s = s + a.bias[r + i];
      a.y[static_cast<size_t>(t + j) * a.ldy + (r + i)] = s;
    }
  }
}

template <bool BF16, int NR>
inline void dense_rows(const DenseArgs& a, int r) {
  int t = 0;
  for (; t + 2 <= a.T; t += 2) dense_tile<BF16, NR, 2>(a, r, t);
  if (t < a.T) dense_tile<BF16, NR, 1>(a, r, t);
}

template <bool BF16>
void dense(const DenseArgs& a, int r0, int r1) {
  int r = r0;
  for (; r + 4 <= r1; r += 4) dense_rows<BF16, 4>(a, r);
  for (; r < r1; ++r) dense_rows<BF16, 1>(a, r);
}

void dense_bf16(const DenseArgs& a, int r0, int r1) { dense<true>(a, r0, r1); }
void dense_f32(const DenseArgs& a, int r0, int r1) { dense<false>(a, r0, r1); }

// 8 codes (int32 lanes) -> weights: magnitude from the positive half of the block's scaled table
// (codes & 7; permutevar8x32 uses the low 3 bits), sign from code bit 3.
inline __m256 e2m1(__m256i idx, __m256 lutpos, __m256i signbit) {
  const __m256 mag = _mm256_permutevar8x32_ps(lutpos, idx);
  const __m256i sgn = _mm256_and_si256(_mm256_slli_epi32(idx, 28), signbit);
  return _mm256_xor_ps(mag, _mm256_castsi256_ps(sgn));
}

template <int NR, int NT>
inline void mx_tile(const MxArgs& a, int r, int t, const float* lutAll) {
  __m256 al[NR][NT], ah[NR][NT];
  const uint8_t* blk[NR];
  const uint8_t* sc[NR];
  const float* x[NT];
  const size_t nb = static_cast<size_t>(a.nb);
  for (int i = 0; i < NR; ++i) {
    blk[i] = a.blocks + static_cast<size_t>(r + i) * nb * 16;
    sc[i] = a.scales + static_cast<size_t>(r + i) * nb;
    for (int j = 0; j < NT; ++j) {
      al[i][j] = _mm256_setzero_ps();
      ah[i][j] = _mm256_setzero_ps();
    }
  }
  for (int j = 0; j < NT; ++j) x[j] = a.xp + static_cast<size_t>(t + j) * a.ldx;
  const __m256i signbit = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i m4 = _mm256_set1_epi32(0x0F);
  for (size_t g = 0; g < nb; ++g) {
    __m256 w0[NR], w1[NR], w2[NR], w3[NR];
    for (int i = 0; i < NR; ++i) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[i] + g * 16));
      const __m256 lut = _mm256_load_ps(lutAll + static_cast<size_t>(sc[i][g]) * 16);  // positive half
      const __m256i b0 = _mm256_cvtepu8_epi32(b);                     // bytes 0..7
      const __m256i b1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));  // bytes 8..15
      w0[i] = e2m1(_mm256_and_si256(b0, m4), lut, signbit);
      w1[i] = e2m1(_mm256_and_si256(b1, m4), lut, signbit);
      w2[i] = e2m1(_mm256_srli_epi32(b0, 4), lut, signbit);
      w3[i] = e2m1(_mm256_srli_epi32(b1, 4), lut, signbit);
    }
    for (int j = 0; j < NT; ++j) {
      const float* xg = x[j] + g * 32;
      const __m256 x0 = _mm256_loadu_ps(xg);
      const __m256 x1 = _mm256_loadu_ps(xg + 8);
      const __m256 x2 = _mm256_loadu_ps(xg + 16);
      const __m256 x3 = _mm256_loadu_ps(xg + 24);
      for (int i = 0; i < NR; ++i) {
        al[i][j] = _mm256_fmadd_ps(w0[i], x0, al[i][j]);
        ah[i][j] = _mm256_fmadd_ps(w2[i], x2, ah[i][j]);
        al[i][j] = _mm256_fmadd_ps(w1[i], x1, al[i][j]);
        ah[i][j] = _mm256_fmadd_ps(w3[i], x3, ah[i][j]);
      }
    }
  }
  for (int i = 0; i < NR; ++i) {
    for (int j = 0; j < NT; ++j) {
      float s = hsum8(_mm256_add_ps(al[i][j], ah[i][j]));
      if (a.bias != nullptr) s = s + a.bias[r + i];
      a.y[static_cast<size_t>(t + j) * a.ldy + (r + i)] = s;
    }
  }
}

template <int NR>
inline void mx_rows(const MxArgs& a, int r, const float* lut) {
  int t = 0;
  for (; t + 3 <= a.T; t += 3) mx_tile<NR, 3>(a, r, t, lut);
  switch (a.T - t) {
    case 2: mx_tile<NR, 2>(a, r, t, lut); break;
    case 1: mx_tile<NR, 1>(a, r, t, lut); break;
    default: break;
  }
}

void mxfp4(const MxArgs& a, int r0, int r1) {
  const float* lut = mxLut();
  int r = r0;
  if (a.T == 1) {
    for (; r + 2 <= r1; r += 2) mx_tile<2, 1>(a, r, 0, lut);
    for (; r < r1; ++r) mx_tile<1, 1>(a, r, 0, lut);
    return;
  }
  for (; r < r1; ++r) mx_rows<1>(a, r, lut);
}

float dot(const float* a, const float* b, int n) {
  __m256 acc = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= n; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
  if (k < n) acc = _mm256_fmadd_ps(load_x_tail(a + k, n - k), load_x_tail(b + k, n - k), acc);
  return hsum8(acc);
}

void axpy(float* y, float s, const float* x, int n) {
  const __m256 sv = _mm256_set1_ps(s);
  int k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(y + k, _mm256_fmadd_ps(sv, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
  for (; k < n; ++k) y[k] = std::fma(s, x[k], y[k]);
}

// pair-split: even elements (low nibbles) then odd elements (high nibbles)
const KernelSet kSet = {"avx2", {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}, dense_bf16, dense_f32, mxfp4, dot, axpy, attn_scores_by_dot<dot>, attn_accum_by_axpy<axpy>};

}  // namespace

const KernelSet* kernels_avx2() { return &kSet; }

}  // namespace amnesia

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

namespace amnesia {
const KernelSet* kernels_avx2() { return nullptr; }
}  // namespace amnesia

#endif
