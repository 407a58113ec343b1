#include "model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>
#include <unordered_map>

namespace amnesia {

Mapping::~Mapping() {
  if (addr != nullptr && size > 0) munmap(addr, size);
}

namespace {

size_t dtypeSize(DType d) {
  switch (d) {
    case DType::BF16: return 2;
    case DType::F32: return 4;
    case DType::U8: return 1;
  }
  return 1;
}

const char* dtypeName(DType d) {
  switch (d) {
    case DType::BF16: return "BF16";
    case DType::F32: return "F32";
    case DType::U8: return "U8";
  }
  return "?";
}

std::string shapeStr(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

std::unique_ptr<Mapping> mapFile(const std::string& path) {
  auto m = std::make_unique<Mapping>();
  m->path = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open model file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot stat model file " + path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("model file " + path + " is not a regular file");
  }
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    void* p = ::mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      m->size = 0;
      throw std::runtime_error("cannot mmap model file " + path + ": " + std::strerror(e));
    }
    m->addr = p;
  }
  ::close(fd);
  return m;
}

void validateConfig(const Config& c) {
  auto dim = [](int v, const char* name, int lo = 1, int hi = 1 << 24) {
    require(v >= lo && v <= hi, std::string("config.") + name + " must be an integer in [" + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "], got " + std::to_string(v));
  };
  dim(c.hidden, "hiddenSize", 32);
  dim(c.intermediate, "intermediateSize", 32);
  require(c.hidden % 32 == 0, "config.hiddenSize must be a multiple of 32 (MXFP4 blocks run along it)");
  require(c.intermediate % 32 == 0, "config.intermediateSize must be a multiple of 32 (MXFP4 blocks run along it)");
  dim(c.layers, "numLayers", 1, 4096);
  dim(c.heads, "numHeads", 1, 65536);
  dim(c.kvHeads, "numKvHeads", 1, 65536);
  require(c.heads % c.kvHeads == 0, "config.numHeads must be a multiple of config.numKvHeads");
  dim(c.headDim, "headDim", 2, 65536);
  require(c.headDim % 2 == 0, "config.headDim must be even (rotate-half RoPE)");
  require(static_cast<int64_t>(c.heads) * c.headDim <= (1 << 24), "config.numHeads * headDim is too large");
  dim(c.experts, "numExperts", 1, 65536);
  dim(c.topk, "expertsPerToken", 1, c.experts);
  dim(c.vocab, "vocabSize", 1, 1 << 28);
  dim(c.slidingWindow, "slidingWindow", 1, 1 << 30);
  require(static_cast<int>(c.sliding.size()) == c.layers, "config.slidingLayers must have numLayers entries");
  auto finite = [](double v, const char* name) {
    require(std::isfinite(v), std::string("config.") + name + " must be a finite number");
  };
  finite(c.ropeTheta, "ropeTheta");
  finite(c.ropeScalingFactor, "ropeScalingFactor");
  finite(c.ropeBetaFast, "ropeBetaFast");
  finite(c.ropeBetaSlow, "ropeBetaSlow");
  finite(c.initialContextLength, "initialContextLength");
  finite(c.swigluLimit, "swigluLimit");
  finite(c.swigluAlpha, "swigluAlpha");
  finite(c.rmsNormEps, "rmsNormEps");
  require(c.ropeTheta > 1, "config.ropeTheta must be > 1");
  require(c.ropeScalingFactor > 0, "config.ropeScalingFactor must be > 0");
  require(c.rmsNormEps >= 0, "config.rmsNormEps must be >= 0");
  if (c.ropeScalingFactor > 1) {
    require(c.initialContextLength > 0 && c.ropeBetaFast > 0 && c.ropeBetaSlow > 0,
            "config: YaRN needs initialContextLength, ropeBetaFast and ropeBetaSlow > 0");
  }
}

struct Resolver {
  const ModelSpec& spec;
  const std::vector<std::unique_ptr<Mapping>>& maps;
  std::unordered_map<std::string, size_t> byName;

