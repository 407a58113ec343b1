#include "bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "threadpool.h"

namespace amnesia {
namespace {

// Each reader sums 64-bit words so the loads cannot be optimised away; the sums are returned.
__attribute__((target("avx512f"))) uint64_t readAvx512(const uint8_t* p, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 64));
    c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 128));
    d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 192));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  uint64_t s = 0;
  for (uint64_t v : lanes) s += v;
  return s;
}

__attribute__((target("avx2"))) uint64_t readAvx2(const uint8_t* p, size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t readScalar(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    s += w;
  }
  return s;
}

}  // namespace

BandwidthResult measureReadBandwidth(size_t bytes, int threads, int repetitions) {
  const size_t chunk = 1 << 20;  // tasks of 1 MiB, handed out dynamically like the kernels' rows
  bytes = std::max(chunk, bytes / chunk * chunk);
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)), &std::free);
  if (!buf) throw std::runtime_error("memoryBandwidth: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memset(buf.get(), 1, bytes);  // touch every page before timing

  auto read = __builtin_cpu_supports("avx512f") ? readAvx512 : __builtin_cpu_supports("avx2") ? readAvx2 : readScalar;
  ThreadPool pool(threads);
  std::vector<uint64_t> sink(pool.size(), 0);
  const int tasks = static_cast<int>(bytes / chunk);
  double best = 0;
  for (int r = 0; r < repetitions; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(tasks, [&](int task, int worker) { sink[worker] += read(buf.get() + size_t(task) * chunk, chunk); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(bytes) / s);
  }
  uint64_t checksum = 0;
  for (uint64_t v : sink) checksum += v;
  return {best, bytes, pool.size(), checksum};
}

}  // namespace amnesia
