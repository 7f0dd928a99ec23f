#!/usr/bin/env bash
# Mail merge throughput: `buzon send` (release build) on each runtime at several concurrencies,
# next to the Python `mailmerge` tool (PyPI), both sending the same generated CSV through
# Postfix's smtp-sink (speaks SMTP, discards the mail) on loopback, in the same run.
#
#   bench/mailmerge.sh [-r RUNS] [-n ROWS] [-c "1 4 8 16"] [-R "smol mio"] [-F]
#                      [-p PY_ROWS] [-P PY_RUNS] [-V VENV] [-o FILE] [-w WORKDIR]
#
#   -r  runs per buzon configuration (default 5); the table shows medians and the spread
#   -n  CSV rows, i.e. messages per buzon run (default 10000)
#   -c  buzon --concurrency values to try (default "1 4 8 16")
#   -R  buzon runtimes to try (default "smol mio"); -R '' runs Python mailmerge alone
#   -F  also run each runtime with its journal and results file on tmpfs (/dev/shm), where
#       fsync costs nothing (rows "buzon-RT-tmpfs-journal"), to show what the per-row
#       durable journal costs
#   -p  rows for Python mailmerge (default: ROWS; it sends one message per connection, one
#       at a time, so lower this if it is too slow; rates are per second either way);
#       0 skips it (then the table has no ratios)
#   -P  Python mailmerge runs (default: RUNS)
#   -V  virtualenv holding mailmerge (default ${TMPDIR:-/tmp}/buzon-bench-mailmerge-venv;
#       created with `pip install mailmerge` if it has no bin/mailmerge; kept afterwards)
#   -o  also write the markdown table to FILE
#   -w  scratch folder (default: a new folder under ${TMPDIR:-/tmp}); removed at the end.
#       buzon's journal (fsynced once per accepted row) lives there, so its file system
#       matters: the header line of the output names it
#
# Environment: BUZON_BIN (use this binary, skip the build; by default `cargo build --release`
# and the binary wherever cargo puts it, CARGO_TARGET_DIR honoured).
#
# Every run gets a fresh smtp-sink (-c, so it counts the messages it received), a fresh copy
# of the CSV and fresh journal and results paths, so no run skips rows as "already sent".
# The rate is rows divided by the wall time of the whole sending process (start-up, CSV and
# template parsing included, for both tools). A buzon run counts only if buzon exits 0 within
# 600 s, prints "sent ROWS,", its results file has ROWS rows with status `sent`, and the sink
# counted exactly ROWS messages; a Python run only if it printed ROWS ">>> message N sent"
# lines and the sink counted ROWS. Failed runs are reported on stderr (with the folder to look
# at, which is then kept), left out of the medians, and make the script exit 1.
# Configurations take turns within each round, so slow drift of the machine spreads over all.
#
# Needs: postfix (smtp-sink), python3 with venv and pip access (unless -p 0), bc,
# cargo (unless BUZON_BIN). /usr/bin/time (GNU) adds the senders' peak RSS if present.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
runs=5 rows=10000 concs="1 4 8 16" runtimes="smol mio" tmpfs=0 py_rows="" py_runs="" outfile=""
venv=${TMPDIR:-/tmp}/buzon-bench-mailmerge-venv
work=""
usage() { sed -n '2,41p' "${BASH_SOURCE[0]}"; exit 2; }
while getopts "r:n:c:R:Fp:P:V:o:w:h" opt; do
  case $opt in
    r) runs=$OPTARG ;; n) rows=$OPTARG ;; c) concs=$OPTARG ;; R) runtimes=$OPTARG ;;
    F) tmpfs=1 ;; p) py_rows=$OPTARG ;; P) py_runs=$OPTARG ;; V) venv=$OPTARG ;;
    o) outfile=$OPTARG ;; w) work=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
py_rows=${py_rows:-$rows}
py_runs=${py_runs:-$runs}
[ "$py_rows" -le "$rows" ] || { echo "-p $py_rows: at most -n ($rows)" >&2; exit 2; }

for tool in smtp-sink bc python3; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install postfix bc python3-venv; tests/interop.sh installs postfix)" >&2
    exit 2
  }
done
# timed FILE CMD...: runs CMD, writing its peak RSS in KiB to FILE when GNU time is there.
timed() {
  local f=$1
  shift
  if [ -x /usr/bin/time ]; then /usr/bin/time -f %M -o "$f" "$@"; else "$@"; fi
}