  const TensorSpec& get(const std::string& name) const {
    auto it = byName.find(name);
    if (it == byName.end()) throw std::runtime_error("model spec is missing tensor \"" + name + "\"");
    return spec.tensors[it->second];
  }

  std::string where(const TensorSpec& t) const {
    return "tensor \"" + t.name + "\" in " + spec.files[static_cast<size_t>(t.file)];
  }

  const uint8_t* ptr(const TensorSpec& t) const {
    return static_cast<const uint8_t*>(maps[static_cast<size_t>(t.file)]->addr) + t.offset;
  }

  void checkShape(const TensorSpec& t, const std::vector<int64_t>& want) const {
    if (t.shape != want)
      throw std::runtime_error(where(t) + ": expected shape " + shapeStr(want) + ", got " + shapeStr(t.shape));
  }

  // bf16 or f32 weight matrix [rows, cols]
  Mat mat(const std::string& name, int64_t rows, int64_t cols) const {
    const TensorSpec& t = get(name);
    if (t.dtype != DType::BF16 && t.dtype != DType::F32)
      throw std::runtime_error(where(t) + ": expected dtype BF16 or F32, got " + dtypeName(t.dtype));
    checkShape(t, {rows, cols});
    Mat m;
    m.data = ptr(t);
    m.wt = t.dtype == DType::BF16 ? WType::BF16 : WType::F32;
    m.rows = rows;
    m.cols = cols;
    return m;
  }

  // small bf16/f32 tensor converted to fp32 (exact)
  std::vector<float> vec(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorSpec& t = get(name);
    if (t.dtype != DType::BF16 && t.dtype != DType::F32)
      throw std::runtime_error(where(t) + ": expected dtype BF16 or F32, got " + dtypeName(t.dtype));
    checkShape(t, shape);
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<float> out(n);
    const uint8_t* p = ptr(t);
    if (t.dtype == DType::BF16) {
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        uint32_t u = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &u, 4);
      }
    } else {
      std::memcpy(out.data(), p, 4 * n);
    }
    return out;
  }

  const uint8_t* u8(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorSpec& t = get(name);
    if (t.dtype != DType::U8) throw std::runtime_error(where(t) + ": expected dtype U8, got " + dtypeName(t.dtype));
    checkShape(t, shape);
    return ptr(t);
  }
};

}  // namespace

