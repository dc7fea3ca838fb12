#!/usr/bin/env bash
# A long stream of publications sent without awaiting them (the harness's labc-fire publisher,
# bench/peers-styles/labc-fire.pub.mjs, and its labc subscriber), one subscriber process, over
# loopback TCP and over the host's Unix sockets (network.local_sockets) in turns, ROUNDS times:
# the subscriber's rate (on its own clock) and the publisher's CPU (every thread, user and
# system). The harness's W3 sends 200 000, which a subscriber mostly keeps up with; a stream of a
# million runs its publisher ahead, and what then waits in its process shows (a Unix socket's
# system buffer is 208 KiB, loopback TCP's grows to megabytes). OTHER=dir/dist/labc.js adds a
# second build in the same rounds. A round that loses, reorders or times out a publication
# stops the run. In a network namespace of its own (as root), after a build.
# Usage: bash bench/fire-stream.sh [ROUNDS=4] [COUNT=1000000]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${1:-4}
COUNT=${2:-1000000}
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ && $COUNT =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash bench/fire-stream.sh [ROUNDS=4] [COUNT=1000000]   (whole numbers; as root, after npm run build)" >&2
  exit 2
fi
builds=("$(cd "$HERE/.." && pwd)/dist/labc.js")
[ -n "${OTHER:-}" ] && builds+=("$(realpath "$OTHER")")
for entry in "${builds[@]}"; do
  [ -f "$entry" ] || { echo "fire-stream: no $entry (npm run build there first)" >&2; exit 2; }
done
PEERS=$HERE/shared-peers
ROLES=$PEERS/labc-fire-stream$$
NS=firestream$$
ip netns add $NS || exit 1
WORK=$(mktemp -d)
# Every process of the namespace (subscriber, publisher, router) ends with the run, by PID.
trap 'ip netns pids $NS | xargs -r kill -9; ip netns del $NS; rm -rf "$WORK" "$ROLES"' EXIT
ip netns exec $NS ip link set lo up
mkdir "$ROLES" && cp "$PEERS"/labc/*.mjs "$ROLES/" && cp "$HERE/peers-styles/labc-fire.pub.mjs" "$ROLES/pub.mjs" || exit 1
# The publisher's CPU, said as it exits.
echo 'process.on("exit", () => { const u = process.cpuUsage(); console.error(`cpu_ms ${Math.round((u.user + u.system) / 1000)}`); });' >"$ROLES/cpu-at-exit.mjs"
# A field of the subscriber's result line.
field() { grep -o "\"$1\":[a-z0-9]*" "$2" | cut -d: -f2; }
# One stream: prints "<subscriber's rate>/s, publisher <CPU> ms".
stream() {
  local entry=$1 sockets=$2 home port sub
  home=$(mktemp -d "$WORK/home.XXXX")
  port=$((20000 + RANDOM % 20000))
  local run=(ip netns exec $NS env "XDG_CONFIG_HOME=$home" "XDG_STATE_HOME=$home" "XDG_CACHE_HOME=$home"
    "LABC_ROUTER_PORT=$port" LABC_ROUTER_LINGER=1 "LABC_NETWORK_LOCAL_SOCKETS=$sockets" "LABC_ENTRY=$entry")
  "${run[@]}" node "$ROLES/sub.mjs" --count "$COUNT" >"$home/sub" 2>&1 &
  sub=$!
  for _ in $(seq 200); do grep -q ready "$home/sub" && break; sleep 0.05; done
  grep -q ready "$home/sub" || { echo "fire-stream: the subscriber did not start:" >&2; cat "$home/sub" >&2; exit 1; }
  "${run[@]}" node --import "$ROLES/cpu-at-exit.mjs" "$ROLES/pub.mjs" --count "$COUNT" >"$home/pub" 2>&1
  wait $sub
  local received order timed
  received=$(field received "$home/sub") order=$(field out_of_order "$home/sub") timed=$(field timed_out "$home/sub")
  if [ "$received" != "$COUNT" ] || [ "$order" != 0 ] || [ "$timed" != false ]; then
    echo "fire-stream: $received of $COUNT received, $order out of order, timed out: $timed" >&2
    cat "$home/sub" "$home/pub" >&2
    exit 1
  fi
  echo "$(field sub_side_msgs_per_s "$home/sub")/s, publisher $(grep -o 'cpu_ms [0-9]*' "$home/pub" | cut -d' ' -f2) ms"
}
echo "$COUNT publications a round, fire-and-forget, one subscriber: publications a second (the subscriber's clock), the publisher's CPU"
for round in $(seq "$ROUNDS"); do
  # The builds, and the two ways, take turns at going first.
  order=("${builds[@]}")
  ways=(false true)
  if [ $((round % 2)) = 0 ]; then
    order=("${builds[@]:1}" "${builds[0]}")
    ways=(true false)
  fi
  for entry in "${order[@]}"; do
    for sockets in "${ways[@]}"; do
      printf 'round %s, %s, %s: ' "$round" "$entry" "$([ $sockets = true ] && echo "Unix sockets" || echo TCP)"
      stream "$entry" $sockets
    done
  done
done
