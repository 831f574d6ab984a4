/*
 * bench_d2h: how fast can bytes leave the GPU, by kind of destination.
 *
 *   pinned      cudaMallocHost (the raw peak the issue quotes, ~55 GB/s on H100)
 *   shm-reg     MAP_SHARED tmpfs memory (what the ring's slots are) after
 *               cudaHostRegister: the path backend_cuda uses
 *   shm         the same memory unregistered (pipeline = pageable)
 *   malloc      plain pageable heap memory (pipeline = naive's habit)
 *
 * For each, D2H GB/s of one copy (median of reps, CUDA events) and of a
 * back-to-back queue of copies (what a busy copy stream sees); then what
 * cudaHostRegister costs for a slot area, with and without pre-faulting.
 * Exit 0, or 77 without a GPU.  Not a test: numbers for docs/CUDA.md.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cuda_runtime.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define CK(call)                                                                          \
	do {                                                                              \
		cudaError_t e_ = (call);                                                  \
		if (e_ != cudaSuccess) {                                                  \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,     \
				cudaGetErrorString(e_));                                  \
			exit(1);                                                          \
		}                                                                         \
	} while (0)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static void *shm_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmap(%zu): %s\n", n, strerror(errno));
		exit(1);
	}
	return p;
}

/* median single-copy GB/s and back-to-back GB/s for D2H of n bytes into dst */
static void measure(const char *name, void *dst, const void *src, size_t n, cudaStream_t s)
{
	enum { REPS = 15, QUEUE = 12 };
	cudaEvent_t a, b;
	float ms[REPS];

	CK(cudaEventCreate(&a));
	CK(cudaEventCreate(&b));
	for (int i = 0; i < 3; i++)
		CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
	CK(cudaStreamSynchronize(s));
	for (int i = 0; i < REPS; i++) {
		CK(cudaEventRecord(a, s));
		CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
		CK(cudaEventRecord(b, s));
		CK(cudaEventSynchronize(b));
		CK(cudaEventElapsedTime(&ms[i], a, b));
	}
	qsort(ms, REPS, sizeof(float), cmp_f);
	double t0 = now_s();
	CK(cudaEventRecord(a, s));
	for (int i = 0; i < QUEUE; i++)
		CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
	CK(cudaEventRecord(b, s));
	CK(cudaEventSynchronize(b));
	double host = now_s() - t0;
	float qms;
	CK(cudaEventElapsedTime(&qms, a, b));
	printf("  %-8s %8.1f MiB  one copy %6.1f GB/s (median of %d)   %d queued %6.1f GB/s (host clock %6.1f)\n", name,
	       n / 1048576.0, n / (ms[REPS / 2] * 1e6), REPS, QUEUE, (double)n * QUEUE / (qms * 1e6),
	       (double)n * QUEUE / host / 1e9);
	cudaEventDestroy(a);
	cudaEventDestroy(b);
}

static void register_cost(size_t n)
{
	for (int pre = 1; pre >= 0; pre--) {
		void *p = shm_map(n);
		double t0 = now_s();
		if (pre && madvise(p, n, MADV_POPULATE_WRITE) != 0) {
			for (size_t o = 0; o < n; o += 4096)
				((volatile char *)p)[o] = 0;
		}
		double t1 = now_s();
		CK(cudaHostRegister(p, n, cudaHostRegisterDefault));
		double t2 = now_s();
		CK(cudaHostUnregister(p));
		double t3 = now_s();
		printf("  %7.0f MiB %-15s prefault %7.1f ms  cudaHostRegister %7.1f ms (%5.1f GB/s)  cudaHostUnregister %6.1f ms\n",
		       n / 1048576.0, pre ? "pre-faulted" : "not pre-faulted", (t1 - t0) * 1e3, (t2 - t1) * 1e3,
		       n / (t2 - t1) / 1e9, (t3 - t2) * 1e3);
		munmap(p, n);
	}
}

int main(void)
{
	int ndev = 0;
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || !ndev) {
		printf("bench_d2h: no CUDA device, skipped\n");
		return 77;
	}
	cudaDeviceProp prop;
	CK(cudaGetDeviceProperties(&prop, 0));
	printf("bench_d2h on %s\n", prop.name);

	const size_t sizes[] = {4u << 20, 24u << 20, 96u << 20};
	const size_t maxn = 96u << 20;
	cudaStream_t s;
	void *dsrc;
	CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	CK(cudaMalloc(&dsrc, maxn));
	CK(cudaMemset(dsrc, 0x3c, maxn));

	void *pinned;
	CK(cudaMallocHost(&pinned, maxn));
	void *heap = malloc(maxn);
	memset(heap, 1, maxn);
	void *shm_reg = shm_map(maxn);
	madvise(shm_reg, maxn, MADV_POPULATE_WRITE);
	CK(cudaHostRegister(shm_reg, maxn, cudaHostRegisterDefault));
	void *shm = shm_map(maxn);
	madvise(shm, maxn, MADV_POPULATE_WRITE);

	printf("D2H by destination:\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		measure("pinned", pinned, dsrc, sizes[i], s);
		measure("shm-reg", shm_reg, dsrc, sizes[i], s);
		measure("shm", shm, dsrc, sizes[i], s);
		measure("malloc", heap, dsrc, sizes[i], s);
	}
	printf("cudaHostRegister cost of a slot area (MAP_SHARED tmpfs):\n");
	register_cost(256u << 20);
	register_cost(2048u << 20);

	CK(cudaHostUnregister(shm_reg));
	munmap(shm_reg, maxn);
	munmap(shm, maxn);
	free(heap);
	CK(cudaFreeHost(pinned));
	CK(cudaFree(dsrc));
	CK(cudaStreamDestroy(s));
	return 0;
}
