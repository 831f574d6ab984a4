#!/usr/bin/env bash
# make bench-taehv: issue 12's rows for TAEHV (docs/TAEHV.md), the tiny video
# decoder with MemBlocks (256/128/64-channel stages, each MemBlock's input
# concatenated with its previous frame), on the GPU against PyTorch, on the
# same seeded weights (egressd-mktaehv) and the same latents, in one run:
#
#   TAEHV wan21, 832x480 (latents 16 x T x 60 x 104), and wan22 (Wan 2.2 5B,
#   48 x T x 44 x 80 -> 1280x704), each at two lengths:
#     short  T = 21 latent frames -> 81 frames
#     long   T sized for about BENCH_SECONDS of decoding (~1500 -> ~6000
#            frames at 3 s): the steady state
#   egressd  decode alone (test_taehv_gpu --bench MODEL T HxW CHUNK: its own
#            seeded weights, constant latents, y4m frames into device memory,
#            CUDA events, best of 3) per chunk of BENCH_TAEHV_CHUNKS at the
#            short length, the largest chunk at the long length; end to end
#            through a running daemon (cuda backend, decoder = taehv, y4m to
#            the real disk): per chunk the first job (cold), then the best of
#            BENCH_TAEHV_REPS timed jobs (frames/s and GPU kernel util from
#            the job's result); at the long length the largest chunk, timed
#            jobs only (the producer is warm)
#   disk     the long job's bytes written alone (lib.sh's write_alone)
#   PyTorch  tests/bench/taehv_peers.py: tests/gpu/taehv_torch_check.py's
#            decoder (torch.nn layers, the same safetensors, strict load),
#            eager, channels_last, cudnn.benchmark: the whole short video in
#            one decode_video (parallel) call in fp16 and bf16 (best of 3),
#            torch.compile with BENCH_COMPILE=1, and the long latents in
#            chunks of the largest chunk with each MemBlock's past carried
#            over (a whole-video call at that length does not fit in memory);
#            frames/s and torch.cuda.max_memory_allocated; its frames to I420
#            as egressd quantises, compared with egressd's y4m (mean |diff|)
#
# Writes $OUT/bench-taehv.md (OUT defaults to BENCH_DIR/results); prints the
# table, the summary last (egressd end to end ÷ PyTorch fp16 decode alone,
# decode alone ÷ PyTorch).  The PyTorch rows need torch with CUDA and numpy;
# without them they are skipped with the reason, the egressd rows still run.
#
# Environment (defaults in brackets): the shared settings of tests/bench/lib.sh, and
#   BENCH_TAEHV_MODELS [wan21 wan22]  BENCH_TAEHV_FRAMES [21: the short length]
#   BENCH_TAEHV_LONG_FRAMES [from BENCH_SECONDS]  BENCH_TAEHV22_LONG_FRAMES [from BENCH_SECONDS]
#   BENCH_TAEHV_CHUNKS [3 8: latent frames per chunk]  BENCH_TAEHV_REPS [2: timed daemon jobs]
#   BENCH_PEERS [1]  BENCH_COMPILE [0]  BENCH_COMPILE_TIMEOUT [240 s]
#   BENCH_TAEHV_TINY [0; 1: latents 6 x 8 (wan22 4 x 6), T 3 and 6, backend cpu
#   unless BENCH_BACKEND says otherwise: the plumbing in seconds, no GPU needed, numbers meaningless]
# Exit: 0, 77 without a GPU (unless BENCH_TAEHV_TINY=1), 1 when a run failed or a binary is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

bench_init bench-taehv "$@"
TINY=${BENCH_TAEHV_TINY:-0}
TS=${BENCH_TAEHV_FRAMES:-21}
if [ "$TINY" = 1 ]; then
	BACKEND=${BENCH_BACKEND:-cpu}
	S21=6x8 S22=4x6 TS=${BENCH_TAEHV_FRAMES:-3}
	TL21=${BENCH_TAEHV_LONG_FRAMES:-6} TL22=${BENCH_TAEHV22_LONG_FRAMES:-6}
else
	# the long length: about BENCH_SECONDS at issue 12's guess of the rate (decode
	# alone on the H100: wan21 ~2000 f/s, wan22 ~2700 f/s, docs/TAEHV.md); 4
	# frames a latent frame
	S21=60x104 S22=44x80
	TL21=${BENCH_TAEHV_LONG_FRAMES:-$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 2000 / 4 + 1 }')}
	# wan22's frames are 2.25x the bytes: the disk, not the decoder, sets its pace
	TL22=${BENCH_TAEHV22_LONG_FRAMES:-$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 1500 / 4 + 1 }')}
