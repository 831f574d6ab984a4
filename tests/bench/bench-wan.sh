#!/usr/bin/env bash
# make bench-wan: issue 15's measurements: egressd's Wan VAE decoder on the
# GPU against diffusers' AutoencoderKLWan (bf16), same seeded weights
# (egressd-mkwanvae at the real widths) and same latents, in one run:
#
#   Wan 2.1, 832x480 (latents 16 x 21 x 60 x 104 -> 81 frames)
#     egressd  decode alone (test_wanvae_gpu --bench, feeds of 1 and 3 latent
#              frames); end to end through a running daemon (cuda backend,
#              decoder = wan_vae, y4m to the real disk, chunk_frames 1 and 3:
#              the first job after start, untimed warm-up, then the best of
#              BENCH_WAN_REPS timed jobs; the job's wall_s and gpu_kernel_util
#              from its result, the producer's memory from nvidia-smi)
#     diffusers  tests/bench/wan_peers.py: vae.decode alone (best of 2), the
#              naive loop (decode, .cpu(), write y4m) and the copy-stream
#              recipe (diffusers' _decode loop frame by frame, side-stream
#              D2H into 2 pinned buffers, 4 writer threads); frames/s and
#              torch.cuda.max_memory_allocated; their frames against egressd's
#   Wan 2.2 5B, 1280x704 (latents 48 x 9 x 44 x 80 -> 33 frames)
#     egressd decode alone, diffusers vae.decode alone
#   Wan 2.1, 832x480, 201 latent frames -> 801 frames (memory in video length)
#     egressd decode alone; diffusers vae.decode alone when the budget allows
#
# Targets (issue 15): Wan 2.1 832x480 end to end >= 80 f/s and >= 2x diffusers
# bf16 decode alone; egressd's 801-frame memory within 10% of its 81-frame
# memory.  Writes $OUT/bench-wan.md (OUT defaults to BENCH_DIR/results);
# prints the table, the summary last.  The diffusers rows need torch with
# CUDA, diffusers and safetensors importable (PYTHONPATH); without them they
# are skipped with the reason, the egressd rows still run.
#
# Environment (defaults in brackets): the shared settings of tests/bench/lib.sh, and
#   BENCH_WAN_FRAMES [21]  BENCH_WAN_LONG_FRAMES [201]  BENCH_WAN22_FRAMES [9]  (latent frames)
#   BENCH_WAN_CHUNKS [1 3]  BENCH_WAN22_CHUNKS [1]  BENCH_WAN_REPS [2: timed daemon jobs per chunk]
#   BENCH_PEERS [1]  BENCH_WAN_TINY [0; 1: decoder width 8, latents 16 x 3 x 6 x 8, backend cpu
#   unless BENCH_BACKEND says otherwise: the plumbing in seconds, no GPU needed, numbers meaningless]
# Exit: 0, 77 without a GPU (unless BENCH_WAN_TINY=1), 1 when a run failed or a binary is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

bench_init bench-wan "$@"
TINY=${BENCH_WAN_TINY:-0}
if [ "$TINY" = 1 ]; then
	BACKEND=${BENCH_BACKEND:-cpu}
	D21=8 S21=6x8 T21=${BENCH_WAN_FRAMES:-3} TL=${BENCH_WAN_LONG_FRAMES:-5}
	D22=8 S22=4x6 T22=${BENCH_WAN22_FRAMES:-3}
else
	D21=96 S21=60x104 T21=${BENCH_WAN_FRAMES:-21} TL=${BENCH_WAN_LONG_FRAMES:-201}
	D22=256 S22=44x80 T22=${BENCH_WAN22_FRAMES:-9}
fi
CHUNKS=${BENCH_WAN_CHUNKS:-1 3}
CHUNKS22=${BENCH_WAN22_CHUNKS:-1}
REPS=${BENCH_WAN_REPS:-2}
PEERS=${BENCH_PEERS:-1}
bench_need_gpu
bench_need_bins egressd egressd-mkwanvae egressd-producer egressd-worker
bench_start
WANT=$(gpu_tool test_wanvae_gpu)
video_start "$RES/wan.tsv"

nframes() { echo $((1 + 4 * ($1 - 1))); }

# cases: ID PRESET LATENT_SIZE T SCALE -> wan_cases.tsv (the table's labels)
case_label() {
	local h w; h=$(lat_h "$3") w=$(lat_w "$3")
	printf '%s\tWan %s, %s×%s, %s latent frames → %s\n' "$1" "$([ "$2" = 2.2 ] && echo "2.2 5B" || echo 2.1)" \
		$((w * $5)) $((h * $5)) "$4" "$(nframes "$4")" >>"$RES/wan_cases.tsv"
}
: >"$RES/wan_cases.tsv"
case_label wan21 2.1 "$S21" "$T21" 8
case_label wan22 2.2 "$S22" "$T22" 16
case_label wan21-long 2.1 "$S21" "$TL" 8

