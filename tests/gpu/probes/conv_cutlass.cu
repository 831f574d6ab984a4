// conv_probe: does CUTLASS 3's Hopper (sm90: wgmma + TMA im2col, warp-specialised)
// implicit-GEMM conv2d fprop beat our hand-written mma.sync kernel on TAESD's
// 3x3, pad 1, stride 1, 64 -> 64 channel layer (fp16 NHWC act, fp16 KRSC weights,
// fp32 accumulate, fp16 out)?
//
// One source, compiled several times (build.sh):
//   -DPROBE_PART=0      harness: device check, data, reference conv, checks, timing,
//                       copy roofline, summary (plain CUDA; no CUTLASS headers).
//   -DPROBE_PART=1..N   CUTLASS kernel instantiations (heavy; split so two cores can
//                       compile in parallel). Each part registers its configs via
//                       probe_register_partN().
// Each config is one CUTLASS kernel type; epilogue is D = act(acc + bias[k] + beta*C):
//   epi a: act = ReLU,     beta = 0 (C not loaded: the sm90 EVT skips the C TMA load
//                          when beta == 0)
//   epi b: act = ReLU,     beta = 1, C = residual (TAESD Block's fused skip add)
//   epi c: act = Identity, beta = 0
// Exit status: 0 all rows ran (OK/UNSUPPORTED), 1 some row FAILed the check,
// 3 no usable GPU, 2 fatal (sticky) CUDA error, 4 watchdog (PROBE_WATCHDOG_S, 90 s).

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <vector>
#include <csignal>
#include <unistd.h>

#ifndef PROBE_PART
#define PROBE_PART 0
#endif
#define PROBE_NPARTS 3

// ---------------------------------------------------------------- shared interface
struct Problem {
  int N, H, W;          // C = K = 64, R = S = 3, pad 1, stride 1: P = H, Q = W
  const __half *x;      // [N,H,W,64]
  const __half *w;      // [64,3,3,64]  (KRSC)
  const __half *bias;   // [64]
  const __half *res;    // [N,H,W,64]   C operand (read only when beta != 0)
  __half *out;          // [N,H,W,64]
};

// A prepared CUTLASS conv. prepare(): 0 ok, 1 unsupported (err says which stage).
struct ConvOp {
  virtual ~ConvOp() {}
  virtual int prepare(const Problem &p, float beta, char *err, size_t errlen) = 0;
  virtual int launch(cudaStream_t s, char *err, size_t errlen) = 0;   // 0 ok
  virtual void describe(char *buf, size_t len, bool dev) = 0;   // smem/stages (+regs/occ if dev)
};

struct CfgEntry {
  const char *name;
  bool relu;              // true: epilogues a, b; false: epilogue c
  ConvOp *(*make)();
};

#if PROBE_PART != 0
// ================================================================= CUTLASS part
#include "cutlass/cutlass.h"
#include "cute/tensor.hpp"
#include "cutlass/numeric_types.h"
#include "cutlass/conv/convolution.h"
#include "cutlass/conv/convnd_problem_shape.hpp"
#include "cutlass/conv/device/conv_universal_adapter.hpp"
#include "cutlass/conv/kernel/conv_universal.hpp"
#include "cutlass/conv/collective/collective_builder.hpp"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/operations.hpp"
#include "cutlass/epilogue/thread/activation.h"
#include "cutlass/device_kernel.h"
#include "cutlass/kernel_hardware_info.hpp"

using namespace cute;
using half_t = cutlass::half_t;