fi
MODELS=${BENCH_TAEHV_MODELS:-wan21 wan22}
CHUNKS=${BENCH_TAEHV_CHUNKS:-3 8}
REPS=${BENCH_TAEHV_REPS:-2}
PEERS=${BENCH_PEERS:-1}
BIGC=0
for c in $CHUNKS; do [ "$c" -gt "$BIGC" ] && BIGC=$c; done
[ "$BIGC" -gt 0 ] || { echo "$TARGET: BENCH_TAEHV_CHUNKS ($CHUNKS) names no chunk"; exit 1; }
bench_need_gpu
bench_need_bins egressd egressd-mktaehv egressd-producer egressd-worker
bench_start
TAEHVT=$(gpu_tool test_taehv_gpu)
video_start "$RES/taehv.tsv"

# wan21 and wan22: 4 frames a latent frame, the first 3 trimmed (docs/TAEHV.md)
nframes() { echo $((4 * $1 - 3)); }
# per model: latent channels, latent size, long length, output scale
m_chan() { case $1 in wan22) echo 48 ;; *) echo 16 ;; esac; }
m_size() { case $1 in wan22) echo "$S22" ;; *) echo "$S21" ;; esac; }
m_long() { case $1 in wan22) echo "$TL22" ;; *) echo "$TL21" ;; esac; }
m_scale() { case $1 in wan22) echo 16 ;; *) echo 8 ;; esac; }
m_fb() {	# MODEL: bytes of one y4m frame (I420 and its FRAME tag)
	local sz; sz=$(m_size "$1")
	echo $(($(m_scale "$1") ** 2 * $(lat_h "$sz") * $(lat_w "$sz") * 3 / 2 + 6))
}

# the long jobs' output within BENCH_DISK_MAX and 30% of the disk's free
# room (the output stays while the disk alone writes as much again)
room=$(($(avail "$OUTD") * 3 / 10))
[ "$room" -lt "$DISK_MAX" ] || room=$DISK_MAX
cap_long() {	# T FRAME_BYTES
	local t=$1 max=$(((room / $2 + 3) / 4))
	[ "$t" -gt "$max" ] && { t=$max; say "long length cut to $t latent frames (disk room $(gib "$room") GiB)"; }
	[ "$t" -ge 2 ] || t=2
	echo "$t"
}
TL21=$(cap_long "$TL21" "$(m_fb wan21)")
TL22=$(cap_long "$TL22" "$(m_fb wan22)")

# the table's labels: taehv_cases.tsv (ID -> label)
: >"$RES/taehv_cases.tsv"
for m in $MODELS; do
	case $m in wan21 | wan22) ;; *) echo "$TARGET: BENCH_TAEHV_MODELS: $m is not wan21 or wan22"; exit 1 ;; esac
	sz=$(m_size "$m") k=$(m_scale "$m")
	for len in short long; do
		t=$TS id=$m
		[ $len = long ] && t=$(m_long "$m") id=$m-long
		printf '%s\tTAEHV %s, %s×%s, %s latent frames → %s\n' "$id" "$m" $(($(lat_w "$sz") * k)) \
			$(($(lat_h "$sz") * k)) "$t" "$(nframes "$t")" >>"$RES/taehv_cases.tsv"
	done
done

bench_meta "TAEHV ${MODELS// /, } (seeded weights, egressd-mktaehv f16), latents (.npy f16 [1, C, T, h, w], the same for egressd and PyTorch) wan21 $S21, wan22 $S22, T = $TS and long (wan21 $TL21, wan22 $TL22); daemon: workers $WORKERS, slots $SLOTS, chunk_frames ${CHUNKS// /, } (long: $BIGC), y4m to $DISK_DIR, best of $REPS timed jobs; PyTorch eager channels_last fp16/bf16, cudnn.benchmark on$([ "${BENCH_COMPILE:-0}" = 1 ] && echo ", torch.compile on")$([ "$TINY" = 1 ] && echo "; BENCH_TAEHV_TINY=1: reduced sizes, not a measurement")"

# mk_latents OUT C T HxW SEED: [1, C, T, h, w] float16 .npy, standard normal;
# at most 32 latent frames drawn, tiled along T (the speed does not depend
# on the values)
mk_latents() {
	local base n=$3
	base=$W/base-$(basename "$1")
	[ "$n" -gt 32 ] && n=32
	python3 - "$base" "$2" "$n" "$(lat_h "$4")" "$(lat_w "$4")" "$5" <<'PY' && tile_npy "$base" "$1" "$3" 2
import sys
import numpy as np

out, (c, t, h, w, seed) = sys.argv[1], map(int, sys.argv[2:])
np.save(out, np.random.default_rng(seed).standard_normal((1, c, t, h, w), dtype=np.float32).astype(np.float16))
PY
	local rc=$?
	rm -f "$base"
	return $rc
}

