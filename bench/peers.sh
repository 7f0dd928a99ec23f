#!/usr/bin/env bash
# buzon side by side with other SMTP servers, in one command, on loopback, with Postfix's
# smtp-source as the load (one new connection per message unless -k):
#
#   sink          Postfix's smtp-sink: speaks SMTP, stores nothing (the upper bound)
#   postfix       a private, full Postfix instance (own config, queue and log in the scratch
#                 folder; no DNS, no relaying) delivering with virtual(8) into Maildir; it
#                 fsyncs its queue file and the delivered file, as any install does
#   twisted       bench/twisted_maildir.py: Twisted's SMTP server appending to Maildir with
#                 twisted.mail.maildir (Twisted calls no fsync: NOT durable)
#   mailin        the Rust peer in the repository's sibling folder ../shared/peers/mailin-maildir
#                 (the mailin-embedded crate, blocking I/O on a pool of 8 threads, a handler
#                 that fsyncs the file in tmp/ and new/ after the rename), built with
#                 `cargo build --release --locked` into BASE/mailin-target (again only when its
#                 sources are newer than the binary); skipped with a note if the folder is absent
#   buzon-smol    `buzon serve --runtime smol` (release build, fsync on, the default)
#   buzon-mio     `buzon serve --runtime mio`
#   buzon-smol-permsg, buzon-mio-permsg   the same with --commit per-message (each message
#                 its own fdatasync and new/ fsync, as before group commit; not run unless named)
#   buzon-smol-nofsync, buzon-mio-nofsync   the same with --unsafe-no-fsync (not run unless
#                 named with -S): what durability costs buzon, next to Twisted, which also
#                 does not fsync
#   base-smol, base-mio (and base-smol-nofsync, base-mio-nofsync)   the same as buzon-*, run
#                 with the binary BUZON_BASE_BIN names (an earlier build, to check for
#                 regressions); base-smol and base-mio join the default list when it is set.
#                 In every round each base-X runs right next to buzon-X, base first in odd
#                 rounds and second in even ones, so the machine's noise hits both alike
#
#   bench/peers.sh [-r RUNS] [-s "1 8 32"] [-l "2048 102400"] [-m SMALL] [-M BIG]
#                  [-S "sink postfix twisted mailin buzon-smol buzon-mio"] [-k] [-I]
#                  [-c SECONDS] [-T SECONDS] [-o FILE] [-p SVG] [-b BASE] [-K]
#
#   -r  runs per configuration (default 3); tables give medians and the spread
#   -s  parallel smtp-source sessions (default "1 8 32")
#   -l  message body sizes in bytes (default "2048 102400")
#   -m  messages per run for sizes up to 16 KiB (default 2000)
#   -M  messages per run for larger sizes (default 600)
#   -S  servers to run (default "sink postfix twisted mailin buzon-smol buzon-mio", with
#       BUZON_BASE_BIN "sink postfix twisted mailin base-smol buzon-smol base-mio buzon-mio")
#   -k  keep each session's connection open between messages (smtp-source -d)
#   -I  interleave Postfix with the others in every round; by default its runs come after
#       all the others' (see below)
#   -c  cool-down: if a bench script deleted its files less than SECONDS ago (default 360),
#       wait until that long has passed before measuring; 0 disables (docs/benchmarks.md,
#       "Noise": ext4 without a journal creates files slowly for minutes after deletions)
#   -T  seconds to wait for a queueing server's messages to reach new/ (default 300)
#   -o  also write the markdown tables to FILE
#   -p  also draw the rates as an SVG bar chart into SVG (bench/plot_peers.py)
#   -K  keep the scratch folder instead of deleting it at the end (back-to-back experiments
#       without the slowdown that deletions cause; remove it yourself, then wait six minutes)
#   -b  base folder (default ${TMPDIR:-/tmp}/buzon-bench-peers): holds the Python venv with
#       Twisted and mailin's cargo target folder (both kept between invocations) and each
#       invocation's scratch folder (removed at the end)
#
# The defaults take about ten minutes on two cores, 16 with the base-* runs. For steadier
# medians: -r 5 -m 5000.
# Environment: BUZON_BIN (use this binary, skip the build; by default `cargo build --release`
# and the binary wherever cargo puts it, CARGO_TARGET_DIR honoured), BUZON_BASE_BIN (the
# binary of the base-* servers, e.g. a release build of the previous commit), MAILIN_DIR (the
# mailin peer's crate, default ../shared/peers/mailin-maildir next to the repository),
# BUZON_LOG (default "info": one log line per message, as in production).
#
# Fairness and checks:
# - every run gets a fresh server and a fresh, empty Maildir folder, and the same
#   smtp-source command (-s N -m COUNT -l SIZE, sender@example.org -> rcpt@example.com);
#   every storing server writes to the same disk (the scratch folder); Postfix's queue is
#   there too
# - the rate is COUNT / (time from starting smtp-source until COUNT files are in the
#   mailbox's new/): Postfix answers 250 once the message is in its queue and delivers
#   later, so the clock runs until delivery ends (buzon and Twisted answer 250 only after
#   the file is in new/; smtp-sink stores nothing and stops the clock when smtp-source
#   ends). A run counts only if smtp-source exits 0 and new/ holds exactly COUNT files
#   (within -T seconds), and for buzon and base only if it also exits 0 on SIGTERM
# - CPU per message: utime+stime (+cutime+cstime, which collects children that exited)
#   from /proc/PID/stat of the server process and all its descendants (for Postfix: the
#   master and every smtpd, cleanup, qmgr, trivial-rewrite, virtual... it runs), read just
#   after the server started and again when the run ended, divided by COUNT. The load
#   generator's CPU is not included. Clock-tick resolution (10 ms) over >= 1 s of CPU.
# - peak RSS: VmHWM of the server process when the run ended; for Postfix the SUM over the
#   processes alive then (shared pages counted in each: an upper bound)
# - Postfix deletes its queue file after each delivery. On ext4 without a journal, recent
#   deletions slow down later file creation for up to six minutes (docs/benchmarks.md), so
#   by default Postfix runs after every other server has finished and cannot slow them down
#   (it still slows itself, as it would in steady state on such a file system). -I
#   interleaves it instead. Nobody else deletes anything until the end.
#
# Needs root for Postfix (private instance) and installs what is missing: postfix and bc
# (apt-get, with "No configuration" preseeded), python3-venv, Twisted (pip, into
# BASE/venv); cargo unless BUZON_BIN (and for mailin). Exit status 1 if any run failed its
# checks.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
runs=3 sessions="1 8 32" sizes="2048 102400" small=2000 big=600
servers="sink postfix twisted mailin buzon-smol buzon-mio" keep=() interleave=0 cooldown=360
base_buzon=${BUZON_BASE_BIN:-}
[ -z "$base_buzon" ] || servers="sink postfix twisted mailin base-smol buzon-smol base-mio buzon-mio"
drain_timeout=300 outfile="" base=${TMPDIR:-/tmp}/buzon-bench-peers keep_work=0 plotfile=""
usage() { sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}"; exit 2; }
while getopts "r:s:l:m:M:S:kIc:T:o:p:b:Kh" opt; do
  case $opt in
    r) runs=$OPTARG ;; s) sessions=$OPTARG ;; l) sizes=$OPTARG ;; m) small=$OPTARG ;;
    M) big=$OPTARG ;; S) servers=$OPTARG ;; k) keep=(-d) ;; I) interleave=1 ;;
    c) cooldown=$OPTARG ;; T) drain_timeout=$OPTARG ;; o) outfile=$OPTARG ;; b) base=$OPTARG ;;
    K) keep_work=1 ;; p) plotfile=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

