# egressd — see README.md.  `make` builds, `make test` tests, `make demo` shows.
#
#   make [V=1] [CUDA=0] [DEPS=dir]   build/ : egressd, egressd-producer, egressd-worker (installed),
#                                    egressd-mklatents, egressd-mktaesd (developer tools)
#   make test                        unit + integration tests, plain and ASan/UBSan builds (CI)
#   make test-gpu                    GPU tests (needs an NVIDIA GPU)
#   make soak                        the long random-SIGKILL campaign, see docs/RELIABILITY.md
#   make bench                       benchmarks (GPU machine), see docs/BENCHMARKS.md
#   make demo                        install build deps, build, run one job, say where the video is
#
# Build variants live apart: build/ (release), build/t (tests: -DEGR_TESTING
# enables fault-injection hooks), build/san (tests under ASan/UBSan).

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-7s %s\n' $(1) $(2);)

# gcc by default (the sanitizer and warning flags are gcc's); CC=clang works too
ifeq ($(origin CC),default)
CC := gcc
endif
NVCC ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
CUDA ?= $(if $(NVCC),1,0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
DEPS ?=

VARIANT ?= release
ifeq ($(VARIANT),release)
B := build
VFLAGS := -O2 -g
else ifeq ($(VARIANT),test)
B := build/t
VFLAGS := -O1 -g -DEGR_TESTING=1
else ifeq ($(VARIANT),san)
B := build/san
VFLAGS := -O1 -g -DEGR_TESTING=1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANLD := -fsanitize=address,undefined
else
$(error VARIANT must be release, test or san)
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?=
# inih is vendored (config/inih, BSD): built with a line buffer long enough for
# a 128-channel l2r_weights line; these settings are config/conf.h's contract
# (EGR_INI_LINE_MAX = INI_MAX_LINE - 3) and every file that includes ini.h
# must see the same ones, so they are global.
INIH_DEFS := -DINI_MAX_LINE=8194 -DINI_ALLOW_MULTILINE=0 -DINI_USE_STACK=1 -DINI_ALLOW_BOM=1 \
	     -DINI_ALLOW_INLINE_COMMENTS=1 -DINI_STOP_ON_FIRST_ERROR=0 -DINI_ALLOW_NO_VALUE=0
CFLAGS += -std=gnu11 $(WARN) $(VFLAGS) -ffp-contract=off -D_GNU_SOURCE -pthread -MMD -MP \
	  $(if $(DEPS),-I$(DEPS)/include) -DEGR_CUDA=$(CUDA) $(INIH_DEFS) -I.
LDFLAGS += $(SANLD) -pthread $(if $(DEPS),-L$(DEPS)/lib)
# liburing, libpng, zlib and jansson are linked statically: the GPU machine has none of them.
STATIC_LIBS := -Wl,-Bstatic -luring -lpng16 -lz -ljansson -Wl,-Bdynamic
LDLIBS := $(STATIC_LIBS) -lm -lrt

NVFLAGS := -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
	   -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -fmad=false -DEGR_CUDA=1 \
	   -I. $(if $(filter-out release,$(VARIANT)),-DEGR_TESTING=1 -g)
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lstdc++

# ---- who links what ----
# Each binary names the rooms it uses (README "Where things live").  The
# ground floor (base/), formats and config are shared by every role.
BASE_SRC := daemon/base/args.c daemon/base/fault.c daemon/base/fs.c daemon/base/half.c daemon/base/log.c
# job files name latent2rgb presets (l2r_preset), checked when the job is parsed
CONF_SRC := config/conf.c config/job.c config/inih/ini.c config/l2r_preset.c
# a job's output on disk (workers/output.c) and what it calls: the frame
# encoders, the write path, frame sizes
OUTPUT_SRC := workers/output.c workers/wio.c daemon/formats/png.c daemon/formats/y4m.c daemon/decode/frame.c
SUP_SRC := daemon/supervisor/egressd.c daemon/supervisor/spool.c daemon/supervisor/supervisor.c \
	   shm/ring.c $(OUTPUT_SRC) $(CONF_SRC) $(BASE_SRC)
PROD_SRC := daemon/producer/producer.c daemon/producer/plan.c daemon/producer/naive.c \
	    daemon/producer/backend_cpu.c daemon/decode/frame.c daemon/decode/taesd.c \
	    daemon/formats/npy.c daemon/formats/safetensors.c shm/ring.c $(OUTPUT_SRC) $(CONF_SRC) \
	    $(BASE_SRC)
WORKER_SRC := workers/worker.c shm/ring.c $(OUTPUT_SRC) $(CONF_SRC) $(BASE_SRC)
MKLAT_SRC := daemon/tools/mklatents.c daemon/decode/frame.c daemon/formats/npy.c daemon/formats/safetensors.c \
	     $(CONF_SRC) $(BASE_SRC)
MKTAESD_SRC := daemon/tools/mktaesd.c daemon/decode/taesd.c daemon/formats/safetensors.c $(BASE_SRC)
# Unit tests link every C module (one library, tests only).
TEST_LIB_SRC := $(sort $(SUP_SRC) $(PROD_SRC) $(WORKER_SRC) $(MKLAT_SRC) $(MKTAESD_SRC))
TEST_LIB_SRC := $(filter-out daemon/supervisor/egressd.c daemon/producer/producer.c workers/worker.c \
		  daemon/tools/%.c,$(TEST_LIB_SRC))
# The producer's GPU part: every .cu of producer/ and decode/ (the cuda
# backend's pipeline, its naive baseline, TAESD's kernels and resident
# weights); with CUDA=0, backend_nocuda.c stands in for all of them.
CU_SRC := $(sort $(wildcard daemon/producer/*.cu daemon/decode/*.cu))
ifeq ($(CUDA),1)
CU_OBJ := $(CU_SRC:%.cu=$(B)/obj/%.o)
PROD_CUDA_LIBS := $(CUDA_LIBS)
else
CU_OBJ := $(B)/obj/daemon/producer/backend_nocuda.o
PROD_CUDA_LIBS :=
endif

obj = $(patsubst %.c,$(B)/obj/%.o,$(sort $(1)))
BINS := $(B)/egressd $(B)/egressd-producer $(B)/egressd-worker
TOOLS := $(B)/egressd-mklatents $(B)/egressd-mktaesd
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
GPU_TEST_SRC := $(sort $(wildcard tests/gpu/*.cu))
GPU_TEST_BINS := $(GPU_TEST_SRC:tests/gpu/%.cu=$(B)/tests/gpu/%)

.PHONY: all clean test test-gpu soak bench demo deps deps-bundle install uninstall tests-bin gpu-tests-bin
all: $(BINS) $(TOOLS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(B)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVFLAGS) $(if $(DEPS),-I$(DEPS)/include) -MMD -MP -MF $(@:.o=.d) -c -o $@ $<

$(B)/libegr-test.a: $(call obj,$(TEST_LIB_SRC))
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/egressd: $(call obj,$(SUP_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-producer: $(call obj,$(PROD_SRC)) $(CU_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PROD_CUDA_LIBS) $(LDLIBS)

$(B)/egressd-worker: $(call obj,$(WORKER_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-mklatents: $(call obj,$(MKLAT_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-mktaesd: $(call obj,$(MKTAESD_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libegr-test.a
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libegr-test.a $(LDLIBS)

# GPU tests: nvcc compiles, the C compiler links (nvcc rejects -Wl,-Bstatic)
$(B)/tests/gpu/%: $(B)/obj/tests/gpu/%.o $(filter-out $(B)/obj/daemon/producer/backend_nocuda.o,$(CU_OBJ)) $(B)/libegr-test.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CUDA_LIBS) $(LDLIBS)

tests-bin: $(BINS) $(TOOLS) $(UNIT_BINS)
gpu-tests-bin: $(BINS) $(TOOLS) $(GPU_TEST_BINS)

# ---- tests ----
# `make test`: unit tests and integration tests against the test build, then
# the unit tests and the crash/bad-input integration tests again under
# ASan/UBSan; one summary line ("N passed, N failed, N skipped") at the end.
test:
	$(Q)$(MAKE) --no-print-directory VARIANT=test tests-bin
	$(Q)$(MAKE) --no-print-directory VARIANT=san tests-bin
	$(Q)tests/run.sh --bin build/t --san build/san

test-gpu:
	$(Q)$(MAKE) --no-print-directory VARIANT=test gpu-tests-bin
	$(Q)tests/run.sh --bin build/t --gpu

# `make soak`: it_chaos.sh's long campaign (>= 1000 kills, then aggressive
# timing, then slow writes; 10-20 minutes), run directly: past run.sh's timeout
soak:
	$(Q)$(MAKE) --no-print-directory VARIANT=test tests-bin
	$(Q)SOAK=1 EGR_BIN=build/t bash tests/it/it_chaos.sh

bench: all
	$(Q)tests/bench/run.sh

demo:
	$(Q)tests/demo.sh

deps:
	$(Q)tests/deps.sh

# Static libraries and headers for a machine without Debian's -dev packages
# (the GPU machine): `make deps-bundle`, carry .deps/, build with DEPS=.deps.
deps-bundle:
	$(Q)tests/deps.sh --bundle .deps

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/egressd $(DESTDIR)/etc/systemd/system
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	test -e $(DESTDIR)/etc/egressd/egressd.ini || install -m 644 config/egressd.ini $(DESTDIR)/etc/egressd/
	install -m 644 systemd/egressd.service $(DESTDIR)/etc/systemd/system/
	install -d $(DESTDIR)$(PREFIX)/share/doc/egressd
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/egressd/

clean:
	rm -rf build

# keep nvcc's objects of GPU tests (intermediates otherwise)
.SECONDARY:

-include $(shell find build -name '*.d' 2>/dev/null)
