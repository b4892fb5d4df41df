#!/usr/bin/env bash
# What a user pays per notification, measured with every party in a process
# of its own, on loopback: the load client (pushproxy bench: 64 keep-alive
# HTTP/1.1 connections posting JSON), pushproxy (this tree's binary and a
# baseline revision's, side by side), and the fake APNs (TLS + HTTP/2,
# internal/fakeapns/cmd/fakeapns). The direct baseline is a plain
# x/net/http2 client in the load client talking to the same fake.
#
# Each round runs the three sides once, in rotated order (paired rounds);
# each side reports throughput, latency percentiles and, from /proc/PID/stat,
# the CPU µs per notification of pushproxy, of the fake and of the load
# client, plus how many cores the rest of the machine used meanwhile. A
# round where that exceeds MAX_OTHER (cores, default 0.25) on any side is
# flagged, and the summary's ratios are medians over the unflagged rounds
# (over all rounds, said so, when every round was flagged).
#
# Usage: scripts/e2e-bench.sh [rounds (5)] [notifications per side (20000)]
# Then the same for Web Push (WEBPUSH=0 skips it): this tree's pushproxy in
# front of a fake push service (internal/fakepush/cmd/fakepush) against
# webpush-go v1.4.0 sending from the load client (internal/bench/cmd/webpushgo),
# a quarter as many notifications per run.
#
# The floor (FLOOR=0 skips it): internal/bench/cmd/floorproxy, the least a
# proxy on the same libraries costs (net/http server, x/net/http2 client, no
# features), plain and with pushproxy's library settings (-tuned).
#
# Environment: BASE=<revision> (default 4582aa0; empty: no baseline binary),
# BASE_BIN=<pushproxy binary> instead of BASE (before/after of one change),
# C=<concurrency> (64), MAX_OTHER=<cores> (0.25), KEEP=<dir> to keep the JSON
# of every run there, ENV_HEAD / ENV_BASE="VAR=value …" for one binary's
# environment only (GOGC=100, GOMAXPROCS=1 …).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
n="${2:-20000}"
base_rev="${BASE-4582aa0}"
c="${C:-64}"
max_other="${MAX_OTHER:-0.25}"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/pushproxy" ./cmd/pushproxy
go build -o "$tmp/fakeapns" ./internal/fakeapns/cmd/fakeapns
go build -o "$tmp/fakepush" ./internal/fakepush/cmd/fakepush
go build -o "$tmp/webpushgo" ./internal/bench/cmd/webpushgo
go build -o "$tmp/floorproxy" ./internal/bench/cmd/floorproxy
sides=(head direct)
if [[ -n ${BASE_BIN-} ]]; then # a binary built before a change: measures the change
  cp "$BASE_BIN" "$tmp/pushproxy-base"
  base_rev="$BASE_BIN"
  sides=(base head direct)
elif [[ -n $base_rev ]]; then
  mkdir "$tmp/base-src"
  git archive "$base_rev" | tar -x -C "$tmp/base-src"
  (cd "$tmp/base-src" && go build -o "$tmp/pushproxy-base" ./cmd/pushproxy)
  sides=(base head direct)
fi

[[ ${FLOOR-1} != 0 ]] && sides+=(floor tuned)

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/AuthKey_ABC123DEFG.p8"
"$tmp/fakeapns" -key "$tmp/AuthKey_ABC123DEFG.p8" -key-id ABC123DEFG -team-id DEF123GHIJ -ca-out "$tmp/ca.pem" >"$tmp/url" &
fake_pid=$!
pids+=("$fake_pid")
for _ in $(seq 200); do [[ -s $tmp/url ]] && break; sleep 0.05; done
url="$(head -1 "$tmp/url")"
"$tmp/pushproxy" vapid-keys --out "$tmp/vapid.json" >/dev/null
"$tmp/fakepush" -vapid "$tmp/vapid.json" -sub-out "$tmp/sub.json" -ca-out "$tmp/push-ca.pem" >"$tmp/push-url" &
push_pid=$!
pids+=("$push_pid")
for _ in $(seq 200); do [[ -s $tmp/push-url ]] && break; sleep 0.05; done
cat "$tmp/ca.pem" "$tmp/push-ca.pem" >"$tmp/cas.pem"

