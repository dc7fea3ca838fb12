#!/usr/bin/env bash
# W1 of the shared peer harness's raw, proto and labc roles with each process's vCPU fixed
# (taskset): server and client on one vCPU, then on two, 5 reps, the systems in turn (which goes
# first rotates), in a network namespace of its own. A lone call's round trip is two wake-ups,
# and waking a process on the other vCPU of this virtual machine costs about 25 µs more than on
# its own: unpinned, which processes happened to share a vCPU moved a rep's W1 ratio from 0.78x
# to 1.48x. Here each ratio compares like placements (labc's router, started by its server,
# shares the server's vCPU; a lone call does not pass through it). Needs two vCPUs (with one, it
# says so and stops). PINNED_SYSTEMS names other roles of the harness's folder to run instead
# (bench/peers-tls.sh: raw, raw-tls, labc, labc-secret, with BENCH_LABC_SECRET).
# Usage: LABC_ENTRY=<checkout>/dist/labc.js bash bench/peers-pinned.sh OUTDIR   (as root)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
: "${LABC_ENTRY:?set LABC_ENTRY to a built labc dist/labc.js}"
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
  echo "peers-pinned: needs two vCPUs and taskset (util-linux)" >"$OUT/summary.md"
  exit 0
fi
NS=pinned$$
ip netns add $NS && ip netns exec $NS ip link set lo up
H=$(mktemp -d)
trap 'ip netns pids $NS | xargs -r kill -9; ip netns del $NS; rm -rf "$H"' EXIT
export HOME=$H XDG_CONFIG_HOME=$H/.config XDG_CACHE_HOME=$H/.cache XDG_STATE_HOME=$H/.state
cd "$HERE/shared-peers"
IN_NS=(ip netns exec $NS env LABC_ENTRY="$LABC_ENTRY" BENCH_LABC_SECRET="${BENCH_LABC_SECRET:-}" LABC_DISCOVERY_ENABLED=false LABC_ROUTER_PORT=15555 taskset -c)
read -r -a systems <<<"${PINNED_SYSTEMS:-raw proto labc}"
: >"$OUT/runs.jsonl"
for rep in 1 2 3 4 5; do
  # Which system goes first rotates from rep to rep.
  first=$(((rep - 1) % ${#systems[@]}))
  order=("${systems[@]:first}" "${systems[@]:0:first}")
  for client_cpu in 0 1; do
    for system in "${order[@]}"; do
      # Not through a function: `$!` is then the server itself (ip and taskset exec it), ended below.
      "${IN_NS[@]}" 0 node $system/server.mjs --port 15101 >"$OUT/server.log" 2>&1 &
      server=$!
      for _ in $(seq 100); do grep -q ready "$OUT/server.log" 2>/dev/null && break; sleep 0.05; done
      result=$("${IN_NS[@]}" $client_cpu node $system/client.mjs --workload w1 --port 15101 --calls 20000 2>>"$OUT/client.err" | tail -1)
      kill $server; wait $server 2>/dev/null
      echo "{\"rep\":$rep,\"system\":\"$system\",\"placement\":\"$([ $client_cpu = 0 ] && echo one || echo two)\",\"result\":${result:-null}}" >>"$OUT/runs.jsonl"
    done
  done
done
node "$HERE/peers-pinned/summary.mjs" "$OUT/runs.jsonl" >"$OUT/summary.md"
echo "done: $OUT"
