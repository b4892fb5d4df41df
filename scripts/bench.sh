#!/usr/bin/env bash
# Measures the issue bars in one sitting, as ratios of medians (the machine
# is noisy: every side is measured in the same run, in rotated order).
#   (a) proxy/apns Sender vs sideshow/apns2 and vs a hand-written x/net client
#   (b) end to end through the local API vs the hand-written client direct
#   (c) provider-token signatures per run, (d) allocations per notification
# Usage: scripts/bench.sh [rounds]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/pushproxy" ./cmd/pushproxy
go test -c -o "$tmp/apns.test" ./proxy/apns/ >/dev/null

order=(Sender Handwritten Apns2)
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < 3; i++)); do
    b="${order[$(((i + r) % 3))]}"
    "$tmp/apns.test" -test.run='^$' -test.bench="^Benchmark${b}\$" -test.benchtime=20000x -test.benchmem |
      awk -v b="$b" '/^Benchmark/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "allocs/op") al = $i; if ($(i+1) == "signatures") sg = $i } print b, ns, al, sg }' >>"$tmp/micro"
  done
  if ((r % 2 == 0)); then modes=(e2e direct); else modes=(direct e2e); fi
  for m in "${modes[@]}"; do
    flag=""; [[ $m == direct ]] && flag="--direct"
    "$tmp/pushproxy" bench -n 20000 -c 64 $flag --json | tr -d '\n' |
      sed -E 's/.*"notifications_per_second": *([0-9.]+).*/\1/' | awk -v m="$m" '{ print m, $1 }' >>"$tmp/e2e"
  done
done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A ns al
for b in Sender Handwritten Apns2; do
  ns[$b]=$(awk -v b="$b" '$1 == b { print $2 }' "$tmp/micro" | median)
  al[$b]=$(awk -v b="$b" '$1 == b { print $3 }' "$tmp/micro" | median)
done
sig=$(awk '$1 == "Sender" { print $4 }' "$tmp/micro" | sort -u | tr '\n' ' ')
e2e=$(awk '$1 == "e2e" { print $2 }' "$tmp/e2e" | median)
direct=$(awk '$1 == "direct" { print $2 }' "$tmp/e2e" | median)
echo "rounds: $rounds (medians; ns/op and allocs/op include the in-process fake's share)"
for b in Sender Handwritten Apns2; do printf '  %-12s %9.0f ns/op  %5s allocs/op\n' "$b" "${ns[$b]}" "${al[$b]}"; done
printf '  end to end   %9.0f notifications/s\n  direct       %9.0f notifications/s\n' "$e2e" "$direct"
awk -v s="${ns[Sender]}" -v h="${ns[Handwritten]}" -v a="${ns[Apns2]}" -v e="$e2e" -v d="$direct" 'BEGIN {
  printf "(a) Sender/apns2 throughput %.3f (bar >= 1.05); Sender/hand-written %.3f (bar >= 0.9)\n", a / s, h / s
  printf "(b) end to end/direct %.3f (bar >= 0.5)\n", e / d }'
echo "(c) provider-token signatures per Sender run: $sig(bar: 1)"
awk -v s="${al[Sender]}" -v h="${al[Handwritten]}" 'BEGIN { printf "(d) allocations per notification: Sender %d, hand-written %d (same fake share in both)\n", s, h }'