declare -A port=([head]=18582 [base]=18581 [floor]=18583 [tuned]=18584) pid=()
for s in "${sides[@]}"; do
  [[ $s == direct ]] && continue
  if [[ $s == floor || $s == tuned ]]; then # the libraries alone (internal/bench/cmd/floorproxy)
    flags=(); [[ $s == tuned ]] && flags=(-tuned)
    "$tmp/floorproxy" -listen "127.0.0.1:${port[$s]}" -fake "$url" -ca "$tmp/ca.pem" -key "$tmp/AuthKey_ABC123DEFG.p8" \
      -key-id ABC123DEFG -team-id DEF123GHIJ "${flags[@]}" >"$tmp/$s.log" 2>&1 &
    pid[$s]=$!
    pids+=("${pid[$s]}")
    for ((t = 0; ; t++)); do
      grep -q listening "$tmp/$s.log" && break
      if ((t > 500)) || ! kill -0 "${pid[$s]}" 2>/dev/null; then echo "floorproxy ($s) did not start:" >&2; cat "$tmp/$s.log" >&2; exit 1; fi
      sleep 0.02
    done
    continue
  fi
  cat >"$tmp/$s.yaml" <<YAML
listen: 127.0.0.1:${port[$s]}
log: {level: warn}
apns:
  - key_file: $tmp/AuthKey_ABC123DEFG.p8
    team_id: DEF123GHIJ
    topics: [com.example.app]
upstream:
  apns_production_url: $url
  apns_development_url: $url
  ca_file: $tmp/cas.pem
YAML
  [[ $s == head ]] && cat >>"$tmp/$s.yaml" <<YAML
webpush:
  subject: mailto:ops@example.com
  keys: [{name: bench, file: $tmp/vapid.json}]
  allow_endpoints: [127.0.0.1]
  allow_private_networks: true
YAML
  bin="$tmp/pushproxy"; extra="${ENV_HEAD-}"
  [[ $s == base ]] && { bin="$tmp/pushproxy-base"; extra="${ENV_BASE-}"; }
  # shellcheck disable=SC2086 # ENV_* are VAR=value words
  env $extra "$bin" serve --config "$tmp/$s.yaml" 2>"$tmp/$s.log" &
  pid[$s]=$!
  pids+=("${pid[$s]}")
  for ((t = 0; ; t++)); do
    "$tmp/pushproxy" healthcheck --url "http://127.0.0.1:${port[$s]}" >/dev/null 2>&1 && break
    if ((t > 500)) || ! kill -0 "${pid[$s]}" 2>/dev/null; then
      echo "the $s pushproxy did not start (port ${port[$s]} in use?):" >&2; cat "$tmp/$s.log" >&2; exit 1
    fi
    sleep 0.02
  done
done

run() { # side, n, output
  local s=$1
  if [[ $s == wp-direct ]]; then
    "$tmp/webpushgo" -sub "$tmp/sub.json" -vapid "$tmp/vapid.json" -ca "$tmp/push-ca.pem" \
      -n "$2" -c "$c" --cpu "fake=$push_pid" --max-other-load "$max_other" --json >"$3"
  elif [[ $s == wp-head ]]; then
    "$tmp/pushproxy" bench --url "http://127.0.0.1:${port[head]}" --webpush "$tmp/sub.json" -n "$2" -c "$c" \
      --cpu "pushproxy=${pid[head]}" --cpu "fake=$push_pid" --max-other-load "$max_other" --json >"$3"
  elif [[ $s == direct ]]; then
    "$tmp/pushproxy" bench --direct --fake "$url" --ca "$tmp/ca.pem" --key "$tmp/AuthKey_ABC123DEFG.p8" \
      -n "$2" -c "$c" --cpu "fake=$fake_pid" --max-other-load "$max_other" --json >"$3"
  else
    "$tmp/pushproxy" bench --url "http://127.0.0.1:${port[$s]}" -n "$2" -c "$c" \
      --cpu "pushproxy=${pid[$s]}" --cpu "fake=$fake_pid" --max-other-load "$max_other" --json >"$3"
  fi
}
for s in "${sides[@]}"; do run "$s" $((n / 4)) "$tmp/warm-$s.json"; done # connections, pools, heap

ns=${#sides[@]}
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < ns; i++)); do
    s="${sides[$(((i + r) % ns))]}"
    run "$s" "$n" "$tmp/r$r-$s.json"
  done
done
wp_sides=()
if [[ ${WEBPUSH-1} != 0 ]]; then
  wp_sides=(wp-head wp-direct)
  wn=$((n / 4)) # Web Push costs about four times an APNs notification
  for s in "${wp_sides[@]}"; do run "$s" $((wn / 4)) "$tmp/warm-$s.json"; done
  for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < 2; i++)); do
      s="${wp_sides[$(((i + r) % 2))]}"
      run "$s" "$wn" "$tmp/r$r-$s.json"
    done
  done
fi
[[ -n ${KEEP-} ]] && mkdir -p "$KEEP" && cp "$tmp"/r*.json "$KEEP"/

