#!/bin/bash
# Where the single node's main thread spends one redis-benchmark run: on a CPU, waiting for a
# CPU (run queue: the machine is oversubscribed), or off CPU (blocked in a syscall or idle in
# epoll: the latency-bound part). Answers "is this workload CPU-bound or waiting?", which
# requests/s alone cannot on a shared machine. Also CPU time per request of the main thread
# and of all threads (table-build worker, GC helpers, libuv pool), and per thread with THREADS=1.
#
#   bash bench/server_busy.sh BUILD TEST PIPELINE REQUESTS     (BUILD = a tsc outDir)
#   e.g. bash bench/server_busy.sh .build/me set 16 200000
#   SERVER_JS=.build/me/bench/bare_node_server.js bash bench/server_busy.sh .build/me set 16 200000
#   NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/p" ...          (extra node flags for the server)
#
# Same workload as bench/server_ab.sh: -d 100 -r 100000 -c 50, a fresh node and data dir, the
# 100k keys preloaded with SET -P 16 first (not measured). Sources: /proc/PID/task/TID/schedstat
# (ns on CPU, ns on the run queue) and /proc/PID/task/TID/stat (utime+stime ticks).
set -euo pipefail
BUILD=${1:?build}; TEST=${2:?test}; PIPELINE=${3:?pipeline}; REQUESTS=${4:?requests}
SERVER_JS=${SERVER_JS:-$BUILD/src/cli/main.js}
PRELOAD_REQUESTS=100000
dir=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-busy.XXXXXX")
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
# shellcheck disable=SC2086
node ${NODE_FLAGS:-} "$SERVER_JS" --port "$port" --dir "$dir/data" --appendfsync everysec >"$dir/log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
kill -0 "$pid" || { cat "$dir/log"; exit 1; }
redis-benchmark -p "$port" -t set -n "$PRELOAD_REQUESTS" -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1

thread_ticks() { for t in /proc/"$pid"/task/*; do echo "${t##*/} $(awk '{print $14+$15}' "$t/stat")"; done; }
main_ticks() { awk '{print $14+$15}' "/proc/$pid/task/$pid/stat"; }
all_ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }

thread_ticks >"$dir/threads0"; m0=$(main_ticks); a0=$(all_ticks); read -r on0 rq0 sl0 <"/proc/$pid/task/$pid/schedstat"; t0=$(date +%s.%N)
out=$(redis-benchmark -p "$port" -t "$TEST" -n "$REQUESTS" -r 100000 -d 100 -c 50 -P "$PIPELINE" -q 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1)
t1=$(date +%s.%N); read -r on1 rq1 sl1 <"/proc/$pid/task/$pid/schedstat"; m1=$(main_ticks); a1=$(all_ticks); thread_ticks >"$dir/threads1"

python3 - "$dir/threads0" "$dir/threads1" <<PY
import sys
wall = $t1 - $t0; tck = $(getconf CLK_TCK); n = $REQUESTS
main = ($m1 - $m0) / tck; every = ($a1 - $a0) / tck
on = ($on1 - $on0) / 1e9; rq = ($rq1 - $rq0) / 1e9
print(f"${TEST^^} -P $PIPELINE: {'$out'.split(': ',1)[-1].strip()}")
print(f"  main thread: on CPU {on / wall:.0%}, run queue {rq / wall:.0%}, off CPU (blocked or idle) {max(0.0, wall - on - rq) / wall:.0%} of {wall:.2f} s; {$sl1 - $sl0} slices")
print(f"  CPU per request: main thread {main / n * 1e6:.1f} us, all threads {every / n * 1e6:.1f} us")
if "${THREADS:-}":
    before = dict(l.split() for l in open(sys.argv[1]))
    for line in open(sys.argv[2]):
        tid, ticks = line.split()
        d = int(ticks) - int(before.get(tid, 0))
        if d > 0: print(f"  thread {tid}{' (main)' if tid == '$pid' else ''}: {d / tck * 1e6 / n:.2f} us/request")
PY
