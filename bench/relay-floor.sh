#!/usr/bin/env bash
# The floor of a relay (bench/relay-floor.mjs) against a direct call: the shared harness's raw
# client (W2, 100 in flight, 300 000 calls) to its raw echo server directly, then through the
# floor relay, in turns, ROUNDS times (default 5); calls/s and the CPU per call of the server and
# the relay from /proc. In a network namespace of its own (as root). Usage: bash bench/relay-floor.sh [ROUNDS]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NS=relayfloor$$
ip netns add $NS && ip netns exec $NS ip link set lo up
cd "$HERE/shared-peers"
# `$!` is the node process itself: ip netns exec execs it. Ended by PID with the namespace.
ip netns exec $NS node raw/server.mjs --port 15100 >/dev/null 2>&1 &
server=$!
sleep 0.5
ip netns exec $NS node "$HERE/relay-floor.mjs" 15200 15100 >/dev/null 2>&1 &
relay=$!
trap 'kill $server $relay 2>/dev/null; wait 2>/dev/null; ip netns del $NS' EXIT
sleep 0.5
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for _ in $(seq "${1:-5}"); do
  for port in 15100 15200; do
    s0=$(ticks $server) r0=$(ticks $relay)
    result=$(ip netns exec $NS node raw/client.mjs --workload w2 --port $port --calls 300000 | tail -1)
    s1=$(ticks $server) r1=$(ticks $relay)
    echo "$result" | python3 -c "import json, sys
e = json.loads(sys.stdin.read()); n = e['calls']; hz = 100
print('direct ' if $port == 15100 else 'relayed', 'calls/s', e['calls_per_s'], ' CPU µs per call: server', round(($s1 - $s0) * 1e6 / hz / n, 2), ' relay', round(($r1 - $r0) * 1e6 / hz / n, 2))"
  done
done
