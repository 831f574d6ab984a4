# egressd — see README.md.  `make` builds, `make test` tests, `make demo` shows.
#
#   make [V=1] [CUDA=0] [DEPS=dir]   build/ : egressd, egressd-producer, egressd-worker, egressctl (installed),
#                                    egressd-mklatents, egressd-mktaesd, egressd-mktaehv, egressd-mkwanvae (developer tools)
#   make test                        unit + integration tests, plain and ASan/UBSan builds (CI)
#   make test-gpu                    GPU tests (needs an NVIDIA GPU)
#   make soak                        the long random-SIGKILL campaign, see docs/RELIABILITY.md
#   make bench                       benchmarks (GPU machine): bench-taesd, bench-copy, bench-jobs, bench-encode, bench-wan,
#                                    bench-taehv (and bench-pipeline alone), each one 8-minute run; see docs/BENCHMARKS.md
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
# FFmpeg's libraries (mp4/mkv output), linked dynamically as Debian builds
# them (libx264, libx265, SVT-AV1 come with libavcodec).  Only video.c needs
# their headers.  Without pkg-config's files (DEPS=dir from
# tests/bench/ffmpeg_bundle.sh) the plain names are used, and the binaries
# look for the bundled .so files in DEPS/lib first (an RPATH, which unlike a
# RUNPATH also serves libavcodec's own dependencies).
AV_PKGS := libavformat libavcodec libavutil
# VIDEO=0 (the default where libavcodec's headers are missing) builds
# daemon/formats/video_none.c instead: mp4/mkv jobs are refused with a reason.
VIDEO ?= $(if $(or $(shell pkg-config --exists $(AV_PKGS) 2>/dev/null && echo y),$(wildcard $(DEPS)/include/libavcodec/avcodec.h)),1,0)
VIDEO_SRC := $(if $(filter 1,$(VIDEO)),daemon/formats/video.c,daemon/formats/video_none.c)
AV_CFLAGS := $(shell pkg-config --cflags $(AV_PKGS) 2>/dev/null)
AV_RPATH := -Wl,--disable-new-dtags -Wl,-rpath,$(abspath $(DEPS)/lib)
AV_LIBS := $(if $(filter 1,$(VIDEO)),$(or $(shell pkg-config --libs $(AV_PKGS) 2>/dev/null),-lavformat -lavcodec -lavutil) \
	   $(if $(DEPS),$(AV_RPATH)))

NVFLAGS := -O2 -std=c++17 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90 \
	   -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -fmad=false -DEGR_CUDA=1 \
	   -I. $(if $(filter-out release,$(VARIANT)),-DEGR_TESTING=1 -g)
# cuDNN and cuBLAS (the video decoders' convolutions and attention, gnet.cu),
# linked dynamically with an RPATH: the toolkit's by default; where cuDNN or
# cuBLAS come as Python wheels (the GPU machine), CUDNN_DIR / CUBLAS_DIR name
# the package directory (.../site-packages/nvidia/cudnn), lib/ or lib64/ inside.
CUDNN_DIR ?= $(CUDA_HOME)
CUBLAS_DIR ?= $(CUDA_HOME)
libdir_of = $(firstword $(wildcard $(1)/lib64/$(2) $(1)/lib/$(2)) $(1)/lib64/$(2))
CUDNN_LIB := $(dir $(call libdir_of,$(CUDNN_DIR),libcudnn.so.9))
CUBLAS_LIB := $(dir $(call libdir_of,$(CUBLAS_DIR),libcublas.so.13))
NVFLAGS += -I$(CUDNN_DIR)/include $(if $(filter-out $(CUDA_HOME),$(CUBLAS_DIR)),-I$(CUBLAS_DIR)/include)
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcudart_static -L$(CUDNN_LIB) -l:libcudnn.so.9 -Wl,-rpath,$(CUDNN_LIB) \
	     -L$(CUBLAS_LIB) -l:libcublas.so.13 -Wl,-rpath,$(CUBLAS_LIB) -ldl -lstdc++

# ---- who links what ----
# Each binary names the rooms it uses (README "Where things live").  The
# ground floor (base/), formats and config are shared by every role.
BASE_SRC := daemon/base/args.c daemon/base/fault.c daemon/base/fence.c daemon/base/fs.c daemon/base/half.c daemon/base/log.c \
	    daemon/base/safepath.c
# job files name latent2rgb presets (l2r_preset) and TAEHV models (taehv_model,
# daemon/decode/taehv.c's table), checked when the job is parsed
CONF_SRC := config/conf.c config/job.c config/inih/ini.c config/l2r_preset.c \
	    daemon/decode/taehv.c daemon/formats/safetensors.c
