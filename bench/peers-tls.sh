#!/usr/bin/env bash
# The network secret's cost against the platform's own: W1 and W2 of the shared peer harness with
# raw, raw over TLS as labc's secret makes it (raw-tls: TLS 1.3, an external PSK, the same suites;
# bench/peers-tls/), labc, and labc with a network secret, all in one run, 3 reps, in a network
# namespace of its own. The secret's target (labc-secret ÷ labc) reads against raw-tls ÷ raw: what
# Node's TLS costs a call that does nothing else; then W1 of the four with each process's vCPU
# fixed (bench/peers-pinned.sh). The copies into the harness are removed after.
# Usage: LABC_ENTRY=<checkout>/dist/labc.js bash bench/peers-tls.sh OUTDIR   (as root)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
: "${LABC_ENTRY:?set LABC_ENTRY to a built labc dist/labc.js}"
CLONE=$(cd "$(dirname "$LABC_ENTRY")/.." && pwd)
PEERS=$HERE/shared-peers
NS=tls$$
ip netns add $NS && ip netns exec $NS ip link set lo up
trap 'ip netns pids $NS | xargs -r kill -9; ip netns del $NS; rm -rf "$PEERS/raw-tls" "$PEERS/labc-secret"' EXIT
H=$(mktemp -d); export HOME=$H XDG_CONFIG_HOME=$H/.config XDG_CACHE_HOME=$H/.cache XDG_STATE_HOME=$H/.state
SECRET=$(env LABC_SECRET= node "$CLONE/bin/labc.js" secret new >/dev/null 2>&1; node "$CLONE/bin/labc.js" secret show 2>/dev/null)
rm -f "$H/.config/labc/secret"
mkdir -p "$PEERS/raw-tls" && cp "$HERE"/peers-tls/{common-tls,server,client}.mjs "$PEERS/raw-tls/"
mkdir -p "$PEERS/labc-secret" && cp "$PEERS"/labc/*.mjs "$PEERS/labc-secret/" && cp "$HERE/peers-tls/labc-secret-env.mjs" "$PEERS/labc-secret/"
mv "$PEERS/labc-secret/common.mjs" "$PEERS/labc-secret/common-plain.mjs"
printf "import './labc-secret-env.mjs';\nexport * from './common-plain.mjs';\n" >"$PEERS/labc-secret/common.mjs"
cd "$PEERS"
ip netns exec $NS env BENCH_LABC_SECRET="$SECRET" LABC_ENTRY="$LABC_ENTRY" node run.mjs --reps 3 --workloads w1,w2 --systems raw \
  --system labc=labc --system raw-tls=raw-tls --system labc-secret=labc-secret --out "$OUT" >"$OUT.jsonl" 2>"$OUT.err"
# Per rep: each system ÷ its plain counterpart, W1 p50 and W2 calls/s.
node "$HERE/peers-tls/ratios.mjs" "$OUT/runs.jsonl" >"$OUT/ratios.md"
# W1 again with each process's vCPU fixed, while the copies exist (bench/peers-pinned.sh).
PINNED_SYSTEMS="raw raw-tls labc labc-secret" BENCH_LABC_SECRET="$SECRET" bash "$HERE/peers-pinned.sh" "$OUT/pinned" >/dev/null
echo "done: $OUT"