bench_meta "Wan 2.1 (decoder width $D21) $S21 latents x $T21 and x $TL frames, Wan 2.2 5B (width $D22) $S22 x $T22; seeded weights (egressd-mkwanvae), random latents (.npy f16, the same for egressd and diffusers); daemon: workers $WORKERS, slots $SLOTS, chunk_frames ${CHUNKS// /, }, y4m to $DISK_DIR, best of $REPS timed jobs; diffusers bf16, cudnn.benchmark on$([ "$TINY" = 1 ] && echo "; BENCH_WAN_TINY=1: reduced widths and sizes, not a measurement")"

# mk_latents OUT C T HxW SEED: [1, C, T, h, w] float16 .npy, standard normal
mk_latents() {
	python3 - "$1" "$2" "$3" "$(lat_h "$4")" "$(lat_w "$4")" "$5" <<'PY'
import sys
import numpy as np

out, (c, t, h, w, seed) = sys.argv[1], map(int, sys.argv[2:])
np.save(out, np.random.default_rng(seed).standard_normal((1, c, t, h, w), dtype=np.float32).astype(np.float16))
PY
}

# alone CASE PRESET T LATENT_SIZE CHUNK REPS: egressd's decode alone
# (test_wanvae_gpu --bench: its own seeded weights at the preset's width,
# constant latents, y4m frames into device memory, CUDA events), one row
alone() {
	local case=$1 pre=$2 t=$3 sz=$4 ch=$5 reps=$6 log=$RES/logs/alone-$1-c$5.log
	[ "$BACKEND" = cuda ] || { skip_row "$case" egressd alone "$ch" "$t" "no GPU (BENCH_BACKEND=$BACKEND)"; return; }
	[ -n "$WANT" ] || { skip_row "$case" egressd alone "$ch" "$t" "test_wanvae_gpu missing (make CUDA=1 bench-wan builds it)"; return; }
	over_budget && { skip_row "$case" egressd alone "$ch" "$t" "$(budget_note)"; return; }
	local s=$SECONDS
	timeout -k 5 300 "$WANT" --bench --config "$pre" --frames "$t" --size "$sz" --chunk "$ch" --reps "$reps" >"$log" 2>&1
	local rc=$? line
	line=$(grep '^WANBENCH wan' "$log" | tail -1)
	if [ -z "$line" ]; then
		wrow "$case" egressd alone "$ch" failed "$t" "" "" "" "" "" "exit $rc: $(tail -1 "$log")"
		say "$case egressd decode alone (feeds of $ch): failed (exit $rc, $log)"
		return
	fi
	get() { sed -n "s#.*$1.*#\1#p" <<<"$line"; }
	local fps wall mem ws batch
	fps=$(get ' best \([0-9.]*\) frames/s') wall=$(get 'frames/s (\([0-9.]*\) s)')
	mem=$(get 'device memory in use \([0-9.]*\) GiB') ws=$(get 'stream workspace \([0-9.]*\) GiB') batch=$(get '(batch \([0-9]*\))')
	wrow "$case" egressd alone "$ch" "done" "$t" "$(nframes "$t")" "$fps" "$wall" "$mem" "" \
		"best of $reps; stream workspace $ws GiB, batches of $batch; its own seeded weights, constant latents"
	say "$case egressd decode alone (feeds of $ch): $fps f/s, $mem GiB ($((SECONDS - s)) s)"
}

# e2e CASE NPY WEIGHTS T LATENT_SIZE: the daemon rows (lib.sh's e2e_rows),
# per chunk_frames of CHUNKS: the first job (cold), then REPS timed jobs, the
# best kept; the chunk-1 output stays as $OUTD/CASE-c1.y4m for the peers'
# frame check
e2e() {
	local case=$1 npy=$2 wts=$3 t=$4 sz=$5 c maxc=1
	local fb=$((64 * $(lat_h "$sz") * $(lat_w "$sz") * 3 / 2 + 6))
	for c in $CHUNKS; do [ "$c" -gt "$maxc" ] && maxc=$c; done
	if ! video_daemon "$W/wan.ini" $(((maxc * 4 * fb + (2 << 20) - 1) >> 20))M; then
		for c in $CHUNKS; do wrow "$case" egressd e2e "$c" failed "$t" "" "" "" "" "" "the daemon did not start (logs/daemon.log)"; done
		return
	fi
	for c in $CHUNKS; do
		e2e_rows "$case" "$t" "$c" 1 latents="$npy" decoder=wan_vae weights="$wts" fps=16
	done
	daemon_stop
}

