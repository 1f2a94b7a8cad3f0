#!/bin/sh
# CMake flags for building llama.cpp (llama-cpp-python) on this machine: its SIMD extensions, named one
# by one, never -march=native (a native build that enabled AMX crashed in a VM whose CPU reports AMX
# but cannot use it) and never AMX. Only the library is built: no server, tools, examples or tests.
# Print them; the Makefile passes them to pip as CMAKE_ARGS.
set -eu
args="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF"
args="$args -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF"
case "$(uname -m)" in
x86_64 | amd64)
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI; do
    has "${pair%%:*}" && args="$args -DGGML_${pair#*:}=ON"
  done
  # AVX-512 only when the foundation and the byte/word/vector-length parts are all there.
  if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
    args="$args -DGGML_AVX512=ON"
    has avx512_vnni && args="$args -DGGML_AVX512_VNNI=ON"
    has avx512vbmi && args="$args -DGGML_AVX512_VBMI=ON"
    has avx512_bf16 && args="$args -DGGML_AVX512_BF16=ON"
  fi
  ;;
esac
echo "$args"