# a job's output on disk (workers/output.c, output_video.c) and what it calls:
# the frame encoders, video encoding and muxing (libav*: every binary that
# links OUTPUT_SRC links AV_LIBS), the write path, frame sizes
OUTPUT_SRC := workers/output.c workers/output_video.c workers/wio.c daemon/formats/png.c daemon/formats/y4m.c \
	      $(VIDEO_SRC) daemon/decode/frame.c
SUP_SRC := daemon/supervisor/cancel.c daemon/supervisor/egressd.c daemon/supervisor/lease.c daemon/supervisor/metrics.c \
	   daemon/supervisor/queue.c daemon/supervisor/spool.c daemon/supervisor/status.c daemon/supervisor/supervisor.c \
	   daemon/base/sdnotify.c \
	   shm/ring.c $(OUTPUT_SRC) $(CONF_SRC) $(BASE_SRC)
PROD_SRC := daemon/producer/producer.c daemon/producer/plan.c daemon/producer/naive.c daemon/producer/loader.c \
	    daemon/producer/backend_cpu.c daemon/producer/cpu_video.c daemon/decode/frame.c daemon/decode/taehv.c \
	    daemon/decode/taesd.c daemon/decode/wanvae.c \
	    daemon/formats/npy.c daemon/formats/safetensors.c shm/ring.c $(OUTPUT_SRC) $(CONF_SRC) \
	    $(BASE_SRC)
WORKER_SRC := workers/worker.c shm/ring.c $(OUTPUT_SRC) $(CONF_SRC) $(BASE_SRC)
MKLAT_SRC := daemon/tools/mklatents.c daemon/decode/frame.c daemon/formats/npy.c daemon/formats/safetensors.c \
	     $(CONF_SRC) $(BASE_SRC)
# egressctl: the client; it reads the daemon's config and parses jobs with the daemon's parser
CLIENT_SRC := daemon/client/client.c daemon/client/cmd_cancel.c daemon/client/cmd_status.c \
	      daemon/client/cmd_submit.c daemon/client/cmd_wait.c daemon/client/egressctl.c $(CONF_SRC) $(BASE_SRC)
MKTAESD_SRC := daemon/tools/mktaesd.c daemon/decode/taesd.c daemon/formats/safetensors.c $(BASE_SRC)
MKTAEHV_SRC := daemon/tools/mktaehv.c daemon/decode/taehv.c daemon/decode/taesd.c daemon/formats/safetensors.c \
	       $(BASE_SRC)
MKWANVAE_SRC := daemon/tools/mkwanvae.c daemon/decode/wanvae.c daemon/decode/taesd.c daemon/formats/safetensors.c \
		$(BASE_SRC)
