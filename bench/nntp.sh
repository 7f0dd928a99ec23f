#!/usr/bin/env bash
# NNTP notices, measured in one invocation:
#
#   notices   mail in, notice out: Postfix's smtp-source sends NNTP_MSGS (2000) messages of
#             2 KiB over 8 sessions to one user of `buzon serve` (fsync on); the time from the
#             first byte to the last notice on disk gives notices per second, end to end. The
#             same run with the notifier off (--nntp off --nntps off) gives what delivery alone
#             does, so the notifier's cost shows. Both runtimes, NNTP_RUNS (5) interleaved runs.
#   reader    NNTP_CLIENTS (8) readers for NNTP_SECONDS (10) each against one group of 1000
#             notices: GROUP, XOVER of the last 50, ARTICLE, HEAD, STAT, over and over
#             (bench/nntp-load, mix "reader"); and GROUP and STAT only (mix "status": one-line
#             replies, which INN answers in one write). buzon under both runtimes and INN's nnrpd (Debian inn2, started
#             on a free loopback port with its own configuration) holding the same 1000
#             articles, put there by buzon's own feed. Commands per second and latency, medians
#             of NNTP_RUNS interleaved runs.
#
#   bench/nntp.sh                       both parts; markdown on stdout
#   NNTP_PARTS=reader bench/nntp.sh     one of them
#
# Needs root (innd runs as news), smtp-source (package postfix) and inn2; tests/interop.sh
# installs them.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bg_pids=()
# inn_setup, inn_start, inn_stop, inn_ids
# shellcheck source=tests/interop_nntp.sh
source "$root/tests/interop_nntp.sh"

runs=${NNTP_RUNS:-5}
msgs=${NNTP_MSGS:-2000}
clients=${NNTP_CLIENTS:-8}
seconds=${NNTP_SECONDS:-10}
parts=" ${NNTP_PARTS:-notices reader} "
work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-nntp-bench.XXXXXX")
server_pid=""
inn_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
  [ -n "$inn_pid" ] && kill -KILL "$inn_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
chmod 711 "$work"

command -v smtp-source >/dev/null || { echo "smtp-source is needed (apt-get install postfix)" >&2; exit 2; }
[ -x /usr/lib/news/bin/innd ] || { echo "inn2 is needed (see tests/interop.sh)" >&2; exit 2; }
buzon=$(buzon_release_bin)
cargo build --release --quiet --manifest-path "$root/bench/nntp-load/Cargo.toml" \
  --target-dir "$work/load-target"
load=$work/load-target/release/nntp-load
user=alice@localhost pass=bench-pw
group=buzon.mail.localhost.alice

now() { date +%s.%N; }
count_notices() { { find "$1/localhost/alice/buzon-news/articles" -type f -name '[0-9]*' 2>/dev/null || true; } | wc -l; }

# start_buzon RUNTIME STORAGE [flags]: sets $port (SMTP) and $server_pid.
start_buzon() {
  local rt=$1 storage=$2
  shift 2
  start_listener "$work/buzon-$rt.log" "$buzon" serve --runtime "$rt" -d localhost -s "$storage" \
    -p @PORT@ --no-submission --imap off --imaps off --notice-keep 1000000 \
    --allow-plaintext-auth-on-loopback "$@"
}

if [[ $parts == *" notices "* ]]; then
  results=$work/notices.tsv
  : >"$results"
  for r in $(seq 1 "$runs"); do
    for rt in smol mio; do
      for notifier in on off; do
        storage=$work/n-$rt-$notifier-$r
        echo "$pass" | "$buzon" user add "$user" -s "$storage" >/dev/null
        if [ $notifier = on ]; then
          start_buzon "$rt" "$storage" --nntp "$(free_port)" --nntps off
        else
          start_buzon "$rt" "$storage" --nntp off --nntps off
        fi
        t0=$(now)
        smtp-source -s 8 -m "$msgs" -l 2048 -f a@localhost -t "$user" "127.0.0.1:$port" \
          >"$work/source.log" 2>&1
        t1=$(now)
        t2=$t1
        if [ $notifier = on ]; then
          for _ in $(seq 1 6000); do
            [ "$(count_notices "$storage")" -ge "$msgs" ] && break
            sleep 0.02
          done
          t2=$(now)
        fi
        stored=$(find "$storage/localhost/alice/new" "$storage/localhost/alice/cur" -type f | wc -l)
        notices=$(count_notices "$storage")
        stop_server
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rt" "$notifier" \
          "$(echo "$msgs $t0 $t1" | awk '{ printf "%.0f", $1 / ($3 - $2) }')" \
          "$(echo "$msgs $t0 $t2" | awk '{ printf "%.0f", $1 / ($3 - $2) }')" \
          "$stored" "$notices" >>"$results"
        rm -rf "$storage"
      done
    done
  done
  echo "### Notices end to end ($msgs messages of 2 KiB, 8 sessions, fsync on, $runs runs)"
  echo
  sort "$results" | awk -F'\t' "$AWK_MEDIAN"'
    { k = $1 "\t" $2; if (!(k in n)) order[++keys] = k; i = ++n[k]; smtp[k, i] = $3; note[k, i] = $4
      if ($5 != '"$msgs"' || ($2 == "on" && $6 != '"$msgs"')) bad[k]++ }
    END {
      print "| runtime | notifier | mail stored/s (median) | notices/s end to end (median) | runs with a count wrong |"
      print "|---|---|---:|---:|---:|"
      for (o = 1; o <= keys; o++) { k = order[o]; split(k, kv, "\t")
        for (i = 1; i <= n[k]; i++) { a[i] = smtp[k, i]; b[i] = note[k, i] }
        printf "| %s | %s | %.0f | %s | %d |\n", kv[1], kv[2], median(a, n[k]), kv[2] == "on" ? sprintf("%.0f", median(b, n[k])) : "-", bad[k] + 0 }
    }'
  echo