// TM = tile M (output pixels), tile N = 64 (all output channels), tile K = 64
// (one filter tap's channels); CM = cluster size along M (filter tile multicast);
// Stages = 0: StageCountAutoCarveout (fills smem, 1 CTA/SM), else fixed stages.
template <int TM, int CM, int Stages, template <class> class Act>
struct Cfg {
  using Tile = Shape<Int<TM>, _64, Shape<_64>>;
  using Cluster = Shape<Int<CM>, _1, _1>;
  using Fusion = cutlass::epilogue::fusion::LinCombPerColBiasEltAct<
      Act, half_t /*D*/, float /*compute*/, half_t /*bias*/, half_t /*C*/, float /*scalar*/>;
  using Epi = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Tile, Cluster,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float,
      half_t, cutlass::layout::TensorNHWC, 8,
      half_t, cutlass::layout::TensorNHWC, 8,
      cutlass::epilogue::TmaWarpSpecialized, Fusion>::CollectiveOp;
  using StageT = cute::conditional_t<Stages == 0,
      cutlass::conv::collective::StageCountAutoCarveout<
          static_cast<int>(sizeof(typename Epi::SharedStorage))>,
      cutlass::conv::collective::StageCount<(Stages == 0 ? 1 : Stages)>>;
  using Main = typename cutlass::conv::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, cutlass::conv::Operator::kFprop,
      half_t, cutlass::layout::TensorNHWC, 8,
      half_t, cutlass::layout::TensorNHWC, 8,
      float, Tile, Cluster, StageT,
      cutlass::conv::KernelImplicitTmaWarpSpecializedSm90>::CollectiveOp;
  using PS = cutlass::conv::ConvProblemShape<cutlass::conv::Operator::kFprop, 2>;
  using Kernel = cutlass::conv::kernel::ConvUniversal<PS, Main, Epi>;
  using Conv = cutlass::conv::device::ConvUniversalAdapter<Kernel>;
};

static const char *st_name(cutlass::Status s) { return cutlassGetStatusString(s); }

template <class C>
struct CutlassOp : ConvOp {
  using Conv = typename C::Conv;
  using Kernel = typename C::Kernel;
  Conv op;
  void *ws = nullptr;

  ~CutlassOp() override { if (ws) cudaFree(ws); }

  int prepare(const Problem &p, float beta, char *err, size_t errlen) override {
    using PS = typename C::PS;
    const int64_t Cc = 64;
    PS ps(cutlass::conv::Mode::kCrossCorrelation,
          {p.N, p.H, p.W, 64}, {int64_t(p.H) * p.W * Cc, int64_t(p.W) * Cc, Cc, 1},
          {64, 3, 3, 64}, {9 * Cc, 3 * Cc, Cc, 1},
          {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1);
    using StrideC = typename Kernel::StrideC;
    using StrideD = typename Kernel::StrideD;
    StrideC sc{};
    StrideD sd{};
    cute::for_each(cute::make_seq<cute::rank<0>(StrideC{})>{}, [&](auto i) {
      cute::get<0, i>(sc) = ps.stride_C[PS::RankT - 2 - i];
    });
    cute::for_each(cute::make_seq<cute::rank<0>(StrideD{})>{}, [&](auto i) {
      cute::get<0, i>(sd) = ps.stride_C[PS::RankT - 2 - i];
    });
    cutlass::KernelHardwareInfo hw;
    cudaGetDevice(&hw.device_id);
    hw.sm_count = cutlass::KernelHardwareInfo::query_device_multiprocessor_count(hw.device_id);
    typename Kernel::MainloopArguments ml{reinterpret_cast<const half_t *>(p.x),
                                          reinterpret_cast<const half_t *>(p.w)};
    typename Kernel::EpilogueArguments el{{}, reinterpret_cast<const half_t *>(p.res), sc,
                                          reinterpret_cast<half_t *>(p.out), sd};
    typename Conv::Arguments args{ps, ml, el, hw};
    auto &fa = args.epilogue.thread;
    fa.alpha = 1.0f;
    fa.beta = beta;
    fa.bias_ptr = reinterpret_cast<const half_t *>(p.bias);

    cutlass::Status st = op.can_implement(args);
    if (st != cutlass::Status::kSuccess) {
      snprintf(err, errlen, "can_implement:%s", st_name(st));
      return 1;
    }
    size_t wsz = Conv::get_workspace_size(args);
    if (ws) { cudaFree(ws); ws = nullptr; }
    if (wsz && cudaMalloc(&ws, wsz) != cudaSuccess) {
      snprintf(err, errlen, "workspace_malloc:%zu", wsz);
      cudaGetLastError();
      return 1;
    }
    st = op.initialize(args, ws);
    cudaError_t ce = cudaGetLastError();
    if (st != cutlass::Status::kSuccess || ce != cudaSuccess) {
      snprintf(err, errlen, "initialize:%s/%s", st_name(st), cudaGetErrorString(ce));
      return 1;
    }
    return 0;
  }

  int launch(cudaStream_t s, char *err, size_t errlen) override {
    cutlass::Status st = op.run(s);
    cudaError_t ce = cudaGetLastError();
    if (st != cutlass::Status::kSuccess || ce != cudaSuccess) {
      snprintf(err, errlen, "run:%s/%s", st_name(st), cudaGetErrorString(ce));
      return 1;
    }
    return 0;
  }

  void describe(char *buf, size_t len, bool dev) override {
    cudaFuncAttributes fa{};
    const void *k = (const void *)cutlass::device_kernel<Kernel>;
    cudaError_t e = dev ? cudaFuncGetAttributes(&fa, k) : cudaErrorNoDevice;
    int smem = int(Kernel::SharedStorageSize);
    int occ = -1;
    if (e == cudaSuccess) {
      cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, int(Kernel::MaxThreadsPerBlock),
                                                        smem) != cudaSuccess)
        occ = -1;
    }
    cudaGetLastError();
    snprintf(buf, len, "threads=%d regs=%d smem=%d stages=%d ctas_per_sm=%d",
             int(Kernel::MaxThreadsPerBlock), e == cudaSuccess ? fa.numRegs : -1, smem,
             int(C::Main::DispatchPolicy::Stages), occ);
  }
};

