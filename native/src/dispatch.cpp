// Run-time choice of the kernel set, and the MXFP4 tables shared by all of them.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace amnesia {

namespace {
struct MxTable {
  alignas(64) float v[256 * 16];
  MxTable() {
    static const float e2m1[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    for (int s = 0; s < 256; ++s)
      for (int c = 0; c < 16; ++c) v[s * 16 + c] = std::ldexp(e2m1[c], s - 127);
  }
};
}  // namespace

const float* mxLut() {
  static const MxTable table;
  return table.v;
}

namespace {
struct MxTableBf16 {
  alignas(64) uint16_t v[256 * 32];
  MxTableBf16() {
    const float* f = mxLut();
    for (int s = 0; s < 256; ++s)
      for (int c = 0; c < 32; ++c) {
        uint32_t u;
        std::memcpy(&u, &f[s * 16 + (c & 15)], 4);
        v[s * 32 + c] = static_cast<uint16_t>(u >> 16);  // low 16 bits are zero (checked by tests)
      }
  }
};
}  // namespace

const uint16_t* mxLutBf16() {
  static const MxTableBf16 table;
  return table.v;
}

static bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

static bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

static const KernelSet* choose() {
  const char* want = std::getenv("AMNESIA_NATIVE_SIMD");
  int cap = 2;  // 2 = avx512, 1 = avx2, 0 = scalar
  if (want != nullptr) {
    if (std::strcmp(want, "scalar") == 0) cap = 0;
    else if (std::strcmp(want, "avx2") == 0) cap = 1;
  }
  if (cap >= 2 && kernels_avx512() != nullptr && cpu_has_avx512()) return kernels_avx512();
  if (cap >= 1 && kernels_avx2() != nullptr && cpu_has_avx2()) return kernels_avx2();
  return kernels_scalar();
}

const KernelSet* kernels() {
  static const KernelSet* k = choose();
  return k;
}

}  // namespace amnesia
