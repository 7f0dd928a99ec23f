#!/usr/bin/env bash
# End-to-end SMTP throughput: Postfix's smtp-source against `buzon serve` (release build) over
# each runtime, with Postfix's smtp-sink (stores nothing) as the upper bound, on loopback.
#
#   bench/smtp-e2e.sh [-r RUNS] [-m MESSAGES] [-l BYTES] [-s "8 64"] [-R "smol mio"]
#                     [-k] [-n] [-N] [-c SECONDS] [-o FILE] [-w WORKDIR]
#
#   -r  runs per configuration (default 5); the table shows medians and the spread
#   -m  messages per run (default 5000)       -l  body bytes per message (default 2048)
#   -s  parallel sessions to try (default "8 64")
#   -R  buzon runtimes to try (default "smol mio"); add "-R ''" to run smtp-sink alone
#   -k  keep connections open between messages (smtp-source -d); default is one connection
#       per message, as real MTAs mostly do
#   -n  no smtp-sink baseline                 -o  also write the markdown table to FILE
#   -N  also run each runtime with --unsafe-no-fsync (rows "buzon-RT-nofsync"), to show
#       what durability costs
#   -w  scratch folder (default: a new folder under ${TMPDIR:-/tmp}); removed at the end
#   -c  cool-down: if this script deleted its files less than SECONDS ago (default 360),
#       wait until that long has passed before measuring; 0 disables. On ext4 without a
#       journal, creating inodes is several times slower for about six minutes after many
#       files were deleted (the kernel skips recently freed inodes, see docs/benchmarks.md)
#
# Environment: BUZON_BIN (use this binary, skip the build; by default `cargo build --release`
# and the binary wherever cargo puts it, CARGO_TARGET_DIR honoured), BUZON_LOG (server log
# filter; the default "info" logs one line per message, as in production).
#
# Every run gets a fresh storage folder and a fresh server; fsync stays on (the default).
# Folders are deleted only after the last run: deleting big Maildirs slows file creation
# for minutes afterwards (see -c). The configurations take turns within each round so
# that slow drift of the machine spreads over all of them. After each buzon run the files
# in <storage>/localhost/rcpt/new must number exactly MESSAGES (buzon says 250 only once a
# message is on disk, so no waiting), and the server must stop on SIGTERM with status 0.
# The exit status is 1 if any run failed these checks.
#
# Needs: postfix (smtp-source, smtp-sink), bc, cargo (unless BUZON_BIN).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
runs=5 count=5000 size=2048 sessions="8 64" runtimes="smol mio" keep=() sink=1 outfile="" nofsync=0 cooldown=360
work=""
usage() { sed -n '2,35p' "${BASH_SOURCE[0]}"; exit 2; }
while getopts "r:m:l:s:R:knNc:o:w:h" opt; do
  case $opt in
    r) runs=$OPTARG ;; m) count=$OPTARG ;; l) size=$OPTARG ;; s) sessions=$OPTARG ;;
    R) runtimes=$OPTARG ;; k) keep=(-d) ;; n) sink=0 ;; N) nofsync=1 ;; c) cooldown=$OPTARG ;;
    o) outfile=$OPTARG ;;
    w) work=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

for tool in smtp-source smtp-sink bc; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install postfix bc; tests/interop.sh installs postfix)" >&2
    exit 2
  }
done

if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-e2e.XXXXXX")
else
  mkdir -p "$work"
fi
# When this script last deleted its files (see -c).
stamp=${TMPDIR:-/tmp}/buzon-e2e.last-cleanup
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  echo "removing $work" >&2
  rm -rf "$work"
  date +%s >"$stamp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${BUZON_BIN:-}" ]; then
  buzon=$BUZON_BIN
elif [ -n "$runtimes" ]; then
  buzon=$(buzon_release_bin) # the release build, wherever cargo puts it
fi

port="" stop_rc=0 # set by start_listener and stop_server

results=$work/results.tsv # config sessions run msgs_per_sec peak_rss_kib ok
: >"$results"