template <class C> static ConvOp *make_op() { return new CutlassOp<C>(); }

using cutlass::epilogue::thread::ReLu;
using cutlass::epilogue::thread::Identity;
#define CFG(name, TM, CM, ST, ACT, RELU) \
  v.push_back(CfgEntry{name, RELU, &make_op<Cfg<TM, CM, ST, ACT>>});

// Stages: auto fills smem (1 CTA/SM); s4 (128-row tiles, ~99 KB) and s6 (64-row
// tiles, ~99 KB) leave room for 2 CTAs/SM so one CTA's epilogue overlaps another's
// mainloop (the sm90 conv kernel is not persistent: one output tile per CTA).
#if PROBE_PART == 1
void probe_register_part1(std::vector<CfgEntry> &v) {
  CFG("t128x64x64_c1x1x1_sAuto", 128, 1, 0, ReLu, true)
  CFG("t128x64x64_c1x1x1_s4", 128, 1, 4, ReLu, true)
  CFG("t128x64x64_c1x1x1_sAuto_id", 128, 1, 0, Identity, false)
}
#elif PROBE_PART == 2
void probe_register_part2(std::vector<CfgEntry> &v) {
  CFG("t128x64x64_c2x1x1_sAuto", 128, 2, 0, ReLu, true)
  CFG("t128x64x64_c2x1x1_s4", 128, 2, 4, ReLu, true)
  CFG("t64x64x64_c1x1x1_sAuto", 64, 1, 0, ReLu, true)
}
#elif PROBE_PART == 3
void probe_register_part3(std::vector<CfgEntry> &v) {
  CFG("t64x64x64_c1x1x1_s6", 64, 1, 6, ReLu, true)
  CFG("t256x64x64_c1x1x1_sAuto", 256, 1, 0, ReLu, true)
  CFG("t256x64x64_c2x1x1_sAuto", 256, 2, 0, ReLu, true)
  CFG("t128x64x64_c1x1x1_s4_id", 128, 1, 4, Identity, false)
}
#endif

#else
// ================================================================= harness (part 0)
void probe_register_part1(std::vector<CfgEntry> &v);
void probe_register_part2(std::vector<CfgEntry> &v);
void probe_register_part3(std::vector<CfgEntry> &v);

static const int CH = 64;

// Watchdog: a hung kernel must not eat the whole device call. SIGALRM prints the row
// in flight (async-signal-safe write) and exits 4. PROBE_WATCHDOG_S overrides 90 s.
static char g_current[192] = "setup";
static void on_alarm(int) {
  static const char m[] = "FATAL watchdog: run took too long (hung kernel?); in flight: ";
  ssize_t r = write(1, m, sizeof m - 1);
  r = write(1, g_current, strnlen(g_current, sizeof g_current));
  r = write(1, "\n", 1);
  (void)r;
  _exit(4);
}

// Fatal path: a sticky CUDA error poisons the context; report and stop.
static void fatal_if_sticky(const char *where) {
  cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaGetLastError();
  if (e != cudaSuccess) {
    printf("FATAL %s: %s (%s); context unusable, stopping\n", where, cudaGetErrorName(e),
           cudaGetErrorString(e));
    fflush(stdout);
    exit(2);
  }
}

