// A memory read-bandwidth probe for the benchmark's roofline: how fast this machine can stream a
// buffer much larger than the caches, with the same thread pool and widest loads the kernels use.
#pragma once
#include <cstddef>
#include <cstdint>

namespace amnesia {

struct BandwidthResult {
  double bytesPerSecond;  // best of the repetitions
  size_t bytes;
  int threads;
  uint64_t checksum;  // sum of everything read: keeps the reads observable
};

BandwidthResult measureReadBandwidth(size_t bytes, int threads, int repetitions);

}  // namespace amnesia