# alone CASE MODEL T CHUNK: egressd's decode alone (test_taehv_gpu --bench),
# one row
alone() {
	local case=$1 m=$2 t=$3 ch=$4 log=$RES/logs/alone-$1-c$4.log
	[ "$BACKEND" = cuda ] || { skip_row "$case" egressd alone "$ch" "$t" "no GPU (BENCH_BACKEND=$BACKEND)"; return; }
	[ -n "$TAEHVT" ] || { skip_row "$case" egressd alone "$ch" "$t" "test_taehv_gpu missing (make CUDA=1 bench-taehv builds it)"; return; }
	over_budget && { skip_row "$case" egressd alone "$ch" "$t" "$(budget_note)"; return; }
	local s=$SECONDS
	timeout -k 5 240 "$TAEHVT" --bench "$m" "$t" "$(m_size "$m")" "$ch" >"$log" 2>&1
	local rc=$? line
	# TAEHVBENCH wan21 832x480, 21 latent frames -> 81 frames, feeds of 3: best 1966.0 frames/s (41.2 ms)
	line=$(grep '^TAEHVBENCH ' "$log" | tail -1)
	local fps ms f
	fps=$(sed -n 's/.* best \([0-9.]*\) frames\/s.*/\1/p' <<<"$line")
	ms=$(sed -n 's/.*frames\/s (\([0-9.]*\) ms).*/\1/p' <<<"$line")
	f=$(sed -n 's/.* -> \([0-9]*\) frames.*/\1/p' <<<"$line")
	if [ -z "$fps" ]; then
		wrow "$case" egressd alone "$ch" failed "$t" "" "" "" "" "" "exit $rc: $(tail -1 "$log")"
		say "$case egressd decode alone (feeds of $ch): failed (exit $rc, $log)"
		return
	fi
	local st="done" det="best of 3 after a first run; its own seeded weights, constant latents"
	[ "$f" = "$(nframes "$t")" ] || { st=failed det="$f frames, want $(nframes "$t"); $det"; }
	wrow "$case" egressd alone "$ch" "$st" "$t" "$f" "$fps" "$(awk -v m="$ms" 'BEGIN { printf "%.6f", m / 1000 }')" \
		"" "" "$det"
	say "$case egressd decode alone (feeds of $ch): $fps f/s ($((SECONDS - s)) s)"
}

# disk CASE T FRAME_BYTES: the long job's bytes written alone, one row
disk() {
	local case=$1 t=$2 fb=$3
	over_budget && { skip_row "$case" disk write "" "$t" "$(budget_note)"; return; }
	local f; f=$(nframes "$t")
	local gbps; gbps=$(write_alone "$OUTD" $((f * fb)) $((BIGC * 4 * fb)) "$WORKERS")
	if [ -z "$gbps" ]; then
		wrow "$case" disk write "" failed "$t" "$f" "" "" "" "" "write_alone failed"
		return
	fi
	wrow "$case" disk write "" "done" "$t" "$f" "$(awk -v g="$gbps" -v b="$fb" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$(awk -v g="$gbps" -v n="$((f * fb))" 'BEGIN { printf "%.6f", n / g / 1e9 }')" "" "" \
		"$gbps GB/s: $(gib $((f * fb))) GiB in $((BIGC * 4))-frame pwrites + sync_file_range from $WORKERS threads to one file on $OUTD, then fsync"
	say "$case disk alone: $gbps GB/s"
}

# peer_skip MODEL KINDS WHY: skipped PyTorch rows (chunked: the long case)
peer_skip() {
	local k
	for k in $2; do
		case $k in
		chunked-*) skip_row "$1-long" pytorch "$k" "$BIGC" "$(m_long "$1")" "$3" ;;
		*) skip_row "$1" pytorch "$k" "" "$TS" "$3" ;;
		esac
	done
}

