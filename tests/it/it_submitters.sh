#!/usr/bin/env bash
# Integration: [daemon] submit_uids.  A job file owned by a uid the list does
# not name is refused into failed/ with one line naming the uid and the key;
# a listed uid's job runs; the daemon goes on serving.
# san: yes
. "$(dirname "$0")/lib.sh"
me=$(id -u)
conf
printf '[daemon]\nsubmit_uids = %s %s\n' $((me + 4242)) "$me" >>"$T/egressd.ini"
mklatents -o "$T/l.npy" -f 2 -c 4 -H 4 -W 4
mkdir -p "$T/out"
start_daemon
job ok.job latents="$T/l.npy" output="$T/out/ok.y4m" format=y4m
check "a listed uid's job runs" [ "$(wait_job ok.job)" = done ]
stop_daemon

conf
printf '[daemon]\nsubmit_uids = %s\n' $((me + 4242)) >>"$T/egressd.ini"
start_daemon
job no.job latents="$T/l.npy" output="$T/out/no.y4m" format=y4m
check "an unlisted uid's job is refused" [ "$(wait_job no.job)" = failed ]
check "the reason names the uid and the key" grep -q "owned by uid $me, who may not submit jobs here (\[daemon\] submit_uids)" "$T/spool/failed/no.job.error"
check "the reason is one line" [ "$(wc -l <"$T/spool/failed/no.job.error")" = 1 ]
check "nothing was written" [ ! -e "$T/out/no.y4m" ]
check "the daemon still runs" kill -0 "$DAEMON_PID"
stop_daemon
finish