#define CK(call)                                                                           \
  do {                                                                                     \
    cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                               \
      printf("FATAL %s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
      fflush(stdout);                                                                      \
      exit(2);                                                                             \
    }                                                                                      \
  } while (0)

__device__ __forceinline__ uint32_t hash32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
  return x;
}
__device__ __forceinline__ float u01(uint64_t i, uint32_t seed) {
  uint32_t h = hash32(uint32_t(i) ^ hash32(uint32_t(i >> 32) + seed * 0x9e3779b9U));
  return (h >> 8) * (1.0f / 16777216.0f) + (0.5f / 16777216.0f);   // (0,1)
}

// kind 0: U(lo,hi); kind 1: N(0, hi) via Box-Muller
__global__ void k_fill(__half *p, size_t n, uint32_t seed, int kind, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float v;
    if (kind == 0) {
      v = lo + (hi - lo) * u01(i, seed);
    } else {
      float a = u01(2 * i, seed), b = u01(2 * i + 1, seed);
      v = hi * sqrtf(-2.0f * logf(a)) * cospif(2.0f * b);
    }
    p[i] = __float2half_rn(v);
  }
}

// Reference: one thread per output element, fp32 accumulate, conv only (no bias).
__global__ void k_ref(const __half *__restrict__ x, const __half *__restrict__ w, float *ref,
                      int N, int H, int W) {
  size_t total = size_t(N) * H * W * CH;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x) {
    int k = int(i % CH);
    size_t pix = i / CH;
    int q = int(pix % W), pp = int((pix / W) % H), n = int(pix / (size_t(W) * H));
    float acc = 0.f;
    for (int r = 0; r < 3; ++r) {
      int h = pp + r - 1;
      if (h < 0 || h >= H) continue;
      for (int s = 0; s < 3; ++s) {
        int ww = q + s - 1;
        if (ww < 0 || ww >= W) continue;
        const __half2 *xp = (const __half2 *)(x + ((size_t(n) * H + h) * W + ww) * CH);
        const __half2 *wp = (const __half2 *)(w + ((size_t(k) * 3 + r) * 3 + s) * CH);
        for (int c = 0; c < CH / 2; ++c) {
          float2 a = __half22float2(xp[c]), bb = __half22float2(wp[c]);
          acc = fmaf(a.x, bb.x, acc);
          acc = fmaf(a.y, bb.y, acc);
        }
      }
    }
    ref[i] = acc;
  }
}

// stats[0] = max abs err (float bits), stats[1] = max rel err (float bits),
// stats[2] = count of non-finite outputs. rel = |d - r| / (|r| + 1e-2).
__global__ void k_check(const __half *out, const float *ref, const __half *bias,
                        const __half *res, size_t total, int relu, int use_res,
                        unsigned int *stats) {
  float mabs = 0.f, mrel = 0.f;
  unsigned int bad = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x) {
    float r = ref[i] + __half2float(bias[i % CH]);
    if (use_res) r += __half2float(res[i]);
    if (relu) r = fmaxf(r, 0.f);
    float d = __half2float(out[i]);
    if (!isfinite(d)) { ++bad; continue; }
    float e = fabsf(d - r);
    mabs = fmaxf(mabs, e);
    mrel = fmaxf(mrel, e / (fabsf(r) + 1e-2f));
  }
  for (int o = 16; o; o >>= 1) {
    mabs = fmaxf(mabs, __shfl_xor_sync(0xffffffffu, mabs, o));
    mrel = fmaxf(mrel, __shfl_xor_sync(0xffffffffu, mrel, o));
    bad += __shfl_xor_sync(0xffffffffu, bad, o);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMax(&stats[0], __float_as_uint(mabs));
    atomicMax(&stats[1], __float_as_uint(mrel));
    if (bad) atomicAdd(&stats[2], bad);
  }
}

static int grid_for(size_t n) {
  size_t b = (n + 255) / 256;
  return int(b > 65536 ? 65536 : (b ? b : 1));
}

struct Case { int N, H, W; };
static const Case kCases[] = {{8, 64, 64}, {8, 128, 128}, {8, 256, 256}, {8, 512, 512},
                              {2, 1024, 1024}};