fi

if [[ $parts == *" reader "* ]]; then
  # One storage with 1000 notices, fed to INN as it is made: both hold the same articles.
  inn_dir=$work/inn
  inn_port=$(free_port)
  inn_setup "$inn_dir" "$inn_port" >"$work/inn-setup.log" 2>&1
  inn_start "$inn_dir" "$inn_port"
  storage=$work/r
  echo "$pass" | "$buzon" user add "$user" -s "$storage" >/dev/null
  BUZON_NOTIFY_NNTP_PASSWORD=s3cret start_buzon smol "$storage" --nntp "$(free_port)" --nntps off \
    --notify-nntp "nntp://feeder@127.0.0.1:$inn_port/local.notices"
  smtp-source -s 8 -m 1000 -l 2048 -f a@localhost -t "$user" "127.0.0.1:$port" >"$work/source.log" 2>&1
  for _ in $(seq 1 3000); do
    [ "$(find "$storage/.buzon-feed/queue" -type f ! -name '.*' | wc -l)" = 0 ] &&
      [ "$(count_notices "$storage")" -ge 1000 ] && break
    sleep 0.05
  done
  stop_server
  in_inn=$(inn_ids "$inn_port" | grep -c . || true)
  [ "$in_inn" = 1000 ] || { echo "INN holds $in_inn articles, not 1000" >&2; tail -n 20 "$work/buzon-smol.log" >&2; exit 1; }
  results=$work/reader.tsv
  : >"$results"
  for r in $(seq 1 "$runs"); do
    for mix in reader status; do
      for name in buzon-smol buzon-mio inn; do
        case $name in
          buzon-*)
            nntp_port=$(free_port)
            start_buzon "${name#buzon-}" "$storage" --nntp "$nntp_port" --nntps off
            out=$("$load" read "127.0.0.1:$nntp_port" "$user" "$pass" "$group" "$clients" "$seconds" "$mix")
            stop_server
            ;;
          inn)
            out=$("$load" read "127.0.0.1:$inn_port" feeder s3cret local.notices "$clients" "$seconds" "$mix")
            ;;
        esac
        field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
        printf '%s\t%s\t%s\t%s\t%s\n' "$name ($mix)" "$(field cmds_per_s)" "$(field p50_ms)" \
          "$(field p99_ms)" "$(field errors)" >>"$results"
      done
    done
  done
  inn_stop
  echo "### Reader commands ($clients readers, ${seconds} s each, one group of 1000 notices, $runs runs)"
  echo
  awk -F'\t' "$AWK_MEDIAN"'
    { k = $1; if (!(k in n)) order[++keys] = k; i = ++n[k]; c[k, i] = $2; p5[k, i] = $3; p9[k, i] = $4; e[k] += $5 }
    END {
      print "| server | commands/s (median) | p50 ms | p99 ms | errors |"
      print "|---|---:|---:|---:|---:|"
      for (o = 1; o <= keys; o++) { k = order[o]
        for (i = 1; i <= n[k]; i++) { a[i] = c[k, i]; b[i] = p5[k, i]; d[i] = p9[k, i] }
        printf "| %s | %.0f | %.3f | %.3f | %d |\n", k, median(a, n[k]), median(b, n[k]), median(d, n[k]), e[k] }
    }' "$results"
  echo
fi