if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-mailmerge.XXXXXX")
else
  mkdir -p "$work"
fi
shm=""
if [ "$tmpfs" = 1 ]; then
  [ -d /dev/shm ] || { echo "-F needs /dev/shm" >&2; exit 2; }
  shm=$(mktemp -d /dev/shm/buzon-mailmerge.XXXXXX)
fi
server_pid=""
keep_work=0
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if [ -n "$shm" ]; then rm -rf "$shm"; fi
  if [ "$keep_work" = 1 ]; then
    echo "keeping $work (failed runs are in it)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${BUZON_BIN:-}" ]; then
  buzon=$BUZON_BIN
elif [ -n "$runtimes" ]; then
  buzon=$(buzon_release_bin) # the release build, wherever cargo puts it
fi

if [ "$py_rows" -gt 0 ] && [ ! -x "$venv/bin/mailmerge" ]; then
  echo "creating $venv with mailmerge from PyPI" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q mailmerge >&2
fi
mm_version=""
if [ "$py_rows" -gt 0 ]; then mm_version=$("$venv/bin/mailmerge" --version | awk '{ print $NF }'); fi

port="" # set by start_listener

# The same message for both tools: From, To, Subject, a short body, three columns.
csv=$work/rows.csv
python3 - "$rows" >"$csv" <<'EOF'
import csv, sys
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["email", "name", "number"])
for i in range(1, int(sys.argv[1]) + 1):
    w.writerow([f"user{i}@example.com", f"User Number {i}", i])
EOF
body='
Hi {{ name }},

This is a mail merge throughput test. Your number is {{ number }}.

Regards,
The sender'
printf '%s\n%s\n%s\n%s\n' 'From: Bulk Sender <sender@example.org>' 'To: "{{ name }}" <{{ email }}>' \
  'Subject: Hello {{ name }}, your number is {{ number }}' "$body" >"$work/buzon.tmpl"
# mailmerge's own header spelling (it parses the template with Python's email package).
printf '%s\n%s\n%s\n%s\n' 'TO: "{{ name }}" <{{ email }}>' \
  'SUBJECT: Hello {{ name }}, your number is {{ number }}' 'FROM: Bulk Sender <sender@example.org>' \
  "$body" >"$work/mailmerge_template.txt"
head -n $((py_rows + 1)) "$csv" >"$work/mailmerge_database.csv"

results=$work/results.tsv # config concurrency run msgs_per_sec peak_rss_kib ok
: >"$results"
sink_as=()
[ "$(id -u)" = 0 ] && sink_as=(-u nobody) # smtp-sink refuses to run as root

# start_sink DIR: a fresh smtp-sink counting what it receives (-c) into DIR/sink.log.
start_sink() {
  start_listener "$1/sink.log" smtp-sink "${sink_as[@]}" -c 127.0.0.1:@PORT@ 256 && return
  echo "smtp-sink did not start: $(tail -n 3 "$1/sink.log")" >&2
  return 1
}

# sink_count DIR: messages the sink received (the last "mesg=N" of its -c counters).
sink_count() {
  tr '\r' '\n' <"$1/sink.log" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1 | grep . || echo 0
}

fstype() { findmnt -no FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; }

elapsed_rate() { printf '%.1f\n' "$(echo "$1 / ($3 - $2)" | bc -l)"; }

fail_run() {
  echo "FAIL $1: $2 (see $3)" >&2
  keep_work=1
}

