#!/usr/bin/env bash
# Integration: the daemon's Prometheus metrics, read by a real parser
# san: yes
# (prometheus_client's text parser): the [metrics] textfile and the loopback
# HTTP endpoint agree with what happened (jobs done, failed, cancelled,
# frames, bytes, a worker's restart, the duration histogram); other paths
# get 404, other methods 405; a listen address that is not loopback stops
# the daemon with a configuration error; SIGHUP moves both.
. "$(dirname "$0")/lib.sh"
python3 -c 'import prometheus_client' 2>/dev/null || skip "prometheus_client not installed (tests/deps.sh installs it)"
CTL() { "$EGR_BIN/egressctl" -c "$T/egressd.ini" "$@"; }
conf workers=2 slots=4 slot_bytes=1M
printf '[metrics]\ntextfile = %s\nlisten = 127.0.0.1:0\n' "$T/egressd.prom" >>"$T/egressd.ini"
mklatents -o "$T/l.npy" -f 16 -c 4 -H 8 -W 16 --seed 3
mklatents -o "$T/long.npy" -f 200 -c 4 -H 8 -W 16 --seed 4
printf 'junk\n' >"$T/junk.npy"
mkdir -p "$T/out"

# parse FILE|URL CHECKS: parse the exposition, then run the python CHECKS on m, a
# dict "name{label=value,...}" -> value (names as exposed, "_total" included),
# and B, the duration histogram's bucket counts by bound
parse() {
	python3 - "$1" "$2" <<'PY'
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
src, checks = sys.argv[1], sys.argv[2]
text, m = "", {}
try:
    text = urllib.request.urlopen(src, timeout=5).read().decode() if src.startswith("http") else open(src).read()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            m[s.name + ("{" + labels + "}" if labels else "")] = s.value
    # B: the duration histogram's buckets in the order of their bounds
    B = [v for _, v in sorted((float(k.split("le=")[1].rstrip("}")), v) for k, v in m.items() if "_bucket{" in k)]
    ok = eval(checks)
except Exception as e:
    print(f"{src}: {type(e).__name__}: {e}"); ok = False
if not ok:
    print(text); print(m)
sys.exit(0 if ok else 1)
PY
}

export EGR_FAULT_WRITE_DELAY_MS=20
start_daemon
unset EGR_FAULT_WRITE_DELAY_MS
for _ in $(seq 100); do grep -q "metrics: serving" "$T/daemon.log" && break; sleep 0.05; done
port=$(sed -n 's|.*metrics: serving http://127.0.0.1:\([0-9]*\)/metrics|\1|p' "$T/daemon.log")
check "listen = 127.0.0.1:0: the port chosen is logged" [ -n "$port" ]
URL="http://127.0.0.1:$port/metrics"

CTL submit --wait --latents "$T/l.npy" --output "$T/out/a.y4m" >/dev/null
CTL submit --wait --latents "$T/l.npy" --output "$T/out/b.y4m" chunk_frames=4 >/dev/null
CTL submit --wait --latents "$T/junk.npy" --output "$T/out/c.y4m" >/dev/null 2>&1
long=$(CTL submit --latents "$T/long.npy" --output "$T/out/long.y4m" chunk_frames=1)
for _ in $(seq 200); do grep -q "frames_done = [1-9]" "$T/spool/status/$long.status" 2>/dev/null && break; sleep 0.05; done
# the gauges are sampled (every SUP_GAUGES_MS): give them a few samples to see the job run
for _ in $(seq 40); do
	parse "$URL" 'm["egressd_jobs_running"] == 1 and m["egressd_slots_busy"] >= 1' >/dev/null 2>&1 && break
	sleep 0.05
done
check "while a job runs: jobs_running 1, slots busy" parse "$URL" 'm["egressd_jobs_running"] == 1 and m["egressd_slots_busy"] >= 1'
CTL cancel "$long" >/dev/null
sleep 1.3	# the textfile is rewritten every second
check "textfile: jobs by status (2 done, 1 failed, 1 cancelled)" parse "$T/egressd.prom" \
	'm["egressd_jobs_total{status=done}"] == 2 and m["egressd_jobs_total{status=failed}"] == 1 and m["egressd_jobs_total{status=cancelled}"] == 1'
check "textfile: frames and bytes written (the cancelled job's too)" parse "$T/egressd.prom" \
	'm["egressd_frames_total"] > 32 and m["egressd_bytes_written_total"] > 2 * 16 * 128 * 64 * 3 // 2'
check "textfile: the duration histogram counts the done jobs, buckets cumulative" parse "$T/egressd.prom" \
	'm["egressd_job_duration_seconds_count"] == 2 == B[-1] and m["egressd_job_duration_seconds_sum"] > 0 and len(B) == 13 and B == sorted(B)'
check "textfile: gauges at rest (queue empty, 4 slots, none busy), backpressure counted" parse "$T/egressd.prom" \
	'm["egressd_queue_depth"] == 0 and m["egressd_slots"] == 4 and m["egressd_slots_busy"] == 0 and m["egressd_producer_blocked_seconds_total"] > 0 and m["egressd_gpu_kernel_utilisation"] == 0'
check "HTTP: the same numbers" parse "$URL" 'm["egressd_jobs_total{status=done}"] == 2 and m["egressd_worker_restarts_total"] == 0'

kill -KILL "$(pgrep -P "$DAEMON_PID" -f egressd-worker | head -n 1)"
sleep 1.3
check "a worker killed: worker_restarts_total 1" parse "$URL" 'm["egressd_worker_restarts_total"] == 1 and m["egressd_producer_restarts_total"] == 0'

code() { python3 -c "
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], method=sys.argv[2]), timeout=5); print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)" "$1" "$2"; }
check "GET /other: 404" [ "$(code "http://127.0.0.1:$port/other" GET)" = 404 ]
check "POST /metrics: 405" [ "$(code "$URL" POST)" = 405 ]
check "GET /metrics?x=1: 200" [ "$(code "$URL?x=1" GET)" = 200 ]

# SIGHUP: a new textfile and a new port
sed -i "s|^textfile = .*|textfile = $T/moved.prom|" "$T/egressd.ini"
kill -HUP "$DAEMON_PID"
for _ in $(seq 60); do [ -s "$T/moved.prom" ] && break; sleep 0.05; done
check "SIGHUP: the textfile moves" parse "$T/moved.prom" 'm["egressd_jobs_total{status=done}"] == 2'
port2=$(sed -n 's|.*metrics: serving http://127.0.0.1:\([0-9]*\)/metrics|\1|p' "$T/daemon.log" | tail -n 1)
check "SIGHUP with the same listen address: still served" parse "$URL" 'True'
stop_daemon
check "at exit: the textfile's last version parses" parse "$T/moved.prom" 'm["egressd_jobs_total{status=done}"] == 2'

sed -i "s|^listen = .*|listen = 0.0.0.0:9|" "$T/egressd.ini"
"$EGR_BIN/egressd" -c "$T/egressd.ini" 2>"$T/bad.log"
check "listen on a non-loopback address: exit 78" [ $? = 78 ]
check "  saying why" grep -q "not a loopback address" "$T/bad.log"
[ "$port2" = "$port" ] || fail "the port changed on a reload that kept the address"
finish
