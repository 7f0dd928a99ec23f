#!/usr/bin/env bash
# Abusive clients against `buzon serve` (release build) on loopback, under each runtime
# (issue 4). Each scenario gets a fresh server and storage folder; bench/abuse.py does the
# client side and samples the server's VmRSS from /proc.
#
#   bench/abuse.sh [-S "slow nonreading longline endless idle"] [-R "smol mio"]
#                  [-n IDLE_SESSIONS] [-o FILE] [-w WORKDIR]
#
#   slow        500 connections each sending one byte every 2-3 s (EHLO split byte by byte)
#               for 20 s, while smtplib delivers 4 messages: latency < 1 s, file in new/
#   nonreading  50 clients pipelining NOOP / MAIL+RCPT x99+RSET / EHLO floods for 30 s and
#               never reading (4 KiB receive buffers): VmRSS must not rise by > 4 MiB in
#               the last third of the run and stay within 4 x 50 x (256 + 64) KiB of the
#               start (WARN above 1 x); 2 normal deliveries meanwhile must succeed
#   longline    100 MiB without LF: expect 500 5.5.2 + 421 4.7.0 (the server decides at
#               octet 8193; the client's count includes kernel buffers) and an EOF; RSS flat.
#               The client then keeps sending, as one that ignores the close would, until the
#               server resets it (must happen within 10 s): WARN if it drained > 100 MiB
#   endless     DATA (998-octet lines) streamed forever with --max-message-size 1048576:
#               expect 552 5.3.4 + 421 4.7.0 (at octet 2 MiB + 1), nothing stored, RSS flat;
#               then as longline
#   idle        IDLE_SESSIONS (default 10000) sessions after EHLO, from 127.0.0.2-9; reports
#               RSS per idle session (fails above 16 KiB under mio; smol is reported only)
#
#   -S  scenarios to run, -R runtimes, -n the idle scenario's session count
#   -o  also write the results table (markdown) to FILE
#   -w  scratch folder (default: a new folder under ${TMPDIR:-/tmp}); removed at the end
#       unless given
#
# Environment: BUZON_BIN (use this binary; default the release build in cargo's target
# directory, CARGO_TARGET_DIR honoured, built if missing). BUZON_BASE_BIN=PATH: compare with
# that binary (an earlier build) in the same invocation: every scenario and runtime runs with
# both, one right after the other (which goes first alternates from pair to pair), and the
# table puts both results side by side, with each scenario's key figure (slow: the probes'
# worst latency; nonreading: RSS growth per client; longline, endless: RSS growth; idle: RSS
# per idle session) as "buzon / base".
# Timing numbers are only as good as the machine is quiet. Exit status 1 if any scenario failed
# with the buzon binary (the base binary's failures are reported, and do not count).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

scenarios="slow nonreading longline endless idle" runtimes="smol mio" idle_n=10000 outfile="" work=""
usage() { sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}"; exit 2; }
while getopts "S:R:n:o:w:h" opt; do
  case $opt in
    S) scenarios=$OPTARG ;; R) runtimes=$OPTARG ;; n) idle_n=$OPTARG ;; o) outfile=$OPTARG ;;
    w) work=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

if [ -n "${BUZON_BIN:-}" ]; then
  bin=$BUZON_BIN
else
  bin=$(buzon_release_bin --if-missing) # the release build, wherever cargo puts it
fi
[ -x "$bin" ] || { echo "no buzon binary at $bin" >&2; exit 2; }
base_bin=${BUZON_BASE_BIN:-}
[ -z "$base_bin" ] || [ -x "$base_bin" ] ||
  { echo "BUZON_BASE_BIN: no executable at $base_bin" >&2; exit 2; }

# IDLE_SESSIONS client sockets in one process, as many in the server (each its own limit).
want_fds=$((idle_n + 1000))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_fds" ]; then
  ulimit -Hn "$want_fds" 2>/dev/null || echo "warning: hard fd limit $hard < $want_fds" >&2
fi
ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

own_work=0
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-abuse.XXXXXX")
  own_work=1
