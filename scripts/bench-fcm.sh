#!/usr/bin/env bash
# FCM's bars in one sitting, as ratios of medians (the machine is noisy:
# both sides are measured in the same run, in rotated order):
#   end to end through the local API to the fake FCM vs a direct HTTP/2
#   client to the same fake (bar >= 0.5x), and access-token fetches per run
#   (bar: 1). Wall-clock throughput moves with the machine's other load, so
#   the CPU time per notification of each side is reported too. See
#   proxy/fcm_bench_test.go; proxy/fcm's BenchmarkSender vs
#   BenchmarkDirectHTTP2 isolates the sender alone.
# Usage: scripts/bench-fcm.sh [rounds] [notifications per run]   (default 5, 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
n="${2:-20000}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/proxy.test" ./proxy/ >/dev/null

order=(FCMEndToEnd FCMDirect)
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < 2; i++)); do
    b="${order[$(((i + r) % 2))]}"
    "$tmp/proxy.test" -test.run='^$' -test.bench="^Benchmark${b}\$" -test.benchtime="${n}x" -test.benchmem |
      awk -v b="$b" '/^Benchmark/ { tf = "-"; for (i = 1; i <= NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "allocs/op") al = $i; if ($(i+1) == "token-fetches") tf = $i; if ($(i+1) == "cpu-ns/op") cpu = $i } print b, ns, al, tf, cpu }' >>"$tmp/runs"
  done
done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
e2e=$(awk '$1 == "FCMEndToEnd" { print $2 }' "$tmp/runs" | median)
direct=$(awk '$1 == "FCMDirect" { print $2 }' "$tmp/runs" | median)
lo=$(awk '$1 == "FCMEndToEnd" { e[++ne] = $2 } $1 == "FCMDirect" { d[++nd] = $2 } END { m = 9; for (i = 1; i <= ne; i++) { r = d[i] / e[i]; if (r < m) m = r } print m }' "$tmp/runs")
hi=$(awk '$1 == "FCMEndToEnd" { e[++ne] = $2 } $1 == "FCMDirect" { d[++nd] = $2 } END { m = 0; for (i = 1; i <= ne; i++) { r = d[i] / e[i]; if (r > m) m = r } print m }' "$tmp/runs")
cpu_e=$(awk '$1 == "FCMEndToEnd" { print $5 }' "$tmp/runs" | median)
cpu_d=$(awk '$1 == "FCMDirect" { print $5 }' "$tmp/runs" | median)
fetches=$(awk '$1 == "FCMEndToEnd" { print $4 }' "$tmp/runs" | sort -u | tr '\n' ' ')
al_e=$(awk '$1 == "FCMEndToEnd" { print $3 }' "$tmp/runs" | median)
al_d=$(awk '$1 == "FCMDirect" { print $3 }' "$tmp/runs" | median)
echo "rounds: $rounds x $n notifications (medians; the in-process fake's share is in both)"
printf '  end to end   %9.0f ns/op  %7.0f notifications/s  %5s allocs/op\n' "$e2e" "$(awk -v x="$e2e" 'BEGIN { print 1e9 / x }')" "$al_e"
printf '  direct       %9.0f ns/op  %7.0f notifications/s  %5s allocs/op\n' "$direct" "$(awk -v x="$direct" 'BEGIN { print 1e9 / x }')" "$al_d"
awk -v e="$e2e" -v d="$direct" -v lo="$lo" -v hi="$hi" 'BEGIN { printf "end to end/direct %.3f (rounds: %.2f-%.2f; bar >= 0.5)\n", d / e, lo, hi }'
awk -v e="$cpu_e" -v d="$cpu_d" 'BEGIN { printf "CPU per notification (whole process): end to end %.0f ns, direct %.0f ns; ratio %.3f (less disturbed by other load than throughput)\n", e, d, d / e }'
echo "access-token fetches per end-to-end run: $fetches(bar: 1)"