has() { [[ " $servers " == *" $1 "* ]]; }
for srv in $servers; do
  case $srv in
    sink | postfix | twisted | mailin | buzon-smol | buzon-mio | buzon-smol-nofsync | buzon-mio-nofsync | \
      buzon-smol-permsg | buzon-mio-permsg) ;;
    base-smol | base-mio | base-smol-nofsync | base-mio-nofsync)
      [ -n "$base_buzon" ] || { echo "$srv needs BUZON_BASE_BIN (see -h)" >&2; exit 2; }
      [ -x "$base_buzon" ] || { echo "BUZON_BASE_BIN: no executable at $base_buzon" >&2; exit 2; }
      ;;
    *) echo "unknown server $srv (see -h)" >&2; exit 2 ;;
  esac
done
is_root() { [ "$(id -u)" = 0 ]; }

# ---- install what is missing -------------------------------------------------------------
apt_install() {
  is_root || { echo "missing $*; run as root or: apt-get install $*" >&2; exit 2; }
  echo "installing $* with apt-get" >&2
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}
if ! command -v smtp-source >/dev/null || ! command -v smtp-sink >/dev/null ||
  ! command -v postfix >/dev/null; then
  apt_install postfix
fi
command -v bc >/dev/null || apt_install bc

if has postfix && ! is_root; then
  echo "not root: a private Postfix instance needs root, leaving Postfix out" >&2
  servers=${servers//postfix/}
fi

py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
venv=$base/venv
if has twisted && ! "$venv/bin/python" -c 'import twisted.mail.smtp' 2>/dev/null; then
  mkdir -p "$base"
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    apt_install python3-venv
    "$py" -m venv "$venv"
  fi
  echo "installing twisted into $venv" >&2
  "$venv/bin/pip" install -q twisted >&2
fi

if [[ " $servers" == *" buzon-"* ]]; then
  if [ -n "${BUZON_BIN:-}" ]; then
    buzon=$BUZON_BIN
  else
    buzon=$(buzon_release_bin) # the release build, wherever cargo puts it
  fi
fi

# The mailin peer: a crate outside the repository, built into the base folder, again only when
# one of its files is newer than the binary (a read-only checkout is fine: --locked, and the
# target folder is ours).
mailin_dir=${MAILIN_DIR:-$root/../shared/peers/mailin-maildir}
mailin_bin=$base/mailin-target/release/mailin-maildir mailin_version=-
if has mailin; then
  if [ ! -f "$mailin_dir/Cargo.toml" ]; then
    echo "mailin: ${MAILIN_DIR:-../shared/peers/mailin-maildir} not found; skipped" >&2
    servers=${servers//mailin/}
  else
    if [ ! -x "$mailin_bin" ] ||
      [ -n "$(find "$mailin_dir" -path "$mailin_dir/target" -prune -o -type f -newer "$mailin_bin" -print -quit)" ]; then
      echo "building the mailin peer from $mailin_dir into $base/mailin-target" >&2
      mkdir -p "$base"
      cargo build --release --locked --manifest-path "$mailin_dir/Cargo.toml" \
        --target-dir "$base/mailin-target" >&2 ||
        { echo "mailin: cargo build failed (above); leave it out with -S" >&2; exit 2; }
    fi
    mailin_version=$(awk '$0 == "name = \"mailin-embedded\"" { getline; gsub(/[^0-9.]/, ""); print; exit }' \
      "$mailin_dir/Cargo.lock" 2>/dev/null || true)
  fi
fi

# ---- scratch folder, cool-down, clean-up -------------------------------------------------
mkdir -p "$base"
work=$(mktemp -d "$base/run.XXXXXX")
chmod 755 "$base" "$work" # virtual(8) delivers as nobody and must reach the Maildirs
stamp=${TMPDIR:-/tmp}/buzon-peers.last-cleanup
failed=0 server_pid="" pf_etc=$work/postfix/etc pf_queue=$work/postfix/queue pf_master=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [ -n "$pf_master" ] && kill -0 "$pf_master" 2>/dev/null; then
    postfix -c "$pf_etc" abort >/dev/null 2>&1 || kill -KILL "$pf_master" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if [ "$failed" = 1 ]; then
    echo "some runs failed: keeping $work for a look (remove it afterwards)" >&2
    return
  fi
  if [ "$keep_work" = 1 ]; then
    echo "keeping $work (-K)" >&2
    return
  fi
  echo "removing $work" >&2
  date +%s >"$stamp" # before and after: a run started meanwhile must wait too
  rm -rf "$work"
  date +%s >"$stamp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$cooldown" -gt 0 ]; then
  last=0
  for f in "${TMPDIR:-/tmp}"/buzon-*.last-cleanup; do
    [ -f "$f" ] && [ "$(cat "$f")" -gt "$last" ] && last=$(cat "$f")
  done
  wait_s=$((last + cooldown - $(date +%s)))
  if [ "$wait_s" -gt 0 ]; then
    echo "cool-down: a bench script deleted its files recently; waiting ${wait_s}s (-c 0 skips)" >&2
    sleep "$wait_s"
  fi
fi

port="" stop_rc=0 # set by start_listener / stop_server
tick=$(getconf CLK_TCK)

# ---- Postfix: one private instance, started afresh for each run ---------------------------
pf_setup() {
  mkdir -p "$pf_etc" "$pf_queue" "$work/postfix/data"
  chmod 755 "$work/postfix" "$pf_queue"
  chown postfix: "$work/postfix/data"
  printf 'rcpt@example.com\texample.com/rcpt/\nprobe@example.com\texample.com/probe/\n' \
    >"$pf_etc/vmailbox"
  cat >"$pf_etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf_queue
data_directory = $work/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
relayhost =
default_transport = error:this benchmark instance sends nothing out
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
append_dot_mydomain = no
biff = no
virtual_mailbox_domains = example.com
virtual_mailbox_base = $work
virtual_mailbox_maps = texthash:$pf_etc/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
maillog_file = $work/postfix/postfix.log
maillog_file_prefixes = $work
EOF
  port=$(free_port)
  pf_master_cf
  postfix -c "$pf_etc" check >&2
}

# writes master.cf listening on $port (Debian's services, chroot off, no pickup of local mail)
pf_master_cf() {
  cat >"$pf_etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
cleanup    unix n - n - 0 cleanup
qmgr       unix n - n 300 1 qmgr
rewrite    unix - - n - - trivial-rewrite
bounce     unix - - n - 0 bounce
defer      unix - - n - 0 bounce
trace      unix - - n - 0 bounce
verify     unix - - n - 1 verify
flush      unix n - n 1000? 0 flush
proxymap   unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp       unix - - n - - smtp
relay      unix - - n - - smtp
showq      unix n - n - - showq
error      unix - - n - - error
retry      unix - - n - - error
discard    unix - - n - - discard
virtual    unix - n n - - virtual
anvil      unix - - n - 1 anvil
scache     unix - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
}

# pf_start STORAGE: sets $port and $server_pid (the master)
pf_start() {
  local storage=$1
  mkdir -p "$storage"
  chown nobody: "$storage"
  postconf -c "$pf_etc" -e "virtual_mailbox_base = $storage"
  port=$(free_port)
  pf_master_cf
  postfix -c "$pf_etc" start >>"$work/postfix/start.log" 2>&1 || return 1
  for _ in $(seq 1 200); do
    pf_master=$(tr -d ' ' <"$pf_queue/pid/master.pid" 2>/dev/null || true)
    [ -n "$pf_master" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && {
      server_pid=$pf_master
      return 0
    }
    sleep 0.05
  done
  return 1
}

pf_stop() {
  postfix -c "$pf_etc" stop >>"$work/postfix/start.log" 2>&1 || true
  for _ in $(seq 1 300); do
    kill -0 "$pf_master" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pf_master" 2>/dev/null && postfix -c "$pf_etc" abort >/dev/null 2>&1
  server_pid="" pf_master=""
}

# ---- measuring ---------------------------------------------------------------------------
# proc_tree PID: prints "CPU_TICKS HWM_KIB NPROCS" summed over PID and its descendants.
# CPU_TICKS is utime+stime+cutime+cstime, so children that exited and were reaped still count.
proc_tree() {
  local f line pid rest changed=1 p t=0 h=0 n=0 hwm
  local -A parent=() ticks=() tree=()
  local -a a
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    pid=${line%% *}
    rest=${line##*) }
    read -r -a a <<<"$rest"
    parent[$pid]=${a[1]}
    ticks[$pid]=$((a[11] + a[12] + a[13] + a[14]))
  done
  tree[$1]=1
  while [ "$changed" = 1 ]; do
    changed=0
    for p in "${!parent[@]}"; do
      if [ -z "${tree[$p]:-}" ] && [ -n "${tree[${parent[$p]}]:-}" ]; then
        tree[$p]=1
        changed=1
      fi
    done
  done
  for p in "${!tree[@]}"; do
    [ -n "${ticks[$p]:-}" ] || continue
    t=$((t + ticks[$p]))
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    h=$((h + ${hwm:-0}))
    n=$((n + 1))
  done
  echo "$t $h $n"
}

count_files() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

results=$work/results.tsv # server size sessions run msgs_per_s cpu_us_per_msg rss_kib nprocs ok
latencies=$work/latencies.tsv # server size sessions ms (one line per probe message)
: >"$results"
: >"$latencies"

# run_one SERVER SIZE SESSIONS RUN
run_one() {
  local name=$1 size=$2 s=$3 i=$4 count=$small
  [ "$size" -gt 16384 ] && count=$big
  local dir=$work/runs/$name-l$size-s$s-r$i
  local storage=$dir/mail newdir="" ok=1 rc=0 started=1
  local cpu0 cpu1 t0 t1 t_end got=0 rate=0 cpu_us=0 hwm=0 nproc=0 deadline
  mkdir -p "$dir"
  chmod 755 "$work/runs" "$dir"
  case $name in
    sink)
      local as=()
      is_root && as=(-u nobody) # smtp-sink refuses to run as root
      start_listener "$dir/server.log" smtp-sink "${as[@]}" 127.0.0.1:@PORT@ 256 || started=0
      ;;
    twisted)
      newdir=$storage/example.com/rcpt/new
      start_listener "$dir/server.log" "$venv/bin/python" "$here/twisted_maildir.py" \
        --port @PORT@ --storage "$storage" --domains example.com || started=0
      ;;
    mailin) # mailin-maildir DOMAINS STORAGE PORT THREADS; it listens on 127.0.0.1
      newdir=$storage/example.com/rcpt/new
      mkdir -p "$storage"
      start_listener "$dir/server.log" "$mailin_bin" example.com "$storage" @PORT@ 8 || started=0
      ;;
    buzon-smol | buzon-mio | buzon-smol-nofsync | buzon-mio-nofsync | \
      buzon-smol-permsg | buzon-mio-permsg | \
      base-smol | base-mio | base-smol-nofsync | base-mio-nofsync)
      newdir=$storage/example.com/rcpt/new
      local rt=${name#*-} unsafe=() bin=${buzon:-}
      [[ $name == base-* ]] && bin=$base_buzon
      [[ $rt == *-nofsync ]] && unsafe=(--unsafe-no-fsync)
      [[ $rt == *-permsg ]] && unsafe=(--commit per-message)
      BUZON_LOG=${BUZON_LOG:-info} start_listener "$dir/server.log" "$bin" serve \
        --runtime "${rt%%-*}" -d example.com -s "$storage" -p @PORT@ --bind 127.0.0.1 \
        --hostname bench.test "${unsafe[@]}" || started=0
      ;;
    postfix)
      newdir=$storage/example.com/rcpt/new
      pf_start "$storage" || started=0
      ;;
    *)
      echo "unknown server $name" >&2
      exit 2
      ;;
  esac
  if [ "$started" = 0 ]; then
    echo "$name did not start (see $dir)" >&2
    [ "$name" = postfix ] && pf_stop
    printf '%s\t%s\t%s\t%s\t-\t-\t-\t-\t0\n' "$name" "$size" "$s" "$i" >>"$results"
    failed=1
    return
  fi
  read -r cpu0 _ _ < <(proc_tree "$server_pid")
  # One more client, paced at 50 messages/s at most, measures per-message latency under the
  # load (bench/latency_probe.py); its mail goes to another mailbox than smtp-source's.
  "$py" "$here/latency_probe.py" 127.0.0.1 "$port" "$dir/latency.txt" --size "$size" \
    2>"$dir/probe.log" &
  local probe_pid=$!
  t0=$(date +%s.%N)
  timeout 900 smtp-source "${keep[@]}" -s "$s" -m "$count" -l "$size" \
    -f sender@example.org -t rcpt@example.com "127.0.0.1:$port" >"$dir/source.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  kill -TERM "$probe_pid" 2>/dev/null || true
  wait "$probe_pid" || echo "$name -l $size -s $s run $i: latency probe failed: $(cat "$dir/probe.log")" >&2

  t_end=$t1
  if [ "$rc" != 0 ]; then
    echo "$name -l $size -s $s run $i: smtp-source exit status $rc: $(tail -n 2 "$dir/source.log")" >&2
    ok=0
  fi
  if [ -n "$newdir" ]; then
    got=$(count_files "$newdir")
    if [ "$got" -lt "$count" ] && [ "$rc" = 0 ]; then
      deadline=$(echo "$t1 + $drain_timeout" | bc)
      while [ "$got" -lt "$count" ] && [ "$(echo "$(date +%s.%N) < $deadline" | bc)" = 1 ]; do
        sleep 0.02
        got=$(count_files "$newdir")
      done
      t_end=$(date +%s.%N)
    fi
    if [ "$got" != "$count" ]; then
      echo "$name -l $size -s $s run $i: $got files in new/, expected $count" >&2
      ok=0
    fi
  fi
  read -r cpu1 hwm nproc < <(proc_tree "$server_pid")
  rate=$(echo "scale=1; $count / ($t_end - $t0)" | bc)
  cpu_us=$(echo "scale=0; ($cpu1 - $cpu0) * 1000000 / $tick / $count" | bc)
  if [ "$name" = postfix ]; then
    pf_stop
  else
    stop_server
    if [[ $name == buzon-* || $name == base-* ]] && [ "$stop_rc" != 0 ]; then
      echo "$name -l $size -s $s run $i: exit status $stop_rc after SIGTERM" >&2
      ok=0
    fi
  fi
  [ "$ok" = 1 ] || failed=1
  if [ "$ok" = 1 ] && [ -s "$dir/latency.txt" ]; then
    awk -v k="$name	$size	$s" '{ print k "\t" $1 }' "$dir/latency.txt" >>"$latencies"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$s" "$i" "$rate" "$cpu_us" \
    "$hwm" "$nproc" "$ok" >>"$results"
  printf '%-10s %6s B  -s %-2s run %s: %7s msgs/s, %5s us CPU/msg, RSS %s KiB (%s procs)%s\n' \
    "$name" "$size" "$s" "$i" "$rate" "$cpu_us" "$hwm" "$nproc" \
    "$([ -n "$newdir" ] && echo ", delivered $got/$count")" >&2
}

