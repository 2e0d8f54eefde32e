#!/bin/bash
# Before/after of the single-node server by instructions executed, for a machine too loaded for
# CPU time: builds (A, B, ...) alternate, each round on a fresh node and data dir, the node run
# under valgrind's callgrind, and only the measured redis-benchmark run is counted (counters
# zeroed after the preload, dumped after the run). Instructions are user-space only (the
# kernel's socket and file work is left out, the same for every build) and of all the node's
# threads (V8's GC helpers, the table-build worker). Under valgrind the node runs ~50x slower,
# so batches and group commits take other shapes than at full speed: a ratio between builds
# means something, the absolute figure less. Still timing-dependent (batch sizes, when the JIT's
# optimized code arrives): at load 8-12 on the 2-core VM one build's rounds differed by up to
# 27% (SET -P 16 46.4k vs 58.8k), about as much as CPU time per request (bench/server_ab.sh), so
# it is a second opinion, not a quieter one; take several rounds and compare pairs.
#
#   bash bench/server_instructions.sh ROUNDS BUILD_A BUILD_B ...  (BUILD = a tsc outDir holding src/cli/main.js)
#   WORKLOADS="set:16 get:16" PRELOAD=50000 N_SET=30000 N_GET=60000 bash bench/server_instructions.sh ...
#
# Prints one line per run: workload, round, build, instructions per request. The preload (SET
# -P 16 of PRELOAD requests over the same 100k keys, not counted) also warms the JIT, which
# under valgrind takes tens of thousands of requests. Runs the builds of a round in parallel
# (one valgrind process each: valgrind serializes a process's threads onto one core).
set -euo pipefail
ROUNDS=${1:?rounds}; shift
BUILDS=("$@")
PRELOAD=${PRELOAD:-50000}
N_SET=${N_SET:-30000}
N_GET=${N_GET:-60000}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
one_run() { # build test pipeline requests -> instructions per request
  local build=$1 test=$2 pipeline=$3 n=$4 dir port pid f ir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-instr.XXXXXX")
  port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" node "$build/src/cli/main.js" --port "$port" --dir "$dir/data" --appendfsync everysec >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  redis-benchmark -p "$port" -t set -n "$PRELOAD" -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
  callgrind_control --zero "$pid" >/dev/null
  redis-benchmark -p "$port" -t "$test" -n "$n" -r 100000 -d 100 -c 50 -P "$pipeline" -q >/dev/null 2>&1
  callgrind_control --dump=measured "$pid" >/dev/null
  kill -TERM "$pid"; wait "$pid" || true
  f=$(grep -l 'measured' "$dir"/cg.* | head -1)
  ir=$(grep -E '^(summary|totals):' "$f" | head -1 | awk '{print $2}')
  rm -rf "$dir"
  echo $((ir / n))
}
for round in $(seq "$ROUNDS"); do
  for w in ${WORKLOADS:-set:16 get:16}; do
    t=${w%:*}; p=${w#*:}
    if [ "$t" = get ]; then n=$N_GET; else n=$N_SET; fi
    out=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-instr-round.XXXXXX")
    for i in "${!BUILDS[@]}"; do one_run "${BUILDS[$i]}" "$t" "$p" "$n" >"$out/$i" & done
    wait
    for i in "${!BUILDS[@]}"; do echo "${t^^} -P $p round $round ${BUILDS[$i]} $(cat "$out/$i") instructions/request"; done
    rm -rf "$out"
  done
done
