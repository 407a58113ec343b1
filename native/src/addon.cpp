// N-API surface (see src/engine/native-api.ts for the contract): simd(), NativeModel, and the
// NativeEngine objects that NativeModel.createEngine() returns. Every error becomes a JS Error
// (C++ exceptions are enabled and converted by node-addon-api); step() rejects instead of throwing.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bandwidth.h"
#include "engine.h"
#include "model.h"

namespace amnesia {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

double getNumber(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) fail(what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) fail(what + " must be a finite number");
  return d;
}

int64_t getInt(const Napi::Value& v, const std::string& what, int64_t lo, int64_t hi) {
  const double d = getNumber(v, what);
  if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    fail(what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

Napi::Object getObject(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject() || v.IsArray()) fail(what + " must be an object");
  return v.As<Napi::Object>();
}

std::string getString(const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) fail(what + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;

Config parseConfig(const Napi::Object& o) {
  Config c;
  const int64_t big = int64_t(1) << 30;
  c.hidden = static_cast<int>(getInt(o.Get("hiddenSize"), "spec.config.hiddenSize", 1, big));
  c.intermediate = static_cast<int>(getInt(o.Get("intermediateSize"), "spec.config.intermediateSize", 1, big));
  c.layers = static_cast<int>(getInt(o.Get("numLayers"), "spec.config.numLayers", 1, big));
  c.heads = static_cast<int>(getInt(o.Get("numHeads"), "spec.config.numHeads", 1, big));
  c.kvHeads = static_cast<int>(getInt(o.Get("numKvHeads"), "spec.config.numKvHeads", 1, big));
  c.headDim = static_cast<int>(getInt(o.Get("headDim"), "spec.config.headDim", 1, big));
  c.experts = static_cast<int>(getInt(o.Get("numExperts"), "spec.config.numExperts", 1, big));
  c.topk = static_cast<int>(getInt(o.Get("expertsPerToken"), "spec.config.expertsPerToken", 1, big));
  c.vocab = static_cast<int>(getInt(o.Get("vocabSize"), "spec.config.vocabSize", 1, big));
  c.slidingWindow = static_cast<int>(getInt(o.Get("slidingWindow"), "spec.config.slidingWindow", 1, big));
  Napi::Value sl = o.Get("slidingLayers");
  if (!sl.IsArray()) fail("spec.config.slidingLayers must be an array of booleans");
  Napi::Array sa = sl.As<Napi::Array>();
  if (sa.Length() > static_cast<uint32_t>(big)) fail("spec.config.slidingLayers is too long");
  for (uint32_t i = 0; i < sa.Length(); ++i) {
    Napi::Value b = sa.Get(i);
    if (!b.IsBoolean()) fail("spec.config.slidingLayers[" + std::to_string(i) + "] must be a boolean");
    c.sliding.push_back(b.As<Napi::Boolean>().Value());
  }
  c.ropeTheta = getNumber(o.Get("ropeTheta"), "spec.config.ropeTheta");
  c.ropeScalingFactor = getNumber(o.Get("ropeScalingFactor"), "spec.config.ropeScalingFactor");
  c.ropeBetaFast = getNumber(o.Get("ropeBetaFast"), "spec.config.ropeBetaFast");
  c.ropeBetaSlow = getNumber(o.Get("ropeBetaSlow"), "spec.config.ropeBetaSlow");
  c.initialContextLength = getNumber(o.Get("initialContextLength"), "spec.config.initialContextLength");
  c.swigluLimit = getNumber(o.Get("swigluLimit"), "spec.config.swigluLimit");
  c.swigluAlpha = getNumber(o.Get("swigluAlpha"), "spec.config.swigluAlpha");
  c.rmsNormEps = getNumber(o.Get("rmsNormEps"), "spec.config.rmsNormEps");
  return c;
}

Napi::Object configToJs(Napi::Env env, const Config& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("hiddenSize", c.hidden);
  o.Set("intermediateSize", c.intermediate);
  o.Set("numLayers", c.layers);
  o.Set("numHeads", c.heads);
  o.Set("numKvHeads", c.kvHeads);
  o.Set("headDim", c.headDim);
  o.Set("numExperts", c.experts);
  o.Set("expertsPerToken", c.topk);
  o.Set("vocabSize", c.vocab);
  o.Set("slidingWindow", c.slidingWindow);
  Napi::Array sl = Napi::Array::New(env, c.sliding.size());
  for (size_t i = 0; i < c.sliding.size(); ++i) sl.Set(static_cast<uint32_t>(i), Napi::Boolean::New(env, c.sliding[i]));
  o.Set("slidingLayers", sl);
  o.Set("ropeTheta", c.ropeTheta);
  o.Set("ropeScalingFactor", c.ropeScalingFactor);
  o.Set("ropeBetaFast", c.ropeBetaFast);
  o.Set("ropeBetaSlow", c.ropeBetaSlow);
  o.Set("initialContextLength", c.initialContextLength);
  o.Set("swigluLimit", c.swigluLimit);
  o.Set("swigluAlpha", c.swigluAlpha);
  o.Set("rmsNormEps", c.rmsNormEps);
  return o;
}

ModelSpec parseSpec(const Napi::Value& v) {
  Napi::Object o = getObject(v, "NativeModel spec");
  ModelSpec spec;
  spec.config = parseConfig(getObject(o.Get("config"), "spec.config"));
  Napi::Value fv = o.Get("files");
  if (!fv.IsArray()) fail("spec.files must be an array of paths");
  Napi::Array fa = fv.As<Napi::Array>();
  for (uint32_t i = 0; i < fa.Length(); ++i) spec.files.push_back(getString(fa.Get(i), "spec.files[" + std::to_string(i) + "]"));
  Napi::Value tv = o.Get("tensors");
  if (!tv.IsArray()) fail("spec.tensors must be an array");
  Napi::Array ta = tv.As<Napi::Array>();
  spec.tensors.reserve(ta.Length());
  for (uint32_t i = 0; i < ta.Length(); ++i) {
    const std::string w = "spec.tensors[" + std::to_string(i) + "]";
    Napi::Object t = getObject(ta.Get(i), w);
    TensorSpec ts;
    ts.name = getString(t.Get("name"), w + ".name");
    const std::string wn = "tensor \"" + ts.name + "\"";
    ts.file = static_cast<int>(getInt(t.Get("file"), wn + ".file", 0, 1 << 20));
    ts.offset = static_cast<uint64_t>(getInt(t.Get("offset"), wn + ".offset", 0, kMaxSafe));
    ts.byteLength = static_cast<uint64_t>(getInt(t.Get("byteLength"), wn + ".byteLength", 0, kMaxSafe));
    const std::string dt = getString(t.Get("dtype"), wn + ".dtype");
    if (dt == "BF16") ts.dtype = DType::BF16;
    else if (dt == "F32") ts.dtype = DType::F32;
    else if (dt == "U8") ts.dtype = DType::U8;
    else fail(wn + ": unsupported dtype \"" + dt + "\" (expected BF16, F32 or U8)");
    Napi::Value sv = t.Get("shape");
    if (!sv.IsArray()) fail(wn + ".shape must be an array");
    Napi::Array sa = sv.As<Napi::Array>();
    if (sa.Length() > 16) fail(wn + ".shape has too many dimensions");
    for (uint32_t j = 0; j < sa.Length(); ++j) ts.shape.push_back(getInt(sa.Get(j), wn + ".shape[" + std::to_string(j) + "]", 0, kMaxSafe));
    spec.tensors.push_back(std::move(ts));
  }
  return spec;
}

EngineOptions parseEngineOptions(const Napi::Value& v) {
  Napi::Object o = getObject(v, "engine options");
  EngineOptions opt;
  Napi::Value bs = o.Get("kvBlockSize");
  if (!bs.IsUndefined()) opt.blockSize = static_cast<int>(getInt(bs, "kvBlockSize", 1, 65536));
  opt.blocks = getInt(o.Get("kvBlocks"), "kvBlocks", 1, 2147483647);
  Napi::Value sk = o.Get("slidingKv");
  if (!sk.IsUndefined()) {
    const std::string s = getString(sk, "slidingKv");
    if (s == "ring") opt.ring = true;
    else if (s != "full") fail("slidingKv must be 'full' or 'ring', got '" + s + "'");
  }
  Napi::Value rs = o.Get("ringSlack");
  if (!rs.IsUndefined()) opt.ringSlack = static_cast<int>(getInt(rs, "ringSlack", 0, 1 << 24));
  Napi::Value th = o.Get("threads");
  if (!th.IsUndefined()) opt.threads = static_cast<int>(getInt(th, "threads", 1, 1024));
  return opt;
}

// --------------------------------------------------------------------------------------------

struct AddonData {
  Napi::FunctionReference engineCtor;
};

int kEngineToken = 0x616d6e65;  // passed as an External so JS cannot construct engines directly

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeEngine",
                       {
                           InstanceMethod<&NativeEngine::CreateSequence>("createSequence"),
                           InstanceMethod<&NativeEngine::ForkSequence>("forkSequence"),
                           InstanceMethod<&NativeEngine::TruncateSequence>("truncateSequence"),
                           InstanceMethod<&NativeEngine::SequenceLength>("sequenceLength"),
                           InstanceMethod<&NativeEngine::FreeSequence>("freeSequence"),
                           InstanceMethod<&NativeEngine::Step>("step"),
                           InstanceMethod<&NativeEngine::KvStatsJs>("kvStats"),
                           InstanceMethod<&NativeEngine::SetDebug>("setDebug"),
                           InstanceMethod<&NativeEngine::Close>("close"),
                       });
  }

  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsExternal() ||
        info[0].As<Napi::External<int>>().Data() != &kEngineToken)
      fail("NativeEngine cannot be constructed directly; use model.createEngine(options)");
    auto* model = info[1].As<Napi::External<std::shared_ptr<const ModelData>>>().Data();
    core_ = std::make_shared<EngineCore>(*model, parseEngineOptions(info[2]));
  }

 private:
  EngineCore& core() {
    if (!core_ || core_->closed()) fail("engine is closed");
    return *core_;
  }

  int64_t seqArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
    return getInt(info[i], what, 0, kMaxSafe);
  }

  Napi::Value CreateSequence(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(core().createSequence()));
  }

  Napi::Value ForkSequence(const Napi::CallbackInfo& info) {
    EngineCore& c = core();
    const int64_t seq = seqArg(info, 0, "forkSequence: seq");
    const int64_t len = getInt(info[1], "forkSequence: length", 0, kMaxSafe);
    return Napi::Number::New(info.Env(), static_cast<double>(c.forkSequence(seq, len)));
  }

  Napi::Value TruncateSequence(const Napi::CallbackInfo& info) {
    EngineCore& c = core();
    const int64_t seq = seqArg(info, 0, "truncateSequence: seq");
    const int64_t len = getInt(info[1], "truncateSequence: length", 0, kMaxSafe);
    return Napi::Boolean::New(info.Env(), c.truncateSequence(seq, len));
  }

  Napi::Value SequenceLength(const Napi::CallbackInfo& info) {
    EngineCore& c = core();
    return Napi::Number::New(info.Env(), static_cast<double>(c.sequenceLength(seqArg(info, 0, "sequenceLength: seq"))));
  }

  Napi::Value FreeSequence(const Napi::CallbackInfo& info) {
    EngineCore& c = core();
    c.freeSequence(seqArg(info, 0, "freeSequence: seq"));
    return info.Env().Undefined();
  }

  Napi::Value KvStatsJs(const Napi::CallbackInfo& info) {
    const KvStats s = core().kvStats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("blockSize", s.blockSize);
    o.Set("blocksTotal", static_cast<double>(s.blocksTotal));
    o.Set("blocksFree", static_cast<double>(s.blocksFree));
    o.Set("blockBytes", s.blockBytes);
    return o;
  }

  Napi::Value SetDebug(const Napi::CallbackInfo& info) {
    EngineCore& c = core();
    Napi::Object o = getObject(info[0], "setDebug options");
    // Validate every switch before applying any, so a bad call changes nothing.
    auto flag = [&](const char* name, int& out) {
      Napi::Value v = o.Get(name);
      out = -1;
      if (v.IsUndefined()) return;
      if (!v.IsBoolean()) fail(std::string("setDebug: ") + name + " must be a boolean");
      out = v.As<Napi::Boolean>().Value() ? 1 : 0;
    };
    int bv, trim, freeShared, pastEnd;
    flag("batchVariantReduction", bv);
    flag("kvTrimNoop", trim);
    flag("freeSharedBlocks", freeShared);
    flag("attendPastEnd", pastEnd);
    if (bv >= 0) c.setBatchVariant(bv == 1);
    if (trim >= 0) c.setTrimNoop(trim == 1);
    if (freeShared >= 0) c.setFreeShared(freeShared == 1);
    if (pastEnd >= 0) c.setAttendPastEnd(pastEnd == 1);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (core_) {
      core_->close();
      core_.reset();
    }
    return info.Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info);

  std::shared_ptr<EngineCore> core_;
};

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, std::shared_ptr<EngineCore> core, std::unique_ptr<StepPlan> plan, Napi::Promise::Deferred d,
             std::vector<Napi::Reference<Napi::Float32Array>> outs)
      : Napi::AsyncWorker(env, "amnesia:step"),
        core_(std::move(core)),
        plan_(std::move(plan)),
        deferred_(d),
        outs_(std::move(outs)) {}

  ~StepWorker() override {
    // Never leave the engine busy (e.g. if the work was cancelled before it ran).
    if (plan_ && !plan_->done) core_->rollback(*plan_);
  }

  void Execute() override {
    try {
      core_->execute(*plan_);
    } catch (const std::exception& e) {
      SetError(std::string("step failed: ") + e.what());
    } catch (...) {
      SetError("step failed: unknown native error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    const int V = core_->config().vocab;
    std::string copyError;
    Napi::Array results = Napi::Array::New(env, plan_->entries.size());
    for (size_t i = 0; i < plan_->entries.size(); ++i) {
      const StepEntry& e = plan_->entries[i];
      Napi::Object r = Napi::Object::New(env);
      r.Set("next", e.next);
      if (e.routing) {
        Napi::Int32Array ra = Napi::Int32Array::New(env, e.routingOut.size());
        if (!e.routingOut.empty()) std::memcpy(ra.Data(), e.routingOut.data(), e.routingOut.size() * 4);
        r.Set("routing", ra);
      }
      if (e.logits != kLogitsNone && !outs_[i].IsEmpty()) {
        Napi::Float32Array out = outs_[i].Value();
        const size_t need = static_cast<size_t>(e.logitRows) * static_cast<size_t>(V);
        if (out.ElementLength() < need) {
          copyError = "step: logitsOut of entry " + std::to_string(i) + " shrank or was detached during the step";
        } else {
          std::memcpy(out.Data(), core_->logitsRow(e.logitRow0), need * 4);
        }
      }
      results.Set(static_cast<uint32_t>(i), r);
    }
    core_->commit(*plan_);
    if (!copyError.empty()) deferred_.Reject(Napi::Error::New(env, copyError + " (the step itself was applied)").Value());
    else deferred_.Resolve(results);
  }

  void OnError(const Napi::Error& err) override {
    core_->rollback(*plan_);
    deferred_.Reject(err.Value());
  }

 private:
  std::shared_ptr<EngineCore> core_;
  std::unique_ptr<StepPlan> plan_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::Float32Array>> outs_;
};

Napi::Value NativeEngine::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  try {
    EngineCore& c = core();
    const int V = c.config().vocab;
    if (info.Length() < 1 || !info[0].IsArray()) fail("step: entries must be an array");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<StepEntry> entries(arr.Length());
    std::vector<Napi::Reference<Napi::Float32Array>> outs(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string w = "step: entry " + std::to_string(i);
      Napi::Object o = getObject(arr.Get(i), w);
      StepEntry& e = entries[i];
      e.seqId = getInt(o.Get("seq"), w + ": seq", 0, kMaxSafe);
      Napi::Value tv = o.Get("tokens");
      if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        fail(w + ": tokens must be an Int32Array");
      Napi::Int32Array ta = tv.As<Napi::Int32Array>();
      e.tokens.assign(ta.Data(), ta.Data() + ta.ElementLength());
      Napi::Value lv = o.Get("logits");
      if (!lv.IsUndefined()) {
        const std::string m = getString(lv, w + ": logits");
        if (m == "none") e.logits = kLogitsNone;
        else if (m == "last") e.logits = kLogitsLast;
        else if (m == "all") e.logits = kLogitsAll;
        else fail(w + ": logits must be 'none', 'last' or 'all', got '" + m + "'");
      }
      if (e.logits != kLogitsNone) {
        Napi::Value ov = o.Get("logitsOut");
        if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
          fail(w + ": logitsOut must be a Float32Array when logits is '" + std::string(e.logits == kLogitsAll ? "all" : "last") + "'");
        Napi::Float32Array fa = ov.As<Napi::Float32Array>();
        const size_t rows = e.logits == kLogitsAll ? e.tokens.size() : 1;
        const size_t need = rows * static_cast<size_t>(V);
        if (fa.ElementLength() < need)
          fail(w + ": logitsOut is too small: " + std::to_string(fa.ElementLength()) + " floats, need " + std::to_string(rows) +
               " x " + std::to_string(V) + " = " + std::to_string(need));
        outs[i] = Napi::Persistent(fa);
      }
      Napi::Value rv = o.Get("routing");
      if (!rv.IsUndefined()) {
        if (!rv.IsBoolean()) fail(w + ": routing must be a boolean");
        e.routing = rv.As<Napi::Boolean>().Value();
      }
    }
    std::unique_ptr<StepPlan> plan = c.prepare(std::move(entries));
    auto* worker = new StepWorker(env, core_, std::move(plan), d, std::move(outs));
    worker->Queue();
  } catch (const Napi::Error& e) {
    d.Reject(e.Value());
  } catch (const std::exception& e) {
    d.Reject(Napi::Error::New(env, e.what()).Value());
  }
  return d.Promise();
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {
                           InstanceAccessor<&NativeModel::GetConfig>("config"),
                           InstanceMethod<&NativeModel::CreateEngine>("createEngine"),
                           InstanceMethod<&NativeModel::Close>("close"),
                       });
  }

  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    if (info.Length() < 1) fail("new NativeModel(spec): spec is required");
    ModelSpec spec = parseSpec(info[0]);
    model_ = ModelData::load(spec);
    config_ = Napi::Persistent(configToJs(info.Env(), model_->cfg));
  }

 private:
  Napi::Value GetConfig(const Napi::CallbackInfo&) { return config_.Value(); }

  Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!model_) fail("model is closed");
    if (info.Length() < 1) fail("createEngine(options): options are required");
    AddonData* data = env.GetInstanceData<AddonData>();
    std::shared_ptr<const ModelData> m = model_;
    return data->engineCtor.New({Napi::External<int>::New(env, &kEngineToken),
                                 Napi::External<std::shared_ptr<const ModelData>>::New(env, &m), info[0]});
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    model_.reset();  // the mappings go when the last engine using them is closed or collected
    return info.Env().Undefined();
  }

  std::shared_ptr<const ModelData> model_;
  Napi::ObjectReference config_;
};

Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels()->name); }

// memoryBandwidth(bytes, threads, repetitions): the benchmark's roofline probe (blocks the JS thread).
Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  const size_t bytes = static_cast<size_t>(getInt(info[0], "bytes", 1 << 20, int64_t(1) << 40));
  const int threads = static_cast<int>(getInt(info[1], "threads", 1, 1024));
  const int repetitions = static_cast<int>(getInt(info[2], "repetitions", 1, 1000));
  const BandwidthResult r = measureReadBandwidth(bytes, threads, repetitions);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("bytesPerSecond", r.bytesPerSecond);
  out.Set("bytes", static_cast<double>(r.bytes));
  out.Set("threads", r.threads);
  out.Set("checksum", static_cast<double>(r.checksum));
  return out;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->engineCtor = Napi::Persistent(NativeEngine::Init(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("simd", Napi::Function::New(env, Simd, "simd"));
  exports.Set("memoryBandwidth", Napi::Function::New(env, MemoryBandwidth, "memoryBandwidth"));
  exports.Set("NativeModel", NativeModel::Init(env));
  return exports;
}

}  // namespace
}  // namespace amnesia

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return amnesia::InitModule(env, exports); }

NODE_API_MODULE(amnesia_native, InitAddon)
