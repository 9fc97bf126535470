#!/usr/bin/env bash
# Runs Hush's benchmarks between separate processes over a chosen link.
#
#   bench/net.sh LINK [hush bench options]   the ops/models suites, one party
#                                            per process (hush bench --listen/--peer)
#   bench/net.sh LINK --e2e [--model M] [--input X.npy] [--repeat N] [--name LABEL]
#                                            the product end to end: hush dealer
#                                            and hush serve on one side, hush infer
#                                            on the other; one JSON line
#
# LINK is one of
#   loopback  both processes on 127.0.0.1, no shaping
#   wan10     10 ms round trip, 1 Gbit/s
#   wan40     40 ms round trip, 100 Mbit/s
# The WAN links put the two sides in network namespaces (hush-bench-a,
# hush-bench-b) joined by a veth pair, shaped with `tc netem` on both ends.
# Where the kernel has no sch_netem (as on this project's CI machines), the
# delay and rate are applied instead by a userspace relay on the path
# (`cargo xtask linkem`, see xtask/src/linkem.rs), and the JSON says so.
# Namespaces need root (or CAP_NET_ADMIN); without them the WAN links are
# skipped with a message and exit code 0. Everything is cleaned up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

LINK=${1:-}
shift || true
case "$LINK" in
  loopback) RTT_MS=0; RATE_MBIT=0 ;;
  wan10) RTT_MS=10; RATE_MBIT=1000 ;;
  wan40) RTT_MS=40; RATE_MBIT=100 ;;
  *) echo "usage: bench/net.sh loopback|wan10|wan40 [--e2e ...] [hush bench options]" >&2; exit 2 ;;
esac

# The binaries, built (or brought up to date) unless HUSH/XTASK name them.
if [ -z "${HUSH:-}" ] || [ -z "${XTASK:-}" ]; then
  cargo build --release -q -p hush-server -p xtask
fi
HUSH=${HUSH:-target/release/hush}
XTASK=${XTASK:-target/release/xtask}

NSA=hush-bench-a
NSB=hush-bench-b
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ "$LINK" != loopback ]; then
    for ns in "$NSA" "$NSB"; do
      ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    done
  fi
  wait 2>/dev/null || true
  if [ "$LINK" != loopback ]; then
    ip netns del "$NSA" 2>/dev/null || true
    ip netns del "$NSB" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# run_a/run_b CMD...: run on side A (server, party 1) or B (client, party 0);
# start_a CMD...: the same in the background, remembered for the cleanup.
SHAPING=none
start_a() {
  if [ "$LINK" = loopback ]; then "$@" & else ip netns exec "$NSA" "$@" & fi
  PIDS+=($!)
}
if [ "$LINK" = loopback ]; then
  A_HOST=127.0.0.1
  run_a() { "$@"; }
  run_b() { "$@"; }
else
  setup_namespaces() {
    # Leftovers of an interrupted run first.
    ip netns del "$NSA" 2>/dev/null || true
    ip netns del "$NSB" 2>/dev/null || true
    ip link del hush-va 2>/dev/null || true
    ip netns add "$NSA" &&
      ip netns add "$NSB" &&
      ip link add hush-va type veth peer name hush-vb &&
      ip link set hush-va netns "$NSA" &&
      ip link set hush-vb netns "$NSB" &&
      ip -n "$NSA" addr add 10.77.0.1/24 dev hush-va &&
      ip -n "$NSB" addr add 10.77.0.2/24 dev hush-vb &&
      ip -n "$NSA" link set lo up &&
      ip -n "$NSB" link set lo up &&
      ip -n "$NSA" link set hush-va up &&
      ip -n "$NSB" link set hush-vb up
  }
  if ! setup_namespaces 2>/dev/null; then
    echo "bench/net.sh: skipping $LINK: cannot create network namespaces and a veth pair here (needs iproute2 and root or CAP_NET_ADMIN)" >&2
    exit 0
  fi
  A_HOST=10.77.0.1
  run_a() { ip netns exec "$NSA" "$@"; }
  run_b() { ip netns exec "$NSB" "$@"; }
  HALF_MS=$(awk "BEGIN{print $RTT_MS/2}")
  if ip netns exec "$NSA" tc qdisc add dev hush-va root netem delay "${HALF_MS}ms" rate "${RATE_MBIT}mbit" limit 100000 2>/dev/null; then
    ip netns exec "$NSB" tc qdisc add dev hush-vb root netem delay "${HALF_MS}ms" rate "${RATE_MBIT}mbit" limit 100000
    SHAPING="tc netem"
  else
    SHAPING="userspace relay (tc netem unavailable here)"
    echo "bench/net.sh: tc netem is unavailable here (no sch_netem in the kernel, or no tc); shaping with cargo xtask linkem on the veth path" >&2
  fi