# ---- the runs ----------------------------------------------------------------------------
# round_order ROUND SERVER...: the servers in that round's order: in even rounds every base-X
# trades places with its buzon-X, so neither always runs first (or always after the other).
round_order() {
  local i=$1 a b
  shift
  local -a l=("$@") o=("$@")
  if [ $((i % 2)) = 0 ]; then
    for a in "${!l[@]}"; do
      [[ ${l[a]} == base-* ]] || continue
      for b in "${!l[@]}"; do
        if [ "${l[b]}" = "buzon-${l[a]#base-}" ]; then
          o[a]=${l[b]} o[b]=${l[a]}
          break
        fi
      done
    done
  fi
  echo "${o[*]}"
}

has postfix && pf_setup
others="" late=""
for srv in $servers; do
  if [ "$srv" = postfix ] && [ "$interleave" = 0 ]; then late=postfix; else others="$others $srv"; fi
done
echo "peers: $runs runs x {$servers} x sessions {$sessions} x sizes {$sizes}" \
  "($small messages up to 16 KiB, $big above), $([ ${#keep[@]} -gt 0 ] && echo kept connections || echo new connection per message)" >&2
for phase in "$others" "$late"; do
  [ -n "${phase// /}" ] || continue
  for i in $(seq 1 "$runs"); do
    for size in $sizes; do
      for s in $sessions; do
        # shellcheck disable=SC2086 # $phase is a list of names
        for srv in $(round_order "$i" $phase); do run_one "$srv" "$size" "$s" "$i"; done
      done
    done
  done
