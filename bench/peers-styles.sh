#!/usr/bin/env bash
# W3 of the shared peer harness with labc publishing as users also write it (issue 31): each
# publication awaited (labc-each) and fire-and-forget (labc-fire), beside raw and NATS, 3 reps,
# in a network namespace of its own. The harness's own labc publisher (batches of 1000 awaited)
# is in the main sitting. Each style is a copy of the harness's labc roles with its own pub.mjs
# (bench/peers-styles/), removed after.
# Usage: LABC_ENTRY=<checkout>/dist/labc.js bash bench/peers-styles.sh OUTDIR   (as root)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
: "${LABC_ENTRY:?set LABC_ENTRY to a built labc dist/labc.js}"
PEERS=$HERE/shared-peers
NS=styles$$
ip netns add $NS && ip netns exec $NS ip link set lo up
trap 'ip netns pids $NS | xargs -r kill -9; ip netns del $NS; rm -rf "$PEERS/labc-each" "$PEERS/labc-fire"' EXIT
H=$(mktemp -d); export HOME=$H XDG_CONFIG_HOME=$H/.config XDG_CACHE_HOME=$H/.cache XDG_STATE_HOME=$H/.state
for style in each fire; do
  mkdir -p "$PEERS/labc-$style" && cp "$PEERS"/labc/*.mjs "$PEERS/labc-$style/"
  cp "$HERE/peers-styles/labc-$style.pub.mjs" "$PEERS/labc-$style/pub.mjs"
done
cd "$PEERS"
ip netns exec $NS env LABC_ENTRY="$LABC_ENTRY" node run.mjs --reps 3 --workloads w3 --systems raw,nats \
  --system labc-each=labc-each --system labc-fire=labc-fire --out "$OUT" >"$OUT.jsonl" 2>"$OUT.err"
echo "done: $OUT"