fi

wait_port() { # wait_port RUNNER HOST:PORT
  for _ in $(seq 1 300); do
    if $1 bash -c "exec 3<>/dev/tcp/${2%:*}/${2#*:}" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench/net.sh: nothing listens on $2" >&2
  return 1
}

# expose PORT: sets EXPOSED to the address side B uses to reach side A's
# 127.0.0.1:PORT through the link (via the relay when netem is unavailable).
RELAY_PORT=7800
expose() {
  local port=$1
  if [ "$LINK" = loopback ]; then
    EXPOSED="127.0.0.1:$port"
  elif [ "$SHAPING" = "tc netem" ]; then
    EXPOSED="$A_HOST:$port"
  else
    RELAY_PORT=$((RELAY_PORT + 1))
    start_a "$XTASK" linkem --listen "$A_HOST:$RELAY_PORT" --to "127.0.0.1:$port" \
      --delay-ms "$HALF_MS" --rate-mbit "$RATE_MBIT" 2>/dev/null
    EXPOSED="$A_HOST:$RELAY_PORT"
    wait_port run_b "$EXPOSED"
  fi
}

# Side A listens on all its addresses (loopback for the relay, the veth for netem).
BIND_HOST=0.0.0.0
[ "$LINK" = loopback ] && BIND_HOST=127.0.0.1

if [ "${1:-}" = "--e2e" ]; then
  shift
  MODEL=builtin:resnet18-32
  INPUT=""
  REPEAT=3
  NAME=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) NAME=$2; shift 2 ;;
      --model) MODEL=$2; shift 2 ;;
      --input) INPUT=$2; shift 2 ;;
      --repeat) REPEAT=$2; shift 2 ;;
      *) echo "bench/net.sh: unknown option $1" >&2; exit 2 ;;
    esac
  done
  DEALER_PORT=7711
  SERVER_PORT=7712
  start_a "$HUSH" dealer --addr "127.0.0.1:$DEALER_PORT" >/dev/null 2>&1
  wait_port run_a "127.0.0.1:$DEALER_PORT"
  expose "$DEALER_PORT"
  DEALER_PUBLIC=$EXPOSED
  start_a "$HUSH" serve --model "$MODEL" --addr "$BIND_HOST:$SERVER_PORT" \
    --dealer "ws://127.0.0.1:$DEALER_PORT" --dealer-public-url "ws://$DEALER_PUBLIC" >/dev/null 2>&1
  wait_port run_a "127.0.0.1:$SERVER_PORT"
  expose "$SERVER_PORT"
  SERVER=$EXPOSED
  ARGS=(infer --server "ws://$SERVER" --repeat "$REPEAT" --json)
  [ -n "$INPUT" ] && ARGS+=(--input "$INPUT")
  START=$(date +%s.%N)
  OUT=$(run_b "$HUSH" "${ARGS[@]}" 2>/dev/null)
  END=$(date +%s.%N)
  python3 - "$OUT" "$LINK" "$RTT_MS" "$RATE_MBIT" "$SHAPING" "$START" "$END" "$MODEL" "$NAME" <<'EOF'
import json, sys
out, link, rtt, rate, shaping, start, end, model, name = sys.argv[1:]
r = json.loads(out)
print(json.dumps({
    "name": f"{name or r['model']} end to end (hush serve/infer)",
    "framework": "hush",
    "link": link, "rtt_ms": float(rtt), "rate_mbit": float(rate), "shaping": shaping,
    "model": model,
    "connect_and_setup_s": r["connect_s"],
    "inference_s_median": r["inference_s"],
    "inferences": r["inferences"],
    "end_to_end_s": r["connect_s"] + r["inference_s"],
    "process_wall_s": float(end) - float(start),
    "online": r["online"], "weight_setup": r["weight_setup"],
}))
EOF
  exit 0
fi

# The ops/models suites, one party per process.
PORT=7700
start_a "$HUSH" bench --listen "$BIND_HOST:$PORT" --link "$LINK" "$@" >/dev/null
# (no port probe here: party 1 takes the first connection as party 0's; the
# connecting side retries until party 1 listens)
expose "$PORT"
run_b "$HUSH" bench --peer "ws://$EXPOSED" --link "$LINK" "$@"
