#!/usr/bin/env bash
# Cluster vs single-node throughput, builds A and B alternated (bench/results/cluster-perf-notes.md).
# Usage: bench/cluster_perf.sh BUILD_DIR_A BUILD_DIR_B ROUNDS [BASE_PORT]
#   e.g. bench/cluster_perf.sh .build/busperf-before .build/busperf 2 7711
# Starts 3 nodes (N=3 W=2 R=2) on BASE_PORT..+2 (bus ports +10000) and one single node on
# BASE_PORT+3, runs redis-benchmark -P 16 and -P 1 against each, stops exactly the pids it started.
set -u
A=$1; B=$2; ROUNDS=$3; BASE=${4:-7711}
N=20000
PIDS=()
TMP=$(mktemp -d /tmp/busperf.XXXXXX)
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 not up" >&2; return 1; }
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done; PIDS=(); }
bench() { # label port
  for P in 16 1; do
    out=$(redis-benchmark -p "$2" -t set,get -n $N -r 100000 -d 100 -c 50 -P $P -q 2>/dev/null | tr '\r' '\n' | grep -E '^(SET|GET):.*requests per second' )
    echo "$out" | sed -E "s/^/$1 P=$P /"
  done
}
cluster() { # build
  local seeds="127.0.0.1:$BASE@$((BASE+10000)),127.0.0.1:$((BASE+1))@$((BASE+10001)),127.0.0.1:$((BASE+2))@$((BASE+10002))"
  for i in 0 1 2; do
    local p=$((BASE+i)); rm -rf "$TMP/$p"; mkdir -p "$TMP/$p"
    node "$1/src/cli/main.js" --port $p --dir "$TMP/$p" --bind 127.0.0.1 --cluster-port $((p+10000)) --seeds "$seeds" \
      --replication-factor 3 --read-quorum 2 --write-quorum 2 >"$TMP/log.$p" 2>&1 &
    PIDS+=($!)
  done
  for i in 0 1 2; do wait_port $((BASE+i)) || return 1; done
  # membership: wait until node 0 lists 3 nodes with no fail flag
  for _ in $(seq 1 150); do
    [ "$(redis-cli -p $BASE CLUSTER NODES 2>/dev/null | grep -v fail | grep -c .)" = 3 ] && break; sleep 0.1; done
  redis-cli -p $BASE SET warm x >/dev/null
}
single() { # build
  local p=$((BASE+3)); rm -rf "$TMP/$p"; mkdir -p "$TMP/$p"
  node "$1/src/cli/main.js" --port $p --dir "$TMP/$p" --bind 127.0.0.1 >"$TMP/log.$p" 2>&1 &
  PIDS+=($!); wait_port $p
}
for r in $(seq 1 "$ROUNDS"); do
  for X in A B; do
    D=$A; [ $X = B ] && D=$B
    cluster "$D" && bench "round=$r build=$X cluster" $BASE; stop_all
    single "$D" && bench "round=$r build=$X single" $((BASE+3)); stop_all
  done
done