# peers CASE PRESET DIM WEIGHTS NPY MODES [REF [ARGS...]]: the diffusers
# rows (tests/bench/wan_peers.py appends them; a crash leaves a failed row)
peers() {
	local case=$1 pre=$2 dim=$3 wts=$4 npy=$5 modes=$6 refy=${7:-} m log=$RES/logs/peers-$1.log
	shift $(($# < 7 ? $# : 7))
	local t; t=$(python3 -c "import numpy as np; print(np.load('$npy', mmap_mode='r').shape[2])")
	if [ "$PEERS" != 1 ]; then
		for m in ${modes//,/ }; do skip_row "$case" diffusers "$m" "" "$t" "BENCH_PEERS=$PEERS"; done
		return
	fi
	local left=$((BUDGET - (SECONDS - T0)))
	if [ $left -lt 20 ]; then
		for m in ${modes//,/ }; do skip_row "$case" diffusers "$m" "" "$t" "$(budget_note)"; done
		return
	fi
	local s=$SECONDS
	timeout -k 5 $((left + 60)) python3 tests/bench/wan_peers.py run --tsv "$TSV" --case "$case" --config "$pre" \
		--dim "$dim" --weights "$wts" --latents "$npy" --out "$OUTD" --modes "$modes" --deadline-s "$left" \
		${refy:+--ref "$refy"} "$@" >"$log" 2>&1
	local rc=$?
	grep -E '^(WANPEER|wan_peers:)' "$log" >&2
	for m in ${modes//,/ }; do
		awk -F'\t' -v c="$case" -v m="$m" '$1 == c && $2 == "diffusers" && $3 == m { f = 1 } END { exit !f }' "$TSV" ||
			wrow "$case" diffusers "$m" "" failed "$t" "" "" "" "" "" "wan_peers.py exit $rc: $(tail -1 "$log")"
	done
	say "$case diffusers ($modes): exit $rc ($((SECONDS - s)) s; $log)"
}

# ---- Wan 2.1, 832x480 ----
"$BIN/egressd-mkwanvae" -o "$W/wan21.safetensors" --config 2.1 --dim "$D21" --seed 5 >/dev/null &&
	mk_latents "$W/wan21.npy" 16 "$T21" "$S21" 7 || { say "making the Wan 2.1 weights or latents failed"; exit 1; }
for c in $CHUNKS; do alone wan21 2.1 "$T21" "$S21" "$c" 3; done
e2e wan21 "$W/wan21.npy" "$W/wan21.safetensors" "$T21" "$S21"
peers wan21 2.1 "$D21" "$W/wan21.safetensors" "$W/wan21.npy" decode,naive,copy "$OUTD/wan21-c1.y4m"
rm -f "$OUTD"/wan21-*.y4m

# ---- Wan 2.2 5B, 1280x704 ----
if over_budget; then
	for c in $CHUNKS22; do skip_row wan22 egressd alone "$c" "$T22" "$(budget_note)"; done
	skip_row wan22 diffusers decode "" "$T22" "$(budget_note)"
else
	for c in $CHUNKS22; do alone wan22 2.2 "$T22" "$S22" "$c" 3; done
	s=$SECONDS
	# f16: half the bytes of f32 to write and read; diffusers runs bf16 either way
	if "$BIN/egressd-mkwanvae" -o "$W/wan22.safetensors" --config 2.2 --dim "$D22" --seed 6 --dtype f16 >/dev/null &&
		mk_latents "$W/wan22.npy" 48 "$T22" "$S22" 8; then
		say "Wan 2.2 weights and latents: $((SECONDS - s)) s"
		peers wan22 2.2 "$D22" "$W/wan22.safetensors" "$W/wan22.npy" decode
	else
		wrow wan22 diffusers decode "" failed "$T22" "" "" "" "" "" "egressd-mkwanvae --config 2.2 failed"
	fi
	rm -f "$W/wan22.safetensors" "$W/wan22.npy"
fi

# ---- Wan 2.1, 801 frames: memory in video length ----
alone wan21-long 2.1 "$TL" "$S21" 1 2
# diffusers: only when its 81-frame decode says it fits (start-up ~40 s)
est=$(awk -F'\t' -v a="$T21" -v b="$TL" '$1 == "wan21" && $2 == "diffusers" && $3 == "decode" && $5 == "done" {
	printf "%d", $9 * b / a * 1.2 + 40 }' "$TSV")
left=$((BUDGET - (SECONDS - T0)))
if [ "$PEERS" = 1 ] && [ -n "$est" ] && [ "$est" -gt "$left" ]; then
	skip_row wan21-long diffusers decode "" "$TL" "time budget: about $est s needed, $left s left"
else
	mk_latents "$W/wan21-long.npy" 16 "$TL" "$S21" 9 &&
		peers wan21-long 2.1 "$D21" "$W/wan21.safetensors" "$W/wan21-long.npy" decode "" --reps 1
	rm -f "$W/wan21-long.npy"
fi

video_finish tests/bench/wan_peers.py "Wan VAE"