# Unit tests link every C module (one library, tests only).
TEST_LIB_SRC := $(sort $(SUP_SRC) $(PROD_SRC) $(WORKER_SRC) $(MKLAT_SRC) $(MKTAESD_SRC) $(MKTAEHV_SRC) $(MKWANVAE_SRC))
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
BINS := $(B)/egressd $(B)/egressd-producer $(B)/egressd-worker $(B)/egressctl
TOOLS := $(B)/egressd-mklatents $(B)/egressd-mktaesd $(B)/egressd-mktaehv $(B)/egressd-mkwanvae
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
GPU_TEST_SRC := $(sort $(wildcard tests/gpu/*.cu))
GPU_TEST_BINS := $(GPU_TEST_SRC:tests/gpu/%.cu=$(B)/tests/gpu/%)

.PHONY: all clean test test-gpu soak bench bench-taesd bench-copy bench-jobs bench-wan bench-taehv bench-pipeline demo deps \
	deps-bundle \
	install uninstall tests-bin gpu-tests-bin
all: $(BINS) $(TOOLS)

$(B)/obj/daemon/formats/video.o: CFLAGS += $(AV_CFLAGS)

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
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(AV_LIBS) $(LDLIBS)

$(B)/egressd-producer: $(call obj,$(PROD_SRC)) $(CU_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PROD_CUDA_LIBS) $(AV_LIBS) $(LDLIBS)

$(B)/egressd-worker: $(call obj,$(WORKER_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(AV_LIBS) $(LDLIBS)

$(B)/egressctl: $(call obj,$(CLIENT_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-mklatents: $(call obj,$(MKLAT_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-mktaesd: $(call obj,$(MKTAESD_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-mktaehv: $(call obj,$(MKTAEHV_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/egressd-mkwanvae: $(call obj,$(MKWANVAE_SRC))
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libegr-test.a
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libegr-test.a $(AV_LIBS) $(LDLIBS)

# GPU tests: nvcc compiles, the C compiler links (nvcc rejects -Wl,-Bstatic)
$(B)/tests/gpu/%: $(B)/obj/tests/gpu/%.o $(filter-out $(B)/obj/daemon/producer/backend_nocuda.o,$(CU_OBJ)) $(B)/libegr-test.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CUDA_LIBS) $(AV_LIBS) $(LDLIBS)

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

# Benchmarks (docs/BENCHMARKS.md), against the build of this VARIANT (release
# by default), with the decode-alone and D2H tools beside it when CUDA=1.
# `make bench` runs the targets one after the other; each fits one 8-minute
# call on the GPU machine by itself.
BENCH_TOOLS := $(if $(filter 1,$(CUDA)),$(B)/tests/gpu/test_taesd_gpu $(B)/tests/gpu/test_wanvae_gpu \
	$(B)/tests/gpu/test_taehv_gpu $(B)/tests/gpu/bench_d2h)
bench: all $(BENCH_TOOLS)
	$(Q)BENCH_BIN=$${BENCH_BIN:-$(B)} tests/bench/all.sh

bench-taesd bench-copy bench-wan bench-taehv bench-pipeline: all $(BENCH_TOOLS)
# bench-encode: the encode-bound rows of docs/ENCODE.md (issue 10); on the GPU
# machine build with DEPS=.deps after tests/bench/ffmpeg_unpack.sh
.PHONY: bench-encode
bench-jobs bench-encode: all
bench-taesd bench-copy bench-jobs bench-encode bench-wan bench-taehv bench-pipeline:
	$(Q)BENCH_BIN=$${BENCH_BIN:-$(B)} tests/bench/$(if $(filter bench-pipeline,$@),run,$@).sh

demo:
	$(Q)tests/demo.sh

deps:
	$(Q)tests/deps.sh

# Static libraries and headers for a machine without Debian's -dev packages
# (the GPU machine): `make deps-bundle`, carry .deps/, build with DEPS=.deps.
deps-bundle:
	$(Q)tests/deps.sh --bundle .deps

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the three daemon binaries
# (not the developer tools), the unit (its paths rewritten for PREFIX), the
# sysusers.d and tmpfiles.d entries (system user egressd, the spool and
# /var/lib/egressd), the configuration (kept if present) and the docs.  As
# root without DESTDIR it also creates the user and the directories.
# INSTALL_FROM=dir installs binaries already built there (tests/it/it_unit.sh).
# `make uninstall` removes what install put, except a configuration that was
# edited, the spool, the data and the user.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR ?= $(PREFIX)/share/doc/egressd
SYSCONFDIR ?= /etc
INSTALL_FROM ?=
BIN_NAMES := $(notdir $(BINS))
install: $(if $(INSTALL_FROM),,$(BINS))
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/egressd $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(addprefix $(or $(INSTALL_FROM),$(B))/,$(BIN_NAMES)) $(DESTDIR)$(BINDIR)/
	test -e $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.ini || \
		install -m 644 config/egressd.ini $(DESTDIR)$(SYSCONFDIR)/egressd/
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/egressd/|$(DOCDIR)/|g' \
	    -e 's|/etc/egressd/|$(SYSCONFDIR)/egressd/|g' systemd/egressd.service >$(DESTDIR)$(UNITDIR)/egressd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/egressd.service
	install -m 644 systemd/egressd.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/egressd.conf
	install -m 644 systemd/egressd.tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/egressd.conf
	install -m 644 README.md config/example.job $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
		echo "systemd-sysusers egressd.conf; systemd-tmpfiles --create egressd.conf"; \
		systemd-sysusers $(SYSUSERSDIR)/egressd.conf && \
		systemd-tmpfiles --create $(TMPFILESDIR)/egressd.conf; \
		systemctl daemon-reload 2>/dev/null || true; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(BIN_NAMES)) $(DESTDIR)$(UNITDIR)/egressd.service \
		$(DESTDIR)$(SYSUSERSDIR)/egressd.conf $(DESTDIR)$(TMPFILESDIR)/egressd.conf \
		$(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/example.job
	-rmdir $(DESTDIR)$(DOCDIR)
	@if cmp -s config/egressd.ini $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.ini; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.ini; rmdir $(DESTDIR)$(SYSCONFDIR)/egressd; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.ini ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.ini (edited)"; \
	fi
	@echo "kept: the spool, /var/lib/egressd and the user egressd (remove them by hand)"

clean:
	rm -rf build

# keep nvcc's objects of GPU tests (intermediates otherwise)
.SECONDARY:

-include $(shell find build -name '*.d' 2>/dev/null)