static const int kNumCases = sizeof(kCases) / sizeof(kCases[0]);
static const float kMaxAbsBound = 3e-2f;   // fp16 output; O(1) values

struct Best { float tflops; const char *cfg; };
static Best g_best[kNumCases][3];

struct Bufs {
  __half *x, *w, *bias, *res, *out;
  float *ref;
  unsigned int *stats;
};

static double conv_flops(const Case &c) { return 2.0 * c.N * c.H * c.W * CH * (9.0 * CH); }

static int iters_for(double flops) {
  double it = 1.5e-3 * 400e12 / flops;   // ~1.5 ms of work at 400 TFLOP/s
  return it < 20 ? 20 : (it > 400 ? 400 : int(it));
}

// Time `iters` launches: CUDA graph of the launches if capture works (hides host
// launch cost for the small cases), else a plain loop. Returns ms per launch, <0 on error.
static float time_op(ConvOp *op, cudaStream_t s, int iters, bool *graphed, char *err,
                     size_t errlen) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  float ms = -1.f;
  cudaGraph_t g = nullptr;
  cudaGraphExec_t ge = nullptr;
  *graphed = false;
  if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
    bool ok = true;
    for (int i = 0; i < iters && ok; ++i) ok = op->launch(s, err, errlen) == 0;
    cudaError_t ce = cudaStreamEndCapture(s, &g);
    if (ok && ce == cudaSuccess && cudaGraphInstantiate(&ge, g, 0) == cudaSuccess) {
      *graphed = true;
    }
  }
  cudaGetLastError();   // a failed capture is not fatal: fall back
  if (*graphed) {
    CK(cudaGraphLaunch(ge, s));   // warm the graph
    CK(cudaStreamSynchronize(s));
    CK(cudaEventRecord(e0, s));
    CK(cudaGraphLaunch(ge, s));
    CK(cudaEventRecord(e1, s));
  } else {
    CK(cudaEventRecord(e0, s));
    for (int i = 0; i < iters; ++i)
      if (op->launch(s, err, errlen)) goto out;
    CK(cudaEventRecord(e1, s));
  }
  CK(cudaEventSynchronize(e1));
  CK(cudaEventElapsedTime(&ms, e0, e1));
  ms /= iters;
out:
  if (ge) cudaGraphExecDestroy(ge);
  if (g) cudaGraphDestroy(g);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms;
}