# One line per run: round side flagged rate p50 p99 proxy_us fake_us client_us other_cores load1
for ((r = 0; r < rounds; r++)); do
  for s in "${sides[@]}" "${wp_sides[@]}"; do
    jq -r --arg r "$r" --arg s "$s" '[$r, $s, (if .machine.flagged then 1 else 0 end), .notifications_per_second, .latency_ms.p50, .latency_ms.p99,
      ((.cpu[] | select(.name == "pushproxy") | .cpu_us_per_notification) // 0),
      (.cpu[] | select(.name == "fake") | .cpu_us_per_notification),
      (.cpu[] | select(.name == "load client") | .cpu_us_per_notification),
      .machine.other_cores, .machine.load_average[0], .failures] | @tsv' "$tmp/r$r-$s.json"
  done
done >"$tmp/runs.tsv"

echo "runs ($n APNs / $((n / 4)) Web Push notifications each, concurrency $c, $(nproc) CPUs; flagged = other load > $max_other cores):"
printf '  %-5s %-9s %4s %8s %7s %7s %9s %8s %9s %6s %5s\n' round side flag 'notif/s' 'p50 ms' 'p99 ms' 'proxy µs' 'fake µs' 'client µs' other load1
awk -F'\t' '{ printf "  %-5s %-9s %4s %8.0f %7.3f %7.3f %9.1f %8.1f %9.1f %6.2f %5.2f%s\n", $1, $2, ($3 ? "*" : ""), $4, $5, $6, $7, $8, $9, $10, $11, ($12 > 0 ? "  FAILURES " $12 : "") }' "$tmp/runs.tsv"

# Rounds with no flagged side; all rounds when there are none.
good=$(awk -F'\t' '{ f[$1] += $3; seen[$1] = 1 } END { for (r in seen) if (!f[r]) print r }' "$tmp/runs.tsv" | sort -n | tr '\n' ' ')
scope="$(wc -w <<<"$good") unflagged round(s) of $rounds"
if [[ -z $good ]]; then good=$(seq 0 $((rounds - 1)) | tr '\n' ' '); scope="ALL $rounds rounds (every round was flagged: other load on the machine)"; fi
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v s="$1" -v k="$2" -v g=" $good" 'index(g, " " $1 " ") && $2 == s { print $k }' "$tmp/runs.tsv" | median; }
# Paired ratio per round of column k: side a over side b.
pair() { awk -F'\t' -v a="$1" -v b="$2" -v k="$3" -v g=" $good" 'index(g, " " $1 " ") { v[$1, $2] = $k; r[$1] = 1 } END { for (x in r) if (v[x, b] > 0) print v[x, a] / v[x, b] }' "$tmp/runs.tsv" | median; }
echo
echo "medians over $scope; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-9s %8s %7s %7s %9s %8s %9s\n' side 'notif/s' 'p50 ms' 'p99 ms' 'proxy µs' 'fake µs' 'client µs'
for s in "${sides[@]}" "${wp_sides[@]}"; do
  printf '  %-9s %8.0f %7.3f %7.3f %9.1f %8.1f %9.1f\n' "$s" "$(col "$s" 4)" "$(col "$s" 5)" "$(col "$s" 6)" "$(col "$s" 7)" "$(col "$s" 8)" "$(col "$s" 9)"
done
echo
printf 'throughput through the local API / direct x/net client: %.3f (bar >= 0.5)\n' "$(pair head direct 4)"
if [[ -n $base_rev ]]; then
  printf 'pushproxy CPU per notification, this tree / %s: %.3f (bar <= 0.6)\n' "$base_rev" "$(pair head base 7)"
  printf 'throughput, this tree / %s: %.3f\n' "$base_rev" "$(pair head base 4)"
  if [[ ${FLOOR-1} != 0 ]]; then
    printf 'CPU per notification of the libraries alone (floorproxy) / %s: %.3f plain, %.3f tuned\n' "$base_rev" "$(pair floor base 7)" "$(pair tuned base 7)"
  fi
fi
if [[ ${FLOOR-1} != 0 ]]; then
  printf 'CPU per notification, this tree / floorproxy: %.3f plain, %.3f tuned\n' "$(pair head floor 7)" "$(pair head tuned 7)"
fi
if ((${#wp_sides[@]})); then
  printf 'Web Push through the local API / webpush-go from the load client, throughput: %.3f (bar >= 1.1)\n' "$(pair wp-head wp-direct 4)"
fi
awk -v us="$(col head 7)" 'BEGIN { printf "a sidecar at 1,000 notifications/s costs %.3f of a core (pushproxy alone)\n", us * 1000 / 1e6 }'
