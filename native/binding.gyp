{
  # amnesia native engine: gpt-oss forward pass, bf16/MXFP4 kernels, KV block pool.
  # Built by `node native/build.mjs` (node-gyp with --nodedir, never downloads headers).
  #
  # Numerics: -ffp-contract=off (no implicit FMA contraction; kernels use explicit FMA intrinsics
  # only) and never -ffast-math: every reduction runs in the order the source spells out.
  # ISA-specific kernels use `#pragma GCC target` inside their own files and are chosen at run time
  # (native/src/dispatch.cpp), so the binary runs on any x86-64 CPU.
  'targets': [
    {
      'target_name': 'amnesia_native',
      'sources': [
        'src/addon.cpp',
        'src/bandwidth.cpp',
        'src/model.cpp',
        'src/engine.cpp',
        'src/forward.cpp',
        'src/matmul.cpp',
        'src/kv_pool.cpp',
        'src/threadpool.cpp',
        'src/dispatch.cpp',
        'src/kernels_scalar.cpp',
        'src/kernels_avx2.cpp',
        'src/kernels_avx512.cpp',
      ],
      # node-addon-api wherever npm put it (this package's node_modules, or the project's above it
      # when amnesia is installed); native/build.mjs puts the node that runs it first on PATH.
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      'cflags!': [ '-fno-exceptions', '-O2', '-O0', '-O1', '-Os', '-ffast-math' ],
      'cflags_cc!': [ '-fno-exceptions', '-fno-rtti', '-std=gnu++17', '-std=gnu++20', '-std=c++20', '-O2', '-O0', '-O1', '-Os', '-ffast-math' ],
      'cflags': [ '-O3', '-fexceptions', '-ffp-contract=off', '-fno-fast-math', '-pthread', '-Wall', '-Wextra', '-Wno-unused-parameter' ],
      'cflags_cc': [ '-O3', '-std=c++17', '-fexceptions', '-frtti', '-ffp-contract=off', '-fno-fast-math', '-pthread' ],
      'ldflags': [ '-pthread' ],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
        'OTHER_CFLAGS': [ '-O3', '-ffp-contract=off' ],
      },
    },
  ],
}