// One (case, epilogue, config) row. Returns 1 if the row FAILed.
static int run_row(const CfgEntry &ce, ConvOp *op, int ci, char epi, const Bufs &b,
                   cudaStream_t s) {
  const Case &c = kCases[ci];
  size_t total = size_t(c.N) * c.H * c.W * CH;
  Problem p{c.N, c.H, c.W, b.x, b.w, b.bias, b.res, b.out};
  char err[256] = "";
  char head[160];
  snprintf(head, sizeof head, "cutlass %s %d %d %d epi=%c", ce.name, c.N, c.H, c.W, epi);
  snprintf(g_current, sizeof g_current, "%s", head);
  float beta = epi == 'b' ? 1.f : 0.f;
  if (op->prepare(p, beta, err, sizeof err)) {
    printf("%s ms=- tflops=- maxabs=- status=UNSUPPORTED reason=%s\n", head, err);
    fflush(stdout);
    return 0;
  }
  // correctness: poison output (0xFFFF = fp16 NaN) so a no-op kernel cannot pass
  CK(cudaMemsetAsync(b.out, 0xFF, total * sizeof(__half), s));
  if (op->launch(s, err, sizeof err)) {
    printf("%s ms=- tflops=- maxabs=- status=UNSUPPORTED reason=%s\n", head, err);
    fflush(stdout);
    fatal_if_sticky("after failed launch");
    return 0;
  }
  cudaError_t e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) {
    printf("%s ms=- tflops=- maxabs=- status=FAIL reason=exec:%s\n", head, cudaGetErrorString(e));
    fflush(stdout);
    fatal_if_sticky("conv kernel execution");
    return 1;
  }
  CK(cudaMemsetAsync(b.stats, 0, 3 * sizeof(unsigned int), s));
  k_check<<<grid_for(total), 256, 0, s>>>(b.out, b.ref, b.bias, b.res, total, epi != 'c',
                                           epi == 'b', b.stats);
  CK(cudaGetLastError());
  unsigned int st[3];
  CK(cudaMemcpyAsync(st, b.stats, sizeof st, cudaMemcpyDeviceToHost, s));
  CK(cudaStreamSynchronize(s));
  float mabs, mrel;
  memcpy(&mabs, &st[0], 4);
  memcpy(&mrel, &st[1], 4);
  bool ok = st[2] == 0 && mabs <= kMaxAbsBound;

  // timing: warm-up, then >= 20 launches
  for (int i = 0; i < 3; ++i)
    if (op->launch(s, err, sizeof err)) break;
  CK(cudaStreamSynchronize(s));
  int iters = iters_for(conv_flops(c));
  bool graphed = false;
  float ms = time_op(op, s, iters, &graphed, err, sizeof err);
  fatal_if_sticky("timing");
  if (ms <= 0.f) {
    printf("%s ms=- tflops=- maxabs=%.3g status=FAIL reason=timing:%s\n", head, mabs, err);
    fflush(stdout);
    return 1;
  }
  double tf = conv_flops(c) / (ms * 1e-3) / 1e12;
  // minimal HBM traffic: x + out (+ residual) + weights
  double bytes = 2.0 * total * 2 + (epi == 'b' ? 2.0 * total : 0) + 2.0 * 64 * 576;
  printf("%s ms=%.4f tflops=%.1f maxabs=%.3g status=%s maxrel=%.3g nonfinite=%u iters=%d "
         "graph=%d eff_GBps=%.0f\n",
         head, ms, tf, mabs, ok ? "OK" : "FAIL", mrel, st[2], iters, graphed ? 1 : 0,
         bytes / (ms * 1e-3) / 1e9);
  fflush(stdout);
  int ei = epi - 'a';
  if (ok && tf > g_best[ci][ei].tflops) g_best[ci][ei] = Best{float(tf), ce.name};
  return ok ? 0 : 1;
}

static void copy_row(int ci, const Bufs &b, cudaStream_t s) {
  const Case &c = kCases[ci];
  size_t bytes = size_t(c.N) * c.H * c.W * CH * sizeof(__half);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) CK(cudaMemcpyAsync(b.out, b.x, bytes, cudaMemcpyDeviceToDevice, s));
  int iters = 20;
  CK(cudaEventRecord(e0, s));
  for (int i = 0; i < iters; ++i)
    CK(cudaMemcpyAsync(b.out, b.x, bytes, cudaMemcpyDeviceToDevice, s));
  CK(cudaEventRecord(e1, s));
  CK(cudaEventSynchronize(e1));
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  ms /= iters;
  double gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;   // read + write
  // conv lower bound at this bandwidth: epi a/c move x+out, epi b x+out+res
  double la = 2.0 * bytes / (gbps * 1e9) * 1e3, lb = 3.0 * bytes / (gbps * 1e9) * 1e3;
  printf("copy d2d %d %d %d bytes=%zu ms=%.4f GBps=%.0f (read+write) conv_floor_ms_ac=%.4f "
         "conv_floor_ms_b=%.4f\n",
         c.N, c.H, c.W, bytes, ms, gbps, la, lb);
  fflush(stdout);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