# peers MODEL WEIGHTS SHORT_NPY LONG_NPY: the PyTorch rows (taehv_peers.py
# appends them; a crash leaves failed rows)
peers() {
	local m=$1 wts=$2 snpy=$3 lnpy=$4 log=$RES/logs/peers-$1.log kinds="whole-fp16 whole-bf16 chunked-fp16" k
	[ "${BENCH_COMPILE:-0}" = 1 ] && kinds="$kinds compile-fp16"
	if [ "$PEERS" != 1 ] || [ "$BACKEND" != cuda ]; then
		peer_skip "$m" "$kinds" "BENCH_PEERS=$PEERS, backend $BACKEND"
		return
	fi
	local left=$((BUDGET - (SECONDS - T0)))
	if [ $left -lt 20 ]; then
		peer_skip "$m" "$kinds" "$(budget_note)"
		return
	fi
	local s=$SECONDS to=$((left + 60))
	[ "${BENCH_COMPILE:-0}" = 1 ] && to=$((to + ${BENCH_COMPILE_TIMEOUT:-240}))
	timeout -k 5 "$to" python3 tests/bench/taehv_peers.py run --tsv "$TSV" --model "$m" --weights "$wts" \
		--latents "$snpy" --ref "$OUTD/$m-c$BIGC.y4m" --long-latents "$lnpy" --long-ref "$OUTD/$m-long-c$BIGC.y4m" \
		--chunk "$BIGC" --deadline-s "$left" --compile "${BENCH_COMPILE:-0}" \
		--compile-timeout "${BENCH_COMPILE_TIMEOUT:-240}" >"$log" 2>&1
	local rc=$?
	grep -E '^(TAEHVPEER|taehv_peers:)' "$log" >&2
	local st=failed
	[ $rc = 124 ] && st="timed out"
	for k in $kinds; do
		awk -F'\t' -v c="$m" -v c2="$m-long" -v k="$k" '($1 == c || $1 == c2) && $2 == "pytorch" && $3 == k { f = 1 }
			END { exit !f }' "$TSV" && continue
		# torch.compile cut off by the time limit is the peer's limit, not a failed run
		if [ "$k" = compile-fp16 ] && [ $rc = 124 ]; then
			skip_row "$m" pytorch "$k" "" "$TS" "taehv_peers.py cut off after ${to}s while compiling"
		else
			wrow "$m" pytorch "$k" "" failed "$TS" "" "" "" "" "" "taehv_peers.py exit $rc ($st): $(tail -1 "$log")"
		fi
	done
	say "$m PyTorch: exit $rc ($((SECONDS - s)) s; $log)"
}

# one_model MODEL SEED: every row of the model
one_model() {
	local m=$1 seed=$2 c
	local sz; sz=$(m_size "$m")
	local tl; tl=$(m_long "$m")
	local fb; fb=$(m_fb "$m")
	local wts=$W/$m.safetensors snpy=$W/$m.npy lnpy=$W/$m-long.npy
	if over_budget; then
		for c in $CHUNKS; do skip_row "$m" egressd e2e "$c" "$TS" "$(budget_note)"; done
		skip_row "$m-long" egressd e2e "$BIGC" "$tl" "$(budget_note)"
		return
	fi
	local s=$SECONDS
	if ! "$BIN/egressd-mktaehv" -o "$wts" -m "$m" --seed "$seed" --dtype f16 >/dev/null ||
		! mk_latents "$snpy" "$(m_chan "$m")" "$TS" "$sz" $((seed + 1)) ||
		! mk_latents "$lnpy" "$(m_chan "$m")" "$tl" "$sz" $((seed + 2)); then
		wrow "$m" egressd e2e "" failed "$TS" "" "" "" "" "" "making the weights or latents failed"
		say "$m: making the weights or latents failed"
		return
	fi
	say "$m: weights and latents ($TS and $tl latent frames) in $((SECONDS - s)) s"
	for c in $CHUNKS; do alone "$m" "$m" "$TS" "$c"; done
	alone "$m-long" "$m" "$tl" "$BIGC"
	# the daemon: slots of the largest chunk's frames
	if video_daemon "$W/$m.ini" $(((BIGC * 4 * fb + (2 << 20) - 1) >> 20))M; then
		local keys=(decoder=taehv taehv_model="$m" weights="$wts" fps=16)
		for c in $CHUNKS; do e2e_rows "$m" "$TS" "$c" 1 latents="$snpy" "${keys[@]}"; done
		e2e_rows "$m-long" "$tl" "$BIGC" 0 latents="$lnpy" "${keys[@]}"
		daemon_stop
	else
		for c in $CHUNKS; do wrow "$m" egressd e2e "$c" failed "$TS" "" "" "" "" "" "the daemon did not start (logs/daemon.log)"; done
		wrow "$m-long" egressd e2e "$BIGC" failed "$tl" "" "" "" "" "" "the daemon did not start (logs/daemon.log)"
	fi
	disk "$m-long" "$tl" "$fb"
	peers "$m" "$wts" "$snpy" "$lnpy"
	rm -f "$OUTD/$m"-*.y4m "$wts" "$snpy" "$lnpy"
}

seed=20
for m in $MODELS; do
	one_model "$m" $seed
	seed=$((seed + 10))
done

video_finish tests/bench/taehv_peers.py "TAEHV"
