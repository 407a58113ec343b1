// AVX-512 kernels (F + BW + VL + DQ, FMA). Compiled with `#pragma GCC target` so the rest of the
// addon stays baseline x86-64; only called after dispatch.cpp checked the CPU.
//
// Reduction order per output element (t, r):
//   dense: one 16-lane accumulator; chunk c = elements [16c, 16c+16) is added with one FMA, chunks in
//          ascending order; the last partial chunk is a zero-masked load (a function of K only);
//          then the fixed 16->1 tree of hsum16() (or reduce8, same bits); then + bias.
//   mxfp4: one 16-lane accumulator; per block (ascending) one FMA with the block's first 16
//          weights then one with the other 16 (element order: mxPerm), the weights being the exact
//          dequantized values E2M1 * 2^(s-127); then hsum16() (or reduce8), + bias.
// Tiles (NR rows x NT tokens) only run independent accumulators side by side.
#include <immintrin.h>

#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC diagnostic push
// GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

namespace amnesia {
namespace {

inline float hsum16(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  const __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
  return _mm_cvtss_f32(d);
}

template <bool BF16>
inline __m512 load_w(const uint8_t* row, int k) {
  if (BF16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * static_cast<size_t>(k)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return _mm512_loadu_ps(row + 4 * static_cast<size_t>(k));
}

template <bool BF16>
inline __m512 load_w_mask(const uint8_t* row, int k, __mmask16 m) {
  if (BF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * static_cast<size_t>(k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return _mm512_maskz_loadu_ps(m, row + 4 * static_cast<size_t>(k));
}

// hsum16 of eight vectors at once: lane i of the result is bit-identical to hsum16(v_i) (the
// same additions with the same operands: v[k] + v[k+8], then + 4 apart, + 2 apart, + 1 apart).
inline __m256 reduce8(__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 v4, __m512 v5, __m512 v6, __m512 v7) {
  // a_k = v_k + v_{k+8}: [a(v0) | a(v1)] as 2 x 8 lanes
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(v2, v3, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s45 = _mm512_add_ps(_mm512_shuffle_f32x4(v4, v5, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(v4, v5, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s67 = _mm512_add_ps(_mm512_shuffle_f32x4(v6, v7, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(v6, v7, _MM_SHUFFLE(3, 2, 3, 2)));
  // b_k = a_k + a_{k+4}: [b(v0) | b(v1) | b(v2) | b(v3)] as 4 x 4 lanes
  const __m512 b0 = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 b1 = _mm512_add_ps(_mm512_shuffle_f32x4(s45, s67, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(s45, s67, _MM_SHUFFLE(3, 1, 3, 1)));
  // c_k = b_k + b_{k+2}: per 128-bit lane q: [c0(v_q), c1(v_q), c0(v_q+4), c1(v_q+4)]
  const __m512 c = _mm512_add_ps(_mm512_shuffle_ps(b0, b1, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 2, 3, 2)));
  // d = c0 + c1: at element 4q (v_q) and 4q + 2 (v_q+4)
  const __m512 d = _mm512_add_ps(c, _mm512_movehdup_ps(c));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, d));
}

// Accumulates rows [r, r+NR) x tokens [t, t+NT) into acc (one accumulator per (row, token)).
template <bool BF16, int NR, int NT>
inline void dense_acc(const DenseArgs& a, int r, int t, __m512 (&acc)[NR][NT]) {
  const uint8_t* w0 = a.W + static_cast<size_t>(r) * a.ldwBytes;
  const size_t ldw = a.ldwBytes;
  const float* x0 = a.x + static_cast<size_t>(t) * a.ldx;
  const size_t ldx = a.ldx;
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_setzero_ps();
  const int K = a.K;
  const int Kv = K & ~15;
  for (int k = 0; k < Kv; k += 16) {
    __m512 wv[NR];
    for (int i = 0; i < NR; ++i) wv[i] = load_w<BF16>(w0 + i * ldw, k);
    for (int j = 0; j < NT; ++j) {
      const __m512 xv = _mm512_loadu_ps(x0 + j * ldx + k);
      for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  if (Kv < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - Kv)) - 1u);
    __m512 wv[NR];
    for (int i = 0; i < NR; ++i) wv[i] = load_w_mask<BF16>(w0 + i * ldw, Kv, m);
    for (int j = 0; j < NT; ++j) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x0 + j * ldx + Kv);
      for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
}

// Stores: y[t+j][r+i] = hsum16(acc[i][j]) (+ bias[r+i]). The 8x1 and 4x4 shapes reduce eight
// accumulators at once with reduce8, which gives the same bits as hsum16 on each.
template <int NR, int NT>
inline void store_tile(__m512 (&acc)[NR][NT], const float* bias, float* y, size_t ldy, int r, int t) {
  for (int i = 0; i < NR; ++i) {
    for (int j = 0; j < NT; ++j) {
      float s = hsum16(acc[i][j]);
      if (bias != nullptr) s = s + bias[r + i];
      y[static_cast<size_t>(t + j) * ldy + (r + i)] = s;
    }
  }
}

inline void store_8x1(__m512 (&acc)[8][1], const float* bias, float* y, size_t ldy, int r, int t) {
  __m256 s = reduce8(acc[0][0], acc[1][0], acc[2][0], acc[3][0], acc[4][0], acc[5][0], acc[6][0], acc[7][0]);
  if (bias != nullptr) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + r));
  _mm256_storeu_ps(y + static_cast<size_t>(t) * ldy + r, s);
}

inline void store_4x4(__m512 (&acc)[4][4], const float* bias, float* y, size_t ldy, int r, int t) {
  __m256 b2 = _mm256_setzero_ps();
  if (bias != nullptr) {
    const __m128 b = _mm_loadu_ps(bias + r);
    b2 = _mm256_insertf128_ps(_mm256_castps128_ps256(b), b, 1);
  }
  for (int j = 0; j < 4; j += 2) {
    __m256 s = reduce8(acc[0][j], acc[1][j], acc[2][j], acc[3][j], acc[0][j + 1], acc[1][j + 1], acc[2][j + 1], acc[3][j + 1]);
    if (bias != nullptr) s = _mm256_add_ps(s, b2);
    _mm_storeu_ps(y + static_cast<size_t>(t + j) * ldy + r, _mm256_castps256_ps128(s));
    _mm_storeu_ps(y + static_cast<size_t>(t + j + 1) * ldy + r, _mm256_extractf128_ps(s, 1));
  }
}

template <bool BF16, int NR, int NT>
inline void dense_tile(const DenseArgs& a, int r, int t) {
  __m512 acc[NR][NT];
  dense_acc<BF16, NR, NT>(a, r, t, acc);
  store_tile<NR, NT>(acc, a.bias, a.y, a.ldy, r, t);
}

template <bool BF16>
inline void dense_tile_8x1(const DenseArgs& a, int r, int t) {
  __m512 acc[8][1];
  dense_acc<BF16, 8, 1>(a, r, t, acc);
  store_8x1(acc, a.bias, a.y, a.ldy, r, t);
}

template <bool BF16>
inline void dense_tile_4x4(const DenseArgs& a, int r, int t) {
  __m512 acc[4][4];
  dense_acc<BF16, 4, 4>(a, r, t, acc);
  store_4x4(acc, a.bias, a.y, a.ldy, r, t);
}

// All tokens for rows [r, r+NR): 4-token tiles, remainder tokens in smaller tiles.
template <bool BF16, int NR>
inline void dense_rows(const DenseArgs& a, int r) {
  int t = 0;
  for (; t + 4 <= a.T; t += 4) {
    if (NR == 4) dense_tile_4x4<BF16>(a, r, t);
    else dense_tile<BF16, NR, 4>(a, r, t);
  }
  switch (a.T - t) {
    case 3: dense_tile<BF16, NR, 3>(a, r, t); break;
    case 2: dense_tile<BF16, NR, 2>(a, r, t); break;
    case 1: dense_tile<BF16, NR, 1>(a, r, t); break;
    default: break;
  }
}

template <bool BF16>
void dense(const DenseArgs& a, int r0, int r1) {
  int r = r0;
  if (a.T == 1) {
    for (; r + 8 <= r1; r += 8) dense_tile_8x1<BF16>(a, r, 0);
    for (; r < r1; ++r) dense_tile<BF16, 1, 1>(a, r, 0);
    return;
  }
  for (; r + 4 <= r1; r += 4) dense_rows<BF16, 4>(a, r);
  for (; r < r1; ++r) dense_rows<BF16, 1>(a, r);
}

void dense_bf16(const DenseArgs& a, int r0, int r1) { dense<true>(a, r0, r1); }
void dense_f32(const DenseArgs& a, int r0, int r1) { dense<false>(a, r0, r1); }

// One block of one row -> 32 weights as two fp32 vectors. The 16 block bytes are broadcast to the
// four 128-bit lanes (8 words each); word lane j is shifted right by 4*(j/8), so its low 4 bits are
// nibble j/8 of word j%8, i.e. element e(j) = 4*(j%8) + j/8; vpermw maps codes to the block's
// bf16 weights (exact); dword lane m then holds words 2m (low half) and 2m+1 (high half), which
// become fp32 by << 16 and by masking the low half.
inline void mx_decode(const uint8_t* blk, const uint16_t* lut, __m512i shifts, __m512& even, __m512& odd) {
  const __m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
  const __m512i w = _mm512_permutexvar_epi16(_mm512_srlv_epi16(b, shifts), _mm512_load_si512(lut));
  even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// Accumulates rows [r, r+NR) x tokens [t, t+NT): one accumulator per (row, token), two FMAs per
// block (the even-lane vector, then the odd-lane vector, see mx_decode).
template <int NR, int NT>
inline void mx_acc(const MxArgs& a, int r, int t, const uint16_t* lutAll, __m512 (&acc)[NR][NT]) {
  const size_t nb = static_cast<size_t>(a.nb);
  const uint8_t* blk0 = a.blocks + static_cast<size_t>(r) * nb * 16;
  const uint8_t* sc0 = a.scales + static_cast<size_t>(r) * nb;
  const float* x0 = a.xp + static_cast<size_t>(t) * a.ldx;
  const size_t ldx = a.ldx;
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_setzero_ps();
  const __m512i shifts = _mm512_set_epi16(12, 12, 12, 12, 12, 12, 12, 12, 8, 8, 8, 8, 8, 8, 8, 8,
                                          4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
  for (size_t g = 0; g < nb; ++g) {
    __m512 we[NR], wo[NR];
    for (int i = 0; i < NR; ++i)
      mx_decode(blk0 + (i * nb + g) * 16, lutAll + static_cast<size_t>(sc0[i * nb + g]) * 32, shifts, we[i], wo[i]);
    for (int j = 0; j < NT; ++j) {
      const __m512 xe = _mm512_loadu_ps(x0 + j * ldx + g * 32);
      const __m512 xo = _mm512_loadu_ps(x0 + j * ldx + g * 32 + 16);
      for (int i = 0; i < NR; ++i) {
        acc[i][j] = _mm512_fmadd_ps(we[i], xe, acc[i][j]);
        acc[i][j] = _mm512_fmadd_ps(wo[i], xo, acc[i][j]);
      }
    }
  }
}

template <int NR, int NT>
inline void mx_tile(const MxArgs& a, int r, int t, const uint16_t* lut) {
  __m512 acc[NR][NT];
  mx_acc<NR, NT>(a, r, t, lut, acc);
  store_tile<NR, NT>(acc, a.bias, a.y, a.ldy, r, t);
}

inline void mx_tile_8x1(const MxArgs& a, int r, int t, const uint16_t* lut) {
  __m512 acc[8][1];
  mx_acc<8, 1>(a, r, t, lut, acc);
  store_8x1(acc, a.bias, a.y, a.ldy, r, t);
}

inline void mx_tile_4x4(const MxArgs& a, int r, int t, const uint16_t* lut) {
  __m512 acc[4][4];
  mx_acc<4, 4>(a, r, t, lut, acc);
  store_4x4(acc, a.bias, a.y, a.ldy, r, t);
}

template <int NR>
inline void mx_rows(const MxArgs& a, int r, const uint16_t* lut) {
  int t = 0;
  for (; t + 4 <= a.T; t += 4) {
    if (NR == 4) mx_tile_4x4(a, r, t, lut);
    else mx_tile<NR, 4>(a, r, t, lut);
  }
  switch (a.T - t) {
    case 3: mx_tile<NR, 3>(a, r, t, lut); break;
    case 2: mx_tile<NR, 2>(a, r, t, lut); break;
    case 1: mx_tile<NR, 1>(a, r, t, lut); break;
    default: break;
  }
}

void mxfp4(const MxArgs& a, int r0, int r1) {
  const uint16_t* lut = mxLutBf16();
  int r = r0;
  if (a.T == 1) {
    for (; r + 8 <= r1; r += 8) mx_tile_8x1(a, r, 0, lut);
    for (; r < r1; ++r) mx_tile<1, 1>(a, r, 0, lut);
    return;
  }
  for (; r + 4 <= r1; r += 4) mx_rows<4>(a, r, lut);
  for (; r < r1; ++r) mx_rows<1>(a, r, lut);
}

float dot(const float* a, const float* b, int n) {
  __m512 acc = _mm512_setzero_ps();
  int k = 0;
  for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
  if (k < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1u);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), acc);
  }
  return hsum16(acc);
}

void axpy(float* y, float s, const float* x, int n) {
  const __m512 sv = _mm512_set1_ps(s);
  int k = 0;
  for (; k + 16 <= n; k += 16) _mm512_storeu_ps(y + k, _mm512_fmadd_ps(sv, _mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k)));
  if (k < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1u);
    const __m512 r = _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, y + k));
    _mm512_mask_storeu_ps(y + k, m, r);
  }
}

