#!/usr/bin/env bash
# A long stream of publications sent without awaiting them (the harness's labc-fire publisher,
# bench/peers-styles/labc-fire.pub.mjs, and its labc subscriber), one subscriber process, over
# loopback TCP and over the host's Unix sockets (network.local_sockets) in turns, ROUNDS times:
# the subscriber's rate (on its own clock) and the publisher's CPU (utime + stime). The
# harness's W3 sends 200 000, which a subscriber mostly keeps up with; a stream of a million
# runs its publisher ahead, and what then waits in its process shows (a Unix socket's system
# buffer is 208 KiB, loopback TCP's grows to megabytes). OTHER=dir/dist/labc.js adds a second
# build in the same rounds. In a network namespace of its own (as root), after a build.
# Usage: bash bench/fire-stream.sh [ROUNDS=4] [COUNT=1000000]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${1:-4}
COUNT=${2:-1000000}
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ && $COUNT =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash bench/fire-stream.sh [ROUNDS=4] [COUNT=1000000]   (whole numbers; as root, after npm run build)" >&2
  exit 2
fi
[ -f "$HERE/../dist/labc.js" ] || { echo "fire-stream: no dist/labc.js: npm run build first" >&2; exit 2; }
PEERS=$HERE/shared-peers
ROLES=$PEERS/labc-fire-stream
NS=firestream$$
WORK=$(mktemp -d)
sub=""
ip netns add $NS || exit 1
trap '[ -n "$sub" ] && kill $sub 2>/dev/null; wait 2>/dev/null; ip netns del $NS; rm -rf "$WORK" "$ROLES"' EXIT
ip netns exec $NS ip link set lo up
mkdir -p "$ROLES" && cp "$PEERS"/labc/*.mjs "$ROLES/" && cp "$HERE/peers-styles/labc-fire.pub.mjs" "$ROLES/pub.mjs"
# The publisher's CPU (every thread's, user and system), said as it exits.
echo 'process.on("exit", () => { const u = process.cpuUsage(); console.error(`cpu_ms ${Math.round((u.user + u.system) / 1000)}`); });' >"$ROLES/cpu-at-exit.mjs"
builds=("$(cd "$HERE/.." && pwd)/dist/labc.js")
[ -n "${OTHER:-}" ] && builds+=("$OTHER")
# One stream: prints "<subscriber's rate> <publisher's CPU in ms>".
stream() {
  local entry=$1 sockets=$2 home port
  home=$(mktemp -d "$WORK/home.XXXX")
  port=$((20000 + RANDOM % 20000))
  local run=(ip netns exec $NS env XDG_CONFIG_HOME=$home XDG_STATE_HOME=$home XDG_CACHE_HOME=$home
    LABC_ROUTER_PORT=$port LABC_ROUTER_LINGER=1 LABC_NETWORK_LOCAL_SOCKETS=$sockets LABC_ENTRY=$entry)
  # `$!` is the node process itself: ip netns exec and env exec it.
  "${run[@]}" node "$ROLES/sub.mjs" --count "$COUNT" >"$home/sub" 2>&1 &
  sub=$!
  for _ in $(seq 200); do grep -q ready "$home/sub" && break; sleep 0.05; done
  "${run[@]}" node --import "$ROLES/cpu-at-exit.mjs" "$ROLES/pub.mjs" --count "$COUNT" >"$home/pub" 2>&1
  wait $sub
  sub=""
  echo "$(grep -o '"sub_side_msgs_per_s":[0-9]*' "$home/sub" | cut -d: -f2) $(grep -o 'cpu_ms [0-9]*' "$home/pub" | cut -d' ' -f2)"
}
echo "$COUNT publications a round, fire-and-forget, one subscriber; publications a second (subscriber's clock), publisher's CPU ms"
for round in $(seq "$ROUNDS"); do
  for entry in "${builds[@]}"; do
    for sockets in false true; do
      way=$([ $sockets = true ] && echo "Unix sockets" || echo "TCP")
      echo "round $round, $entry, $way: $(stream "$entry" $sockets)"
    done
  done
done
