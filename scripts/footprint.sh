#!/usr/bin/env bash
# Measures the sidecar's footprint: binary size, time from start to ready,
# idle RSS, and peak RSS with 1,000 notifications in flight (held by a fake
# APNs in a process of its own that answers after 3 s).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/pushproxy" ./cmd/pushproxy
go build -o "$tmp/fakeapns" ./internal/fakeapns/cmd/fakeapns
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/AuthKey_ABC123DEFG.p8"
"$tmp/fakeapns" -key "$tmp/AuthKey_ABC123DEFG.p8" -key-id ABC123DEFG -team-id DEF123GHIJ -ca-out "$tmp/ca.pem" -delay 3s >"$tmp/url" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.05; done
url="$(head -1 "$tmp/url")"
cat >"$tmp/config.yaml" <<YAML
listen: 127.0.0.1:18570
log: {level: warn}
apns:
  - key_file: $tmp/AuthKey_ABC123DEFG.p8
    team_id: DEF123GHIJ
    topics: [com.example.app]
upstream:
  apns_production_url: $url
  apns_development_url: $url
  ca_file: $tmp/ca.pem
YAML
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
start=$(date +%s%N)
"$tmp/pushproxy" serve --config "$tmp/config.yaml" 2>"$tmp/log" &
pid=$!
pids+=($pid)
until "$tmp/pushproxy" healthcheck --url http://127.0.0.1:18570 >/dev/null 2>&1; do sleep 0.002; done
ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
sleep 2
idle=$(rss "$pid")
"$tmp/pushproxy" bench --url http://127.0.0.1:18570 -n 1000 -c 1000 --timeout 30s --json >"$tmp/bench.json" &
bpid=$!
peak=0
while kill -0 "$bpid" 2>/dev/null; do
  r=$(rss "$pid"); [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.05
done
wait "$bpid" || { echo "bench failed:"; cat "$tmp/bench.json"; exit 1; }
ok=$(tr -d '\n ' <"$tmp/bench.json" | sed -E 's/.*"ok":([0-9]+).*/\1/')
printf 'binary (static, stripped)     %s MiB\n' "$(awk -v b="$(stat -c %s "$tmp/pushproxy")" 'BEGIN { printf "%.1f", b / 1048576 }')"
printf 'start to ready                %d ms\n' "$ready_ms"
printf 'idle RSS                      %.1f MiB\n' "$(awk -v k="$idle" 'BEGIN { print k / 1024 }')"
printf 'peak RSS, 1000 in flight      %.1f MiB (%s of 1000 delivered)\n' "$(awk -v k="$peak" 'BEGIN { print k / 1024 }')" "$ok"
