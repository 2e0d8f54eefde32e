#!/bin/bash
# Before/after of the single-node server on one loaded machine: two compiled builds (A, B) of
# ringkv alternate, each round on a fresh node and data dir, under redis-benchmark SET/GET
# (-d 100 -r 100000 -c 50) at -P 1 and -P 16. Prints one line per run: workload, round, build,
# requests/s, and the node process's CPU time per request in microseconds (user+sys of all its
# threads, from /proc/<pid>/stat), which moves much less than requests/s when other work shares
# the CPUs. GET runs on 100k keys preloaded with SET -P 16.
#
#   bash bench/server_ab.sh ROUNDS BUILD_A BUILD_B      (BUILD = a tsc outDir holding src/cli/main.js)
#   WORKLOADS="set:16 get:1" bash bench/server_ab.sh ...  (a subset; default: all four)
set -euo pipefail
ROUNDS=${1:?rounds}; shift
BUILDS=("$@")
N_P1=${N_P1:-50000}
N_P16=${N_P16:-200000}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
one_run() { # build test pipeline requests
  local build=$1 test=$2 pipeline=$3 n=$4 dir port pid c0 c1 out rps
  dir=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-ab.XXXXXX")
  port=$(free_port)
  node "$build/src/cli/main.js" --port "$port" --dir "$dir" --appendfsync everysec >"$dir.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  if [ "$test" = get ]; then redis-benchmark -p "$port" -t set -n 100000 -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1; fi
  c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(redis-benchmark -p "$port" -t "$test" -n "$n" -r 100000 -d 100 -c 50 -P "$pipeline" -q 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1)
  c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir" "$dir.log"
  rps=$(echo "$out" | grep -o '[0-9.]* requests' | cut -d' ' -f1)
  echo "$rps $(python3 -c "print(round(($c1-$c0)/$(getconf CLK_TCK)*1e6/$n,2))")"
}
for round in $(seq "$ROUNDS"); do
  for w in ${WORKLOADS:-set:1 get:1 set:16 get:16}; do
    t=${w%:*}; p=${w#*:}
    if [ "$p" = 1 ]; then n=$N_P1; else n=$N_P16; fi
    set -- "$t" "$p" "$n"
    for b in "${BUILDS[@]}"; do echo "${1^^} -P $2 round $round $b $(one_run "$b" "$1" "$2" "$3")"; done
  done
done
