// Kernel interface. One implementation per instruction set (kernels_{scalar,avx2,avx512}.cpp),
// chosen once at load (dispatch.cpp).
//
// Exactness rule shared by every kernel here: the value written for one output element
// (token t, row r) is a fixed function of (weight row r, activation row t, K) — the reduction
// order depends on nothing else: not on T (how many tokens the call has), not on the row range
// [r0, r1) a thread was given, not on which other rows/tokens share a tile. Tiles only decide
// how many independent (t, r) accumulators run side by side; each accumulator sees exactly the
// same sequence of operations it would see alone. Tails (K not a multiple of the vector width) are
// a function of K only.
#pragma once
#include <cstddef>
#include <cstdint>

namespace amnesia {

enum class WType { BF16 = 0, F32 = 1 };

// y[t*ldy + r] = dot(W row r, x[t*ldx .. +K]) (+ bias[r] when bias != nullptr), r in [r0, r1), t in [0, T).
// W: rows of K elements, row stride ldwBytes bytes; may be unaligned (only unaligned loads are used).
struct DenseArgs {
  const uint8_t* W;
  size_t ldwBytes;
  const float* bias;
  const float* x;
  size_t ldx;
  int T;
  int K;
  float* y;
  size_t ldy;
};

// MXFP4 rows: row r has nb blocks; block g = 16 bytes at blocks + (r*nb + g)*16 and one E8M0 scale at
// scales[r*nb + g] (element 2j of a block is the low nibble of byte j, element 2j+1 the high one).
// x rows (K = nb*32) are given permuted inside every 32-block in the kernel set's own order:
// xp[g*32 + j] = x[g*32 + mxPerm[j]] — the order in which the kernel meets the block's elements.
struct MxArgs {
  const uint8_t* blocks;
  const uint8_t* scales;
  int nb;
  const float* bias;
  const float* xp;
  size_t ldx;
  int T;
  float* y;
  size_t ldy;
};

struct KernelSet {
  const char* name;
  // Element order of a 32-block for mxfp4's x (see MxArgs).
  int mxPerm[32];
  void (*dense_bf16)(const DenseArgs& a, int r0, int r1);
  void (*dense_f32)(const DenseArgs& a, int r0, int r1);
  void (*mxfp4)(const MxArgs& a, int r0, int r1);
  // Fixed-order dot product of two fp32 vectors.
  float (*dot)(const float* a, const float* b, int n);
  // y[i] = y[i] + s * x[i] (elementwise; each element is independent).
  void (*axpy)(float* y, float s, const float* x, int n);
  // Attention scores for nq query heads (q + h*hd) against n keys (K + i*ks):
  // S[h*ldS + i] = dot(q_h, K_i, hd) * scale, bit-identical to calling dot() per (h, i).
  void (*attn_scores)(const float* q, int nq, int hd, const float* K, size_t ks, int n, float scale, float* S, size_t ldS);
  // o_h += P[h*ldP + i] * V_i for i = 0..n-1 in ascending order, h < nq (o_h = o + h*hd), each step
  // bit-identical to axpy(o_h, P[h*ldP + i], V_i, hd).
  void (*attn_accum)(float* o, int nq, int hd, const float* V, size_t vs, int n, const float* P, size_t ldP);
};

const KernelSet* kernels_scalar();
const KernelSet* kernels_avx2();    // nullptr when not compiled in
const KernelSet* kernels_avx512();  // nullptr when not compiled in

// The selected kernel set (AMNESIA_NATIVE_SIMD=scalar|avx2|avx512 may only downgrade the choice).
const KernelSet* kernels();

// MXFP4 dequantization table: mxLut()[s * 16 + c] = E2M1(c) * 2^(s - 127) for E8M0 scale byte s and
// 4-bit code c, computed with ldexp (exact: every value, subnormals included, is representable; s = 255
// gives E2M1(c) * 2^128 exactly as ldexp does, i.e. ±inf for c != 0). E2M1 (index = code):
// +0 +0.5 +1 +1.5 +2 +3 +4 +6 -0 -0.5 -1 -1.5 -2 -3 -4 -6. 16 KiB, 64-byte aligned.
const float* mxLut();
// The same values as bf16 bit patterns (exact: every entry has zero low 16 bits in fp32), 32 per
// scale: the 16 codes twice, so a 5-bit word permute (vpermw) may ignore index bit 4. 64-byte aligned.
const uint16_t* mxLutBf16();

}  // namespace amnesia