int main(int argc, char **argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int only_case = -1;   // optional: conv_cutlass <case index 0..4>
  bool list = false;    // conv_cutlass --list: static config info, no GPU needed
  if (argc > 1 && !strcmp(argv[1], "--list")) list = true;
  else if (argc > 1) {
    only_case = atoi(argv[1]);
    if (only_case < 0 || only_case >= kNumCases) {
      printf("usage: conv_cutlass [--list | case 0..%d]\n", kNumCases - 1);
      return 2;
    }
  }

  std::vector<CfgEntry> cfgs;
  probe_register_part1(cfgs);
  probe_register_part2(cfgs);
  probe_register_part3(cfgs);
  if (list) {
    for (auto &c : cfgs) {
      ConvOp *o = c.make();
      char d[160];
      o->describe(d, sizeof d, false);
      printf("cfg %s act=%s %s\n", c.name, c.relu ? "relu" : "identity", d);
      delete o;
    }
    return 0;
  }

  const char *wd = getenv("PROBE_WATCHDOG_S");
  signal(SIGALRM, on_alarm);
  alarm(wd ? unsigned(atoi(wd)) : 90u);

  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev == 0) {
    printf("conv_probe: no usable CUDA device (cudaGetDeviceCount: %s, count=%d); "
           "this probe needs an sm_90 GPU (H100/H200)\n",
           e != cudaSuccess ? cudaGetErrorString(e) : "ok", ndev);
    return 3;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  printf("device: %s sm_%d%d SMs=%d mem=%.1fGiB driver=%d runtime=%d\n", prop.name, prop.major,
         prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, drv, rt);
  if (prop.major != 9 || prop.minor != 0) {
    printf("conv_probe: binary holds sm_90a code only; device is sm_%d%d\n", prop.major,
           prop.minor);
    return 3;
  }
  CK(cudaSetDevice(0));

  size_t maxel = 0;
  for (int i = 0; i < kNumCases; ++i) {
    size_t n = size_t(kCases[i].N) * kCases[i].H * kCases[i].W * CH;
    if (n > maxel) maxel = n;
  }
  Bufs b{};
  CK(cudaMalloc(&b.x, maxel * 2));
  CK(cudaMalloc(&b.res, maxel * 2));
  CK(cudaMalloc(&b.out, maxel * 2));
  CK(cudaMalloc(&b.ref, maxel * 4));
  CK(cudaMalloc(&b.w, 64 * 576 * 2));
  CK(cudaMalloc(&b.bias, 64 * 2));
  CK(cudaMalloc(&b.stats, 16));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

  std::vector<ConvOp *> ops(cfgs.size());
  for (size_t i = 0; i < cfgs.size(); ++i) {
    ops[i] = cfgs[i].make();
    char d[160];
    ops[i]->describe(d, sizeof d, true);
    printf("cfg %s act=%s %s\n", cfgs[i].name, cfgs[i].relu ? "relu" : "identity", d);
  }
  fatal_if_sticky("describe");

  int fails = 0;
  for (int ci = 0; ci < kNumCases; ++ci) {
    if (only_case >= 0 && ci != only_case) continue;
    const Case &c = kCases[ci];
    size_t total = size_t(c.N) * c.H * c.W * CH;
    k_fill<<<grid_for(total), 256, 0, s>>>(b.x, total, 11 + ci, 0, -1.f, 1.f);
    k_fill<<<grid_for(total), 256, 0, s>>>(b.res, total, 23 + ci, 0, -1.f, 1.f);
    k_fill<<<grid_for(64 * 576), 256, 0, s>>>(b.w, 64 * 576, 37 + ci, 1, 0.f, 1.f / 24.f);
    k_fill<<<1, 64, 0, s>>>(b.bias, 64, 41 + ci, 0, -0.5f, 0.5f);
    snprintf(g_current, sizeof g_current, "reference N=%d H=%d W=%d", c.N, c.H, c.W);
    k_ref<<<grid_for(total), 256, 0, s>>>(b.x, b.w, b.ref, c.N, c.H, c.W);
    CK(cudaGetLastError());
    fatal_if_sticky("reference");
    copy_row(ci, b, s);
    for (size_t i = 0; i < cfgs.size(); ++i) {
      const char *epis = cfgs[i].relu ? "ab" : "c";
      for (const char *ep = epis; *ep; ++ep) fails += run_row(cfgs[i], ops[i], ci, *ep, b, s);
    }
  }

  // summary
  char line[2048];
  size_t off = snprintf(line, sizeof line, "summary best_tflops");
  for (int ci = 0; ci < kNumCases; ++ci) {
    for (int ei = 0; ei < 3; ++ei) {
      const Best &bb = g_best[ci][ei];
      if (!bb.cfg) continue;
      printf("best N=%d H=%d W=%d epi=%c tflops=%.1f cfg=%s\n", kCases[ci].N, kCases[ci].H,
             kCases[ci].W, 'a' + ei, bb.tflops, bb.cfg);
      off += snprintf(line + off, sizeof line - off, " H%d%c=%.1f", kCases[ci].H, 'a' + ei,
                      bb.tflops);
    }
  }
  printf("%s fails=%d\n", line, fails);
  for (auto *o : ops) delete o;
  return fails ? 1 : 0;
}
#endif
