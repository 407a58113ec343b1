// Model loading: mmap the safetensors files, re-check every tensor range, resolve the gpt-oss
// tensors (Hugging Face root names) and convert the small ones (norms, biases, sinks) to fp32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.h"

namespace amnesia {

struct Config {
  int hidden = 0;        // H
  int intermediate = 0;  // I
  int layers = 0;
  int heads = 0;
  int kvHeads = 0;
  int headDim = 0;
  int experts = 0;
  int topk = 0;
  int vocab = 0;
  int slidingWindow = 0;
  std::vector<bool> sliding;
  double ropeTheta = 0;
  double ropeScalingFactor = 1;
  double ropeBetaFast = 32;
  double ropeBetaSlow = 1;
  double initialContextLength = 4096;
  double swigluLimit = 7;
  double swigluAlpha = 1.702;
  double rmsNormEps = 1e-5;
};

enum class DType { BF16, F32, U8 };

struct TensorSpec {
  std::string name;
  int file = 0;
  uint64_t offset = 0;
  uint64_t byteLength = 0;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
};

struct ModelSpec {
  Config config;
  std::vector<std::string> files;
  std::vector<TensorSpec> tensors;
};

// A row-major matrix [rows, cols] of bf16 or f32 inside a mapping (possibly unaligned).
struct Mat {
  const uint8_t* data = nullptr;
  WType wt = WType::BF16;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t rowBytes() const { return static_cast<size_t>(cols) * (wt == WType::BF16 ? 2 : 4); }
};

// One transformer layer (hd = headDim, E = experts, I = intermediate); matrices are [out, in].
struct LayerWeights {
  std::vector<float> ln1, ln2;  // [H] rmsnorm scales before attention / before the MoE block
  Mat q;                        // [heads*hd, H]
  Mat k, v;                     // [kvHeads*hd, H]
  Mat o;                        // [H, heads*hd]
  Mat router;                   // [E, H]
  std::vector<float> qb, kb, vb, ob, rb;  // biases, fp32: [heads*hd], [kvHeads*hd] x2, [H], [E]
  std::vector<float> sinks;               // [heads]
  // MXFP4 experts: 32-element blocks of 4-bit E2M1 codes (16 bytes) with one E8M0 scale each;
  // mlp1 (gate_up) rows alternate gate, linear.
  const uint8_t* guBlocks = nullptr;      // [E, 2I, H/32, 16]
  const uint8_t* guScales = nullptr;      // [E, 2I, H/32]
  std::vector<float> guBias;              // [E, 2I]
  const uint8_t* dnBlocks = nullptr;      // [E, H, I/32, 16]
  const uint8_t* dnScales = nullptr;      // [E, H, I/32]
  std::vector<float> dnBias;              // [E, H]
};

struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  std::string path;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
};

struct ModelData {
  Config cfg;
  std::vector<std::unique_ptr<Mapping>> maps;
  Mat embed;   // [V, H]
  Mat lmHead;  // [V, H]
  std::vector<float> finalNorm;  // [H]
  std::vector<LayerWeights> layers;
  // RoPE: inv_freq (computed in double, cast to float) and the YaRN concentration (1 without YaRN).
  std::vector<float> invFreq;
  float concentration = 1.0f;
  float attnScale = 1.0f;

  static std::shared_ptr<ModelData> load(const ModelSpec& spec);
};

// Throws std::runtime_error with `msg` when `cond` is false.
inline void require(bool cond, const std::string& msg) {
  if (!cond) throw std::runtime_error(msg);
}

}  // namespace amnesia