# bench_buzon RUNTIME SESSIONS RUN [extra serve flags...]
bench_buzon() {
  local rt=$1 s=$2 i=$3 name=buzon-$1
  shift 3
  [ $# -gt 0 ] && name=$name-nofsync
  local dir=$work/$name-s$s-r$i
  local storage=$dir/mail ok=1 rate=0 hwm=0
  mkdir -p "$dir"
  if ! BUZON_LOG=${BUZON_LOG:-info} start_listener "$dir/server.log" \
    "$buzon" serve --runtime "$rt" --imap off --imaps off --nntp off --nntps off -d localhost -s "$storage" -p @PORT@ --bind 127.0.0.1 \
    --hostname bench.test "$@"; then
    echo "$name did not start:" >&2
    tail -n 5 "$dir/server.log" >&2
    printf '%s\t%s\t%s\t-\t-\t0\n' "$name" "$s" "$i" >>"$results"
    return
  fi
  rate=$(load "$s" "$dir/source.log") || ok=0
  hwm=$(peak_rss "$server_pid")
  local got
  got=$(find "$storage/localhost/rcpt/new" -maxdepth 1 -type f 2>/dev/null | wc -l)
  if [ "$got" != "$count" ]; then
    echo "$name -s $s run $i: $got files in new/, expected $count" >&2
    ok=0
  fi
  stop_server
  if [ "$stop_rc" != 0 ]; then
    echo "$name -s $s run $i: exit status $stop_rc after SIGTERM" >&2
    ok=0
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$s" "$i" "$rate" "$hwm" "$ok" >>"$results"
  echo "$name -s $s run $i: $rate msgs/s, delivered $got/$count, peak RSS ${hwm} KiB" >&2
}

bench_sink() {
  local s=$1 i=$2 ok=1 rate hwm
  local dir=$work/sink-s$s-r$i
  mkdir -p "$dir"
  local as=()
  [ "$(id -u)" = 0 ] && as=(-u nobody) # smtp-sink refuses to run as root
  if ! start_listener "$dir/sink.log" smtp-sink "${as[@]}" 127.0.0.1:@PORT@ 256; then
    echo "smtp-sink did not start" >&2
    printf 'smtp-sink\t%s\t%s\t-\t-\t0\n' "$s" "$i" >>"$results"
    return
  fi
  rate=$(load "$s" "$dir/source.log") || ok=0
  hwm=$(peak_rss "$server_pid")
  stop_server
  printf 'smtp-sink\t%s\t%s\t%s\t%s\t%s\n' "$s" "$i" "$rate" "$hwm" "$ok" >>"$results"
  echo "smtp-sink -s $s run $i: $rate msgs/s" >&2
}

# load SESSIONS LOG: runs smtp-source against $port, prints messages per second.
load() {
  local s=$1 logf=$2 t0 t1 rc=0
  t0=$(date +%s.%N)
  timeout 600 smtp-source "${keep[@]}" -s "$s" -m "$count" -l "$size" \
    -f sender@example.org -t rcpt@localhost "127.0.0.1:$port" >"$logf" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  printf '%.1f\n' "$(echo "$count / ($t1 - $t0)" | bc -l)"
  [ "$rc" = 0 ] || { echo "smtp-source exit status $rc: $(tail -n 3 "$logf")" >&2; return 1; }
}

if [ "$cooldown" -gt 0 ] && [ -f "$stamp" ]; then
  wait_s=$(($(cat "$stamp") + cooldown - $(date +%s)))
  if [ "$wait_s" -gt 0 ]; then
    echo "cool-down: the last run deleted its files recently; waiting ${wait_s}s (-c 0 skips)" >&2
    sleep "$wait_s"
  fi
fi

echo "e2e: $runs runs x {${runtimes:+buzon $runtimes}${sink:+ + smtp-sink}} x sessions {$sessions}," \
  "$count msgs of $size bytes, $([ ${#keep[@]} -gt 0 ] && echo kept connections || echo new connection per message)" >&2
for i in $(seq 1 "$runs"); do
  for s in $sessions; do
    for rt in $runtimes; do
      bench_buzon "$rt" "$s" "$i"
      [ "$nofsync" = 1 ] && bench_buzon "$rt" "$s" "$i" --unsafe-no-fsync
    done
    [ "$sink" = 1 ] && bench_sink "$s" "$i"
  done
done

table=$(summarize "$results")
{
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), $(uname -r)"
  echo "smtp-source -s N -m $count -l $size$([ ${#keep[@]} -gt 0 ] && echo ' -d'), $runs runs each, fsync on$([ "$nofsync" = 1 ] && echo ' (off in -nofsync rows)'); msgs/s, median (min - max)"
  echo
  echo "$table"
} | tee ${outfile:+"$outfile"}
! grep -qP '\t0$' "$results"