fi
mkdir -p "$work"
server_pid=""
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  stop_server || true
  if [ "$own_work" = 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results="$work/results.tsv"
: >"$results"
failed=0

run_one() { # scenario runtime buzon|base
  local sc=$1 rt=$2 which=$3 extra=() args=() dir storage log rc=0 t0 t1 exe=$bin
  [ "$which" = base ] && exe=$base_bin
  dir="$work/$sc-$rt"
  [ "$which" = base ] && dir="$dir-base"
  storage="$dir/mail"
  log="$dir/server.log"
  mkdir -p "$storage"
  case $sc in
    slow) extra=(--max-connections 2000 --max-connections-per-ip 2000) ;;
    nonreading) extra=(--max-connections 2000 --max-connections-per-ip 2000) ;;
    endless) extra=(--max-message-size 1048576) ;;
    idle)
      extra=(--max-connections $((idle_n * 2)) --max-connections-per-ip $((idle_n * 2)))
      args=(--count "$idle_n")
      if [ "$rt" = mio ]; then args+=(--max-kib 16); fi
      ;;
  esac
  if ! BUZON_LOG=${BUZON_LOG:-warn} start_listener "$log" "$exe" serve --runtime "$rt" --imap off --imaps off --nntp off --nntps off \
    -s "$storage" -p @PORT@ --hostname abuse.test "${extra[@]}"; then
    echo "== $sc / $rt / $which: server did not start" >&2
    cat "$log" >&2
    printf '%s\t%s\t%s\tFAIL\tserver did not start\t-\n' "$sc" "$rt" "$which" >>"$results"
    [ "$which" = base ] || failed=1
    return
  fi
  echo "== $sc / $rt$([ -z "$base_bin" ] || echo " / $which") (pid $server_pid, port $port)"
  t0=$(date +%s.%N)
  timeout 180 python3 "$here/abuse.py" "$sc" --port "$port" --pid "$server_pid" \
    --storage "$storage" "${args[@]}" >"$work/out" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  sed 's/^/   /' "$work/out"
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "   server died; log tail:"
    tail -20 "$log" | sed 's/^/   /'
    rc=1
  fi
  stop_server
  if [ "$stop_rc" != 0 ]; then
    echo "   server exited $stop_rc on SIGTERM"
    rc=1
  fi
  local verdict=PASS numbers
  if [ "$rc" != 0 ]; then
    verdict=FAIL
    [ "$which" = base ] || failed=1
  fi
  if grep -q '^warning=' "$work/out"; then verdict="$verdict, WARN"; fi
  numbers=$(summary "$sc")
  printf '%s\t%s\t%s\t%s\t%s (%.0f s)\t%s\n' "$sc" "$rt" "$which" "$verdict" "$numbers" \
    "$(echo "$t1 - $t0" | bc -l)" "$(key_figure "$sc")" >>"$results"
  echo "   => $verdict"
}

kv() { sed -n "s/^$1=//p" "$work/out" | head -1; }

summary() {
  case $1 in
    slow) echo "probe latency max $(kv probe_max_latency_s) s ($(kv probe_latencies_s)); $(kv slow_greeted)/500 greeted, $(kv slow_closed_by_server) dropped; $(kv probe_delivered)/4 delivered" ;;
    nonreading) echo "RSS $(kv rss_baseline_kib) -> peak $(kv rss_peak_kib) KiB (+$(kv rss_growth_kib) = $(kv rss_growth_per_client_kib)/client; middle/last third max $(kv rss_middle_third_max_kib)/$(kv rss_last_third_max_kib)); $(( $(kv bytes_pushed_by_clients) / 1048576 )) MiB pushed; probes $(kv probe_latencies_s) s" ;;
    longline) echo "500 after $(kv sent_when_500_kib) KiB, 421 after $(kv sent_when_421_kib) KiB; cut: $(kv connection_cut); RSS +$(kv rss_growth_kib) KiB" ;;
    endless) echo "552 after $(kv sent_when_552_kib) KiB, 421 after $(kv sent_when_421_kib) KiB; cut: $(kv connection_cut); stored $(kv files_stored_for_endless); RSS +$(kv rss_growth_kib) KiB" ;;
    idle) echo "$(kv idle_sessions_open) open; RSS $(kv rss_before_kib) -> $(kv rss_after_kib) KiB = $(kv kib_per_idle_session) KiB/session; probe $(kv probe_latency_s) s" ;;
  esac
}

# The one figure per scenario that the side-by-side table compares (lower is better in each).
key_figure() {
  case $1 in
    slow) echo "$(kv probe_max_latency_s) s" ;;
    nonreading) echo "$(kv rss_growth_per_client_kib) KiB/client" ;;
    longline | endless) echo "+$(kv rss_growth_kib) KiB" ;;
    idle) echo "$(kv kib_per_idle_session) KiB/session" ;;
  esac
}

turn=0
for sc in $scenarios; do
  for rt in $runtimes; do
    if [ -z "$base_bin" ]; then
      run_one "$sc" "$rt" buzon
    elif [ $((turn % 2)) = 0 ]; then
      run_one "$sc" "$rt" base
      run_one "$sc" "$rt" buzon
    else
      run_one "$sc" "$rt" buzon
      run_one "$sc" "$rt" base
    fi
    turn=$((turn + 1))
  done
done

table() {
  if [ -z "$base_bin" ]; then
    echo "| scenario | runtime | result | numbers |"
    echo "|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $4, $5 }' "$results"
    return
  fi
  echo "buzon: $bin; base: $base_bin"
  echo
  echo "| scenario | runtime | buzon | base | key figure, buzon / base | buzon numbers | base numbers |"
  echo "|---|---|---|---|---|---|---|"
  awk -F'\t' '
    { k = $1 "\t" $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      verdict[k, $3] = $4; numbers[k, $3] = $5; key[k, $3] = $6 }
    function get(a, k, w) { return ((k, w) in a) ? a[k, w] : "-" }
    # "5.9 KiB/session" and "7.3 KiB/session" -> "5.9 / 7.3 KiB/session"
    function pair(x, y,   ux, uy) {
      ux = index(x, " ") ? substr(x, index(x, " ") + 1) : ""
      uy = index(y, " ") ? substr(y, index(y, " ") + 1) : ""
      if (ux != "" && ux == uy) return substr(x, 1, index(x, " ") - 1) " / " substr(y, 1, index(y, " ") - 1) " " ux
      return x " / " y
    }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, kv, "\t")
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", kv[1], kv[2],
          get(verdict, k, "buzon"), get(verdict, k, "base"), pair(get(key, k, "buzon"), get(key, k, "base")),
          get(numbers, k, "buzon"), get(numbers, k, "base")
      }
    }' "$results"
}
echo
table
if [ -n "$outfile" ]; then table >"$outfile"; fi
exit "$failed"