// Scores: per (head, key) one 16-lane accumulator over the head dimension (masked tail), exactly
// as dot(); groups of 8 keys are reduced with reduce8 (same bits as hsum16).
void attn_scores(const float* q, int nq, int hd, const float* K, size_t ks, int n, float scale, float* S, size_t ldS) {
  const int hv = hd & ~15;
  const __mmask16 m = static_cast<__mmask16>((1u << (hd - hv)) - 1u);
  const __m256 sc8 = _mm256_set1_ps(scale);
  for (int h = 0; h < nq; ++h) {
    const float* qh = q + static_cast<size_t>(h) * hd;
    float* sh = S + static_cast<size_t>(h) * ldS;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      const float* k0 = K + static_cast<size_t>(i) * ks;
      __m512 acc[8];
      for (int u = 0; u < 8; ++u) acc[u] = _mm512_setzero_ps();
      for (int c = 0; c < hv; c += 16) {
        const __m512 qv = _mm512_loadu_ps(qh + c);
        for (int u = 0; u < 8; ++u) acc[u] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + u * ks + c), acc[u]);
      }
      if (hv < hd) {
        const __m512 qv = _mm512_maskz_loadu_ps(m, qh + hv);
        for (int u = 0; u < 8; ++u) acc[u] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + u * ks + hv), acc[u]);
      }
      _mm256_storeu_ps(sh + i, _mm256_mul_ps(reduce8(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]), sc8));
    }
    for (; i < n; ++i) sh[i] = dot(qh, K + static_cast<size_t>(i) * ks, hd) * scale;
  }
}

