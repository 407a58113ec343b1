// Portable kernels (no SIMD intrinsics). Reduction order per output element: 8 interleaved partial
// sums (element k goes to partial k % 8, in ascending k), folded as
// ((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)); then + bias. MXFP4: per 32-block, the 16 even elements
// then the 16 odd elements (pair-split order), element j of each half going to partial j % 8.
#include <cstring>

#include "kernels.h"
#include "kernels_attn.h"  // attn_scores / attn_accum from dot / axpy

namespace amnesia {
namespace {

inline float bf16_at(const uint8_t* p, size_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f32_at(const uint8_t* p, size_t i) {
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}

inline float fold8(const float* p) { return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7])); }

template <bool BF16>
void dense(const DenseArgs& a, int r0, int r1) {
  for (int r = r0; r < r1; ++r) {
    const uint8_t* w = a.W + static_cast<size_t>(r) * a.ldwBytes;
    for (int t = 0; t < a.T; ++t) {
      const float* x = a.x + static_cast<size_t>(t) * a.ldx;
      float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int k = 0; k < a.K; ++k) {
        float wk = BF16 ? bf16_at(w, k) : f32_at(w, k);
        p[k & 7] = p[k & 7] + wk * x[k];
      }
      float s = fold8(p);
      if (a.bias != nullptr) s = s + a.bias[r];
      a.y[static_cast<size_t>(t) * a.ldy + r] = s;
    }
  }
}

void dense_bf16(const DenseArgs& a, int r0, int r1) { dense<true>(a, r0, r1); }
void dense_f32(const DenseArgs& a, int r0, int r1) { dense<false>(a, r0, r1); }

void mxfp4(const MxArgs& a, int r0, int r1) {
  const float* lutAll = mxLut();
  for (int r = r0; r < r1; ++r) {
    const uint8_t* blk = a.blocks + static_cast<size_t>(r) * a.nb * 16;
    const uint8_t* sc = a.scales + static_cast<size_t>(r) * a.nb;
    for (int t = 0; t < a.T; ++t) {
      const float* xp = a.xp + static_cast<size_t>(t) * a.ldx;
      float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int g = 0; g < a.nb; ++g) {
        const uint8_t* b = blk + static_cast<size_t>(g) * 16;
        const float* lut = lutAll + static_cast<size_t>(sc[g]) * 16;
        const float* xg = xp + static_cast<size_t>(g) * 32;
        for (int j = 0; j < 16; ++j) p[j & 7] = p[j & 7] + lut[b[j] & 0x0F] * xg[j];
        for (int j = 0; j < 16; ++j) p[j & 7] = p[j & 7] + lut[b[j] >> 4] * xg[16 + j];
      }
      float s = fold8(p);
      if (a.bias != nullptr) s = s + a.bias[r];
      a.y[static_cast<size_t>(t) * a.ldy + r] = s;
    }
  }
}

float dot(const float* a, const float* b, int n) {
  float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < n; ++k) p[k & 7] = p[k & 7] + a[k] * b[k];
  return fold8(p);
}

void axpy(float* y, float s, const float* x, int n) {
  for (int i = 0; i < n; ++i) y[i] = y[i] + s * x[i];
}

// pair-split: even elements (low nibbles) then odd elements (high nibbles)
const KernelSet kSet = {"scalar", {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}, dense_bf16, dense_f32, mxfp4, dot, axpy, attn_scores_by_dot<dot>, attn_accum_by_axpy<axpy>};

}  // namespace

const KernelSet* kernels_scalar() { return &kSet; }

}  // namespace amnesia