done

# ---- report ------------------------------------------------------------------------------
report() {
  local latsum=$work/latency-summary.tsv
  # Percentiles (nearest rank) of every probe message of every good run of a configuration.
  "$py" - "$latencies" >"$latsum" <<'PY'
import collections, math, sys
lat = collections.defaultdict(list)
for line in open(sys.argv[1]):
    srv, size, s, ms = line.split("\t")
    lat[(srv, size, s)].append(float(ms))
for (srv, size, s), v in lat.items():
    v.sort()
    rank = lambda p: v[max(0, math.ceil(p / 100 * len(v)) - 1)]
    print(f"{srv}\t{size}\t{s}\t{rank(50):.1f}\t{rank(99):.1f}\t{len(v)}")
PY
  awk -F'\t' -v order="sink postfix twisted mailin base-smol buzon-smol-permsg buzon-smol base-mio buzon-mio-permsg buzon-mio base-smol-nofsync buzon-smol-nofsync base-mio-nofsync buzon-mio-nofsync" "$AWK_MEDIAN"'
    function label(s) {
      if (s == "sink") return "smtp-sink (stores nothing)"
      if (s == "postfix") return "Postfix, virtual(8) to Maildir (fsync)"
      if (s == "twisted") return "Twisted Maildir (no fsync)"
      if (s == "mailin") return "mailin-embedded Maildir, 8 threads (fsync)"
      if (s == "base-smol") return "base buzon, smol (fsync)"
      if (s == "base-mio") return "base buzon, mio (fsync)"
      if (s == "base-smol-nofsync") return "base buzon, smol, no fsync"
      if (s == "base-mio-nofsync") return "base buzon, mio, no fsync"
      if (s == "buzon-smol") return "**buzon, smol** (fsync)"
      if (s == "buzon-mio") return "**buzon, mio** (fsync)"
      if (s == "buzon-smol-permsg") return "buzon, smol, flush per message (fsync)"
      if (s == "buzon-mio-permsg") return "buzon, mio, flush per message (fsync)"
      if (s == "buzon-smol-nofsync") return "buzon, smol, no fsync"
      if (s == "buzon-mio-nofsync") return "buzon, mio, no fsync"
      return s
    }
    function sz(b) { return b % 1024 == 0 ? (b / 1024) " KiB" : b " B" }
    FILENAME == ARGV[1] { lat[$2 SUBSEP $3 SUBSEP $1] = sprintf("%s / %s ms (%d)", $4, $5, $6); next }
    {
      k = $2 SUBSEP $3 SUBSEP $1
      total[k]++
      if (!($2 in seen_size)) { seen_size[$2] = 1; sizes[++nsizes] = $2 }
      if (!($3 in seen_sess)) { seen_sess[$3] = 1; sess[++nsess] = $3 }
      if ($9 == 1) { n = ++good[k]; rate[k, n] = $5; cpu[k, n] = $6; rss[k, n] = $7; procs[k] = $8 }
    }
    END {
      ns = split(order, srv, " ")
      for (i = 2; i <= nsizes; i++) { t = sizes[i]; for (j = i - 1; j >= 1 && sizes[j] + 0 > t + 0; j--) sizes[j + 1] = sizes[j]; sizes[j + 1] = t }
      for (i = 2; i <= nsess; i++) { t = sess[i]; for (j = i - 1; j >= 1 && sess[j] + 0 > t + 0; j--) sess[j + 1] = sess[j]; sess[j + 1] = t }
      print "| size | sessions | server | msgs/s (median) | min - max | latency p50 / p99 (probes) | CPU per msg | peak RSS | good runs |"
      print "|---|---:|---|---:|---:|---:|---:|---:|---:|"
      for (a = 1; a <= nsizes; a++) for (b = 1; b <= nsess; b++) for (c = 1; c <= ns; c++) {
        k = sizes[a] SUBSEP sess[b] SUBSEP srv[c]
        if (!(k in total)) continue
        n = good[k] + 0
        if (n == 0) { printf "| %s | %s | %s | failed | - | - | - | - | 0/%d |\n", sz(sizes[a]), sess[b], label(srv[c]), total[k]; continue }
        lo = hi = rate[k, 1]
        for (i = 1; i <= n; i++) { r[i] = rate[k, i]; u[i] = cpu[k, i]; m[i] = rss[k, i]; if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i] }
        med[k] = median(r, n)
        mrss = median(m, n) / 1024
        printf "| %s | %s | %s | %.0f | %.0f - %.0f | %s | %.0f µs | %.1f MiB%s | %d/%d |\n", sz(sizes[a]), sess[b], label(srv[c]), med[k], lo, hi, ((k in lat) ? lat[k] : "-"), median(u, n), mrss, (procs[k] > 1 ? " (" procs[k] " procs)" : ""), n, total[k]
      }
      print ""
      print "| size | sessions | buzon runtime | vs base | vs Postfix | vs Twisted | vs mailin | vs smtp-sink |"
      print "|---|---:|---|---:|---:|---:|---:|---:|"
      for (a = 1; a <= nsizes; a++) for (b = 1; b <= nsess; b++) for (c = 1; c <= 2; c++) {
        rt = c == 1 ? "smol" : "mio"
        kb = sizes[a] SUBSEP sess[b] SUBSEP "buzon-" rt
        if (!(kb in med)) continue
        line = sprintf("| %s | %s | %s", sz(sizes[a]), sess[b], rt)
        split("base-" rt " postfix twisted mailin sink", peer, " ")
        for (p = 1; p <= 5; p++) {
          kp = sizes[a] SUBSEP sess[b] SUBSEP peer[p]
          line = line ((kp in med) && med[kp] > 0 ? sprintf(" | %.2fx", med[kb] / med[kp]) : " | -")
        }
        print line " |"
      }
    }' "$latsum" "$results"
}

{
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), $(uname -r);" \
    "$(postconf -d mail_version 2>/dev/null | sed 's/ = / /'), Twisted $("$venv/bin/python" -c 'import twisted; print(twisted.__version__)' 2>/dev/null || echo -)," \
    "mailin-embedded ${mailin_version:--}"
  echo "buzon: ${buzon:--}$([[ " $servers" != *" base-"* ]] || echo "; base (base-*): $base_buzon, each base-X run next to buzon-X, in turns first")"
  echo "smtp-source -s N -m COUNT -l SIZE$([ ${#keep[@]} -gt 0 ] && echo ' -d') (COUNT $small up to 16 KiB, $big above), $runs runs each;" \
    "msgs/s until all are in new/, median (min - max); CPU = server's utime+stime per message; $([ "$interleave" = 1 ] && echo 'Postfix interleaved' || echo 'Postfix runs after the others')"
  echo
  report
} | tee ${outfile:+"$outfile"}
[ -z "$outfile" ] || cp "$results" "$outfile.tsv"
[ -z "$plotfile" ] || "$py" "$here/plot_peers.py" "$results" "$plotfile" || failed=1
exit "$failed"