std::shared_ptr<ModelData> ModelData::load(const ModelSpec& spec) {
  validateConfig(spec.config);
  const Config& c = spec.config;
  require(!spec.files.empty(), "model spec has no files");
  auto md = std::make_shared<ModelData>();
  md->cfg = c;
  for (const auto& f : spec.files) md->maps.push_back(mapFile(f));

  Resolver R{spec, md->maps, {}};
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const TensorSpec& t = spec.tensors[i];
    require(t.file >= 0 && static_cast<size_t>(t.file) < spec.files.size(),
            "tensor \"" + t.name + "\": file index " + std::to_string(t.file) + " is out of range");
    const std::string where = R.where(t);
    const uint64_t fsize = md->maps[static_cast<size_t>(t.file)]->size;
    if (t.offset > fsize || t.byteLength > fsize - t.offset)
      throw std::runtime_error(where + ": byte range [" + std::to_string(t.offset) + ", " +
                               std::to_string(t.offset + t.byteLength) + ") is past the end of the file (" +
                               std::to_string(fsize) + " bytes)");
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw std::runtime_error(where + ": negative dimension in shape " + shapeStr(t.shape));
      if (d != 0 && n > (uint64_t(1) << 62) / static_cast<uint64_t>(d))
        throw std::runtime_error(where + ": shape " + shapeStr(t.shape) + " is too large");
      n *= static_cast<uint64_t>(d);
    }
    if (n * dtypeSize(t.dtype) != t.byteLength)
      throw std::runtime_error(where + ": byteLength " + std::to_string(t.byteLength) + " != product of shape " +
                               shapeStr(t.shape) + " x " + std::to_string(dtypeSize(t.dtype)) + " (" + dtypeName(t.dtype) +
                               ")");
    if (!R.byName.emplace(t.name, i).second)
      throw std::runtime_error("model spec lists tensor \"" + t.name + "\" twice");
  }

  const int64_t H = c.hidden, I = c.intermediate, E = c.experts, V = c.vocab;
  const int64_t QD = static_cast<int64_t>(c.heads) * c.headDim;
  const int64_t KD = static_cast<int64_t>(c.kvHeads) * c.headDim;
  md->embed = R.mat("model.embed_tokens.weight", V, H);
  md->lmHead = R.mat("lm_head.weight", V, H);
  md->finalNorm = R.vec("model.norm.weight", {H});
  md->layers.resize(static_cast<size_t>(c.layers));
  for (int n = 0; n < c.layers; ++n) {
    const std::string p = "model.layers." + std::to_string(n) + ".";
    LayerWeights& L = md->layers[static_cast<size_t>(n)];
    L.ln1 = R.vec(p + "input_layernorm.weight", {H});
    L.ln2 = R.vec(p + "post_attention_layernorm.weight", {H});
    L.q = R.mat(p + "self_attn.q_proj.weight", QD, H);
    L.qb = R.vec(p + "self_attn.q_proj.bias", {QD});
    L.k = R.mat(p + "self_attn.k_proj.weight", KD, H);
    L.kb = R.vec(p + "self_attn.k_proj.bias", {KD});
    L.v = R.mat(p + "self_attn.v_proj.weight", KD, H);
    L.vb = R.vec(p + "self_attn.v_proj.bias", {KD});
    L.o = R.mat(p + "self_attn.o_proj.weight", H, QD);
    L.ob = R.vec(p + "self_attn.o_proj.bias", {H});
    L.sinks = R.vec(p + "self_attn.sinks", {c.heads});
    L.router = R.mat(p + "mlp.router.weight", E, H);
    L.rb = R.vec(p + "mlp.router.bias", {E});
    L.guBlocks = R.u8(p + "mlp.experts.gate_up_proj_blocks", {E, 2 * I, H / 32, 16});
    L.guScales = R.u8(p + "mlp.experts.gate_up_proj_scales", {E, 2 * I, H / 32});
    L.guBias = R.vec(p + "mlp.experts.gate_up_proj_bias", {E, 2 * I});
    L.dnBlocks = R.u8(p + "mlp.experts.down_proj_blocks", {E, H, I / 32, 16});
    L.dnScales = R.u8(p + "mlp.experts.down_proj_scales", {E, H, I / 32});
    L.dnBias = R.vec(p + "mlp.experts.down_proj_bias", {E, H});
  }

  // RoPE / YaRN (notes §1.6): inv_freq in double, cast once to float; low/high are not rounded.
  const int dh = c.headDim / 2;
  md->invFreq.resize(static_cast<size_t>(dh));
  double conc = 1.0;
  double low = 0, high = 0;
  const bool yarn = c.ropeScalingFactor > 1.0;
  if (yarn) {
    const double twoPi = 2.0 * 3.14159265358979323846;
    conc = 0.1 * std::log(c.ropeScalingFactor) + 1.0;
    low = dh * std::log(c.initialContextLength / (c.ropeBetaFast * twoPi)) / std::log(c.ropeTheta);
    high = dh * std::log(c.initialContextLength / (c.ropeBetaSlow * twoPi)) / std::log(c.ropeTheta);
    require(high > low, "config: YaRN needs low < high (ropeBetaFast must exceed ropeBetaSlow)");
  }
  for (int j = 0; j < dh; ++j) {
    const double freq = std::pow(c.ropeTheta, (2.0 * j) / c.headDim);
    double inv = 1.0 / freq;
    if (yarn) {
      double ramp = (j - low) / (high - low);
      ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
      inv = (1.0 / (c.ropeScalingFactor * freq)) * ramp + (1.0 / freq) * (1.0 - ramp);
    }
    md->invFreq[static_cast<size_t>(j)] = static_cast<float>(inv);
  }
  md->concentration = static_cast<float>(conc);
  md->attnScale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.headDim)));
  return md;
}

}  // namespace amnesia