template <int NH>
inline void accum_group(float* o, int hd, const float* V, size_t vs, int n, const float* P, size_t ldP) {
  for (int c = 0; c < hd; c += 16) {
    const __mmask16 m = c + 16 <= hd ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (hd - c)) - 1u);
    __m512 acc[NH];
    for (int u = 0; u < NH; ++u) acc[u] = _mm512_maskz_loadu_ps(m, o + static_cast<size_t>(u) * hd + c);
    for (int i = 0; i < n; ++i) {
      const __m512 v = _mm512_maskz_loadu_ps(m, V + static_cast<size_t>(i) * vs + c);
      for (int u = 0; u < NH; ++u) acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(P[static_cast<size_t>(u) * ldP + i]), v, acc[u]);
    }
    for (int u = 0; u < NH; ++u) _mm512_mask_storeu_ps(o + static_cast<size_t>(u) * hd + c, m, acc[u]);
  }
}

// Output: per element o = fma(p_i, v_i, o) for keys in ascending order (as axpy), heads of one
// KV group share each V load.
void attn_accum(float* o, int nq, int hd, const float* V, size_t vs, int n, const float* P, size_t ldP) {
  for (int h0 = 0; h0 < nq; h0 += 8) {
    float* oh = o + static_cast<size_t>(h0) * hd;
    const float* ph = P + static_cast<size_t>(h0) * ldP;
    switch (nq - h0 >= 8 ? 8 : nq - h0) {
      case 8: accum_group<8>(oh, hd, V, vs, n, ph, ldP); break;
      case 7: accum_group<7>(oh, hd, V, vs, n, ph, ldP); break;
      case 6: accum_group<6>(oh, hd, V, vs, n, ph, ldP); break;
      case 5: accum_group<5>(oh, hd, V, vs, n, ph, ldP); break;
      case 4: accum_group<4>(oh, hd, V, vs, n, ph, ldP); break;
      case 3: accum_group<3>(oh, hd, V, vs, n, ph, ldP); break;
      case 2: accum_group<2>(oh, hd, V, vs, n, ph, ldP); break;
      default: accum_group<1>(oh, hd, V, vs, n, ph, ldP); break;
    }
  }
}

// Block element order (see mx_decode): lane m of the first vector is element e(2m), of the second
// e(2m+1), with e(j) = 4*(j%8) + j/8.
const KernelSet kSet = {"avx512", {0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27, 4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31}, dense_bf16, dense_f32, mxfp4, dot, axpy, attn_scores, attn_accum};

}  // namespace

const KernelSet* kernels_avx512() { return &kSet; }

}  // namespace amnesia

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

namespace amnesia {
const KernelSet* kernels_avx512() { return nullptr; }
}  // namespace amnesia

#endif