# bench_buzon RUNTIME CONCURRENCY RUN [tmpfs]
bench_buzon() {
  local rt=$1 c=$2 i=$3 name=buzon-$1
  [ $# -gt 3 ] && name=$name-tmpfs-journal
  local dir=$work/$name-c$c-r$i jdir rc=0 ok=1 t0 t1 rate hwm=0 got sent
  mkdir -p "$dir"
  jdir=$dir
  if [ $# -gt 3 ]; then jdir=$shm/$name-c$c-r$i && mkdir -p "$jdir"; fi
  cp "$csv" "$dir/rows.csv"
  if ! start_sink "$dir"; then
    printf '%s\t%s\t%s\t-\t-\t0\n' "$name" "$c" "$i" >>"$results"
    return
  fi
  t0=$(date +%s.%N)
  timed "$dir/rss" timeout 600 "$buzon" send --csv "$dir/rows.csv" \
    --template "$work/buzon.tmpl" --server "127.0.0.1:$port" --no-dry-run --concurrency "$c" \
    --runtime "$rt" --journal "$jdir/journal" --results "$jdir/results.csv" --helo bench.test \
    </dev/null >"$dir/send.out" 2>"$dir/send.err" || rc=$?
  t1=$(date +%s.%N)
  stop_server
  rate=$(elapsed_rate "$rows" "$t0" "$t1")
  [ -s "$dir/rss" ] && hwm=$(tail -n 1 "$dir/rss")
  got=$(sink_count "$dir")
  sent=$(grep -c '^[0-9]*,[^,]*,sent,' "$jdir/results.csv" 2>/dev/null || true)
  local what="$name -c $c run $i"
  if [ "$rc" = 124 ]; then
    fail_run "$what" "still running after 600 s (killed)" "$dir"
    ok=0
  elif [ "$rc" != 0 ]; then
    fail_run "$what" "exit status $rc: $(tail -n 3 "$dir/send.err" "$dir/send.out" | tr '\n' ' ')" "$dir"
    ok=0
  fi
  if ! grep -q "^sent $rows," "$dir/send.out"; then
    fail_run "$what" "summary: $(head -n 1 "$dir/send.out")" "$dir"
    ok=0
  fi
  if [ "${sent:-0}" != "$rows" ]; then
    fail_run "$what" "results file has ${sent:-0} rows 'sent', expected $rows" "$dir"
    ok=0
  fi
  if [ "$got" != "$rows" ]; then
    fail_run "$what" "smtp-sink counted $got messages, expected $rows" "$dir"
    ok=0
  fi
  if [ $# -gt 3 ] && [ "$ok" = 1 ]; then rm -rf "$jdir"; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$c" "$i" "$rate" "$hwm" "$ok" >>"$results"
  echo "$what: $rate msgs/s, sink got $got/$rows, results sent ${sent:-0}, peak RSS ${hwm} KiB" >&2
}

# bench_python RUN: Python mailmerge over the first PY_ROWS rows.
bench_python() {
  local i=$1
  local dir=$work/python-mailmerge-r$i rc=0 ok=1 t0 t1 rate hwm=0 got sent
  mkdir -p "$dir"
  if ! start_sink "$dir"; then
    printf 'python-mailmerge\t1\t%s\t-\t-\t0\n' "$i" >>"$results"
    return
  fi
  # Plain SMTP, no authentication, no rate limit (as for its earlier reference figure,
  # docs/benchmarks.md).
  printf '[smtp_server]\nhost = 127.0.0.1\nport = %s\nratelimit = 0\n' "$port" >"$dir/server.conf"
  t0=$(date +%s.%N)
  (cd "$dir" && timed "$dir/rss" timeout 1800 "$venv/bin/mailmerge" \
    --no-dry-run --no-limit --output-format text --template "$work/mailmerge_template.txt" \
    --database "$work/mailmerge_database.csv" --config "$dir/server.conf" \
    </dev/null >"$dir/out.txt" 2>"$dir/err.txt") || rc=$?
  t1=$(date +%s.%N)
  stop_server
  rate=$(elapsed_rate "$py_rows" "$t0" "$t1")
  [ -s "$dir/rss" ] && hwm=$(tail -n 1 "$dir/rss")
  got=$(sink_count "$dir")
  sent=$(grep -c '^>>> message [0-9]* sent$' "$dir/out.txt" || true)
  local what="python mailmerge run $i"
  if [ "$rc" != 0 ]; then
    fail_run "$what" "exit status $rc: $(tail -n 3 "$dir/err.txt" | tr '\n' ' ')" "$dir"
    ok=0
  fi
  if [ "$sent" != "$py_rows" ] || [ "$got" != "$py_rows" ]; then
    fail_run "$what" "printed $sent 'sent' lines, smtp-sink counted $got, expected $py_rows" "$dir"
    ok=0
  fi
  [ "$ok" = 1 ] && rm -f "$dir/out.txt" # every message in full: as large as the mail sent
  printf 'python-mailmerge\t1\t%s\t%s\t%s\t%s\n' "$i" "$rate" "$hwm" "$ok" >>"$results"
  echo "$what: $rate msgs/s ($py_rows rows), sink got $got/$py_rows, peak RSS ${hwm} KiB" >&2
}

# table TSV: markdown, medians per configuration, ratio to Python mailmerge's median.
table() {
  awk -F'\t' -v target_c=8 "$AWK_MEDIAN"'
    {
      key = $1 "\t" $2
      if (!(key in total)) order[++keys] = key
      total[key]++
      if ($6 == 1) { k = ++good[key]; rate[key, k] = $4; rss[key, k] = $5 }
    }
    END {
      for (o = 1; o <= keys; o++) {
        key = order[o]; n = good[key] + 0
        if (n == 0) continue
        for (i = 1; i <= n; i++) { r[i] = rate[key, i]; m[i] = rss[key, i] }
        med[key] = median(r, n); medrss[key] = median(m, n)
        lo[key] = hi[key] = r[1]
        for (i = 1; i <= n; i++) { if (r[i] < lo[key]) lo[key] = r[i]; if (r[i] > hi[key]) hi[key] = r[i] }
      }
      py = med["python-mailmerge\t1"] + 0
      print "| sender | concurrency | msgs/s (median) | min - max | x Python mailmerge | peak RSS (median) | good runs |"
      print "|---|---:|---:|---:|---:|---:|---:|"
      for (o = 1; o <= keys; o++) {
        key = order[o]; split(key, kv, "\t")
        if (!(key in med)) { printf "| %s | %s | failed | - | - | - | 0/%d |\n", kv[1], kv[2], total[key]; continue }
        ratio = py > 0 ? sprintf("%.1fx", med[key] / py) : "-"
        mem = medrss[key] > 0 ? sprintf("%.1f MiB", medrss[key] / 1024) : "-"
        printf "| %s | %s | %.0f | %.0f - %.0f | %s | %s | %d/%d |\n", kv[1], kv[2], med[key], lo[key], hi[key], ratio, mem, good[key], total[key]
      }
      if (py > 0) {
        line = ""
        for (o = 1; o <= keys; o++) {
          key = order[o]; split(key, kv, "\t")
          if (kv[2] != target_c || kv[1] !~ /^buzon-(smol|mio)$/ || !(key in med)) continue
          x = med[key] / py
          line = line sprintf("%s%s %.1fx (%s)", line == "" ? "" : ", ", kv[1], x, x >= 20 ? "met" : "not met")
        }
        if (line != "") print "\nTarget: buzon send >= 20x Python mailmerge at concurrency " target_c ": " line
      }
    }' <(sort -t$'\t' -k1,1 -k2,2n "$1" | awk -F'\t' '$1 == "python-mailmerge"' ;
         sort -t$'\t' -k2,2n -k1,1 "$1" | awk -F'\t' '$1 != "python-mailmerge"')
}

echo "mailmerge bench: $runs rounds; buzon {${runtimes:-none}}$([ "$tmpfs" = 1 ] && echo ' (+ tmpfs journal)')" \
  "x concurrency {$concs}, $rows rows; Python mailmerge ${mm_version:-skipped}: $py_runs runs of $py_rows rows;" \
  "scratch $work ($(fstype "$work"))" >&2
rounds=$runs
if [ "$py_rows" -gt 0 ] && [ "$py_runs" -gt "$rounds" ]; then rounds=$py_runs; fi
for i in $(seq 1 "$rounds"); do
  if [ "$i" -le "$runs" ]; then
    for c in $concs; do
      for rt in $runtimes; do
        bench_buzon "$rt" "$c" "$i"
        if [ "$tmpfs" = 1 ]; then bench_buzon "$rt" "$c" "$i" tmpfs; fi
      done
    done
  fi
  if [ "$py_rows" -gt 0 ] && [ "$i" -le "$py_runs" ]; then bench_python "$i"; fi
done

out=$(table "$results")
{
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), $(uname -r)"
  echo "to smtp-sink on loopback; buzon send: $rows rows, $runs runs each, journal on $(fstype "$work")$([ "$tmpfs" = 1 ] && echo ' (tmpfs in -tmpfs-journal rows)');" \
    "Python mailmerge ${mm_version:-(skipped)}: $py_rows rows, $py_runs runs, one connection per message; msgs/s, median (min - max)"
  echo
  echo "$out"
} | tee ${outfile:+"$outfile"}
! grep -qP '\t0$' "$results"
