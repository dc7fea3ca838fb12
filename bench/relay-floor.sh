#!/usr/bin/env bash
# A lean relay (bench/relay-floor.mjs) against a direct call: the shared harness's raw client
# (W2, 100 in flight, 300 000 calls) to its raw echo server directly, then through the relay, in
# turns, ROUNDS times (default 5) after one round of each not reported (V8 warming up); calls/s
# and the CPU per call of the server and the relay from /proc. In a network
# namespace of its own (as root). Usage: bash bench/relay-floor.sh [ROUNDS]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NS=relayfloor$$
server="" relay=""
OUT=$(mktemp -d)
ip netns add $NS || exit 1
trap 'kill $server $relay 2>/dev/null; wait 2>/dev/null; ip netns del $NS; rm -rf "$OUT"' EXIT
ip netns exec $NS ip link set lo up
cd "$HERE/shared-peers"
# Waits for a process's "ready" line (or fails after 10 s).
ready() { for _ in $(seq 200); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "relay-floor: $2 did not start" >&2; exit 1; }
# `$!` is the node process itself: ip netns exec execs it. Ended by PID with the namespace.
ip netns exec $NS node raw/server.mjs --port 15100 >"$OUT/server" 2>&1 &
server=$!
ready "$OUT/server" "the raw server"
ip netns exec $NS node "$HERE/relay-floor.mjs" 15200 15100 >"$OUT/relay" 2>&1 &
relay=$!
ready "$OUT/relay" "the relay"
HZ=$(getconf CLK_TCK) # /proc/PID/stat's utime and stime (fields 14, 15) count these
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
round() {
  local port=$1 s0 r0 s1 r1 result
  s0=$(ticks $server) r0=$(ticks $relay)
  result=$(ip netns exec $NS node raw/client.mjs --workload w2 --port "$port" --calls 300000 | tail -1)
  s1=$(ticks $server) r1=$(ticks $relay)
  echo "$result" | python3 -c "import json, sys
e = json.loads(sys.stdin.read()); n = e['calls'] + e['warmup']
print('direct ' if $port == 15100 else 'relayed', 'calls/s', e['calls_per_s'], ' CPU µs per call: server', round(($s1 - $s0) * 1e6 / $HZ / n, 2), ' relay', round(($r1 - $r0) * 1e6 / $HZ / n, 2))"
}
round 15100 >/dev/null
round 15200 >/dev/null
for _ in $(seq "${1:-5}"); do
  round 15100
  round 15200
done
