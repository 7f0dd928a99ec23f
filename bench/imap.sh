#!/usr/bin/env bash
# IMAP side by side: buzon (smol and mio) and Dovecot, each on its own copy of one Maildir,
# driven by our load generator (bench/imap-load) in one invocation.
#
#   bench/imap.sh            all three measurements, results as markdown on stdout
#   IMAP_PARTS=mix bench/imap.sh    only some of them (mix, idle, select)
#
# Measurements (environment to change them):
#   mix     IMAP_CLIENTS (8) clients for IMAP_SECONDS (10) each, repeating SELECT, FETCH of
#           all flags, FETCH of a header, FETCH of a whole 2 KiB body, SEARCH UNSEEN, STORE,
#           APPEND, EXPUNGE, NOOP; IMAP_RUNS (5) interleaved runs; ops/s, p50 and p99
#           latency, medians of the runs.
#   idle    IMAP_IDLE (1000) sessions logged in, INBOX selected, in IDLE; the servers'
#           resident memory before and after, per connection (Dovecot: every dovecot process).
#   select  EXAMINE of a folder of IMAP_BIG (100000) messages: the first (the index is built)
#           and the second.
#
# Needs root (Dovecot runs its mail processes as nobody on its copy) and dovecot-imapd.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

clients=${IMAP_CLIENTS:-8}
seconds=${IMAP_SECONDS:-10}
runs=${IMAP_RUNS:-5}
idle_n=${IMAP_IDLE:-1000}
big=${IMAP_BIG:-100000}
parts=" ${IMAP_PARTS:-mix idle select} "
work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-imap-bench.XXXXXX")
server_pid=""
dovecot_conf=""
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
  [ -n "$dovecot_conf" ] && /usr/sbin/dovecot -c "$dovecot_conf" stop 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
chmod 711 "$work"

[ -x /usr/sbin/dovecot ] || { echo "dovecot-imapd is needed (apt-get install dovecot-imapd)" >&2; exit 2; }
buzon=$(buzon_release_bin)
cargo build --release --quiet --manifest-path "$root/bench/imap-load/Cargo.toml" \
  --target-dir "$work/load-target"
load=$work/load-target/release/imap-load
user=alice@localhost pass=bench-pw

# One Maildir: 50 messages of 2 KiB in INBOX, and a folder of $big small ones.
seed=$work/seed
echo "$pass" | "$buzon" user add "$user" -s "$seed" >/dev/null
mkdir -p "$seed/localhost/alice/.Big/"{cur,new,tmp}
touch "$seed/localhost/alice/.Big/maildirfolder"
python3 - "$seed/localhost/alice" "$big" <<'PY'
import os, sys
box, n = sys.argv[1], int(sys.argv[2])
for i in range(1, 51):
    m = b"From: seed@example.org\r\nSubject: seed %d\r\n\r\n%s\r\n" % (i, b"x" * 2000)
    with open(os.path.join(box, "new", "17000%03d.M1P1Q%d.bench,S=%d" % (i, i, len(m))), "wb") as f:
        f.write(m)
d = os.path.join(box, ".Big", "cur")
for i in range(n):
    m = b"Subject: big %d\r\n\r\nx\r\n" % i
    with open(os.path.join(d, "17%08d.M1P1Q%d.bench,S=%d:2,S" % (i, i, len(m))), "wb") as f:
        f.write(m)
PY

copy_for() { rm -rf "$work/$1"; cp -a "$seed" "$work/$1"; }

# start NAME: a server on a fresh copy; sets $addr and $pids (the processes to measure).
start() {
  local name=$1
  copy_for "$name"
  case $name in
    buzon-*)
      start_listener "$work/$name.log" "$buzon" serve --runtime "${name#buzon-}" -d localhost \
        -s "$work/$name" -p "$(free_port)" --no-submission --imap @PORT@ --imaps off --nntp off --nntps off \
        --allow-plaintext-auth-on-loopback
      addr=127.0.0.1:$port
      pids=$server_pid
      ;;
    dovecot)
      local dv=$work/dv port
      port=$(free_port)
      mkdir -p "$dv/run" "$dv/state" "$dv/home"
      chmod 755 "$dv"
      echo "$user:{PLAIN}$pass::::::" >"$dv/passwd"
      chmod 644 "$dv/passwd"
      chown -R nobody:nogroup "$work/dovecot" "$dv/home"
      dovecot_conf=$dv/dovecot.conf
      cat >"$dovecot_conf" <<CONF
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_client_limit = 50000
default_process_limit = 20000
mail_location = maildir:$work/dovecot/%d/%n
namespace inbox {
  inbox = yes
  separator = .
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dv/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dv/home
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  client_limit = 20000
  process_min_avail = 2
}
service imap {
  process_limit = 20000
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
}
protocol imap {
  mail_max_userip_connections = 100000
}
CONF
      /usr/sbin/dovecot -c "$dovecot_conf"
      for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
      addr=127.0.0.1:$port
      pids=""
      ;;
  esac
}

stop() {
  case $1 in
    buzon-*) stop_server ;;
    dovecot)
      /usr/sbin/dovecot -c "$dovecot_conf" stop 2>/dev/null || true
      sleep 1
      dovecot_conf=""
      ;;
  esac
}

# Resident memory in KiB of the server: buzon's process, or all of Dovecot's.
rss_kib() {
  if [ -n "$pids" ]; then
    awk '/^VmRSS:/ { print $2 }' "/proc/$pids/status"
  else
    ps -eo rss=,comm= | awk '$2 ~ /^(dovecot|imap|imap-login|auth|anvil|log|config|stats)$/ { s += $1 } END { print s + 0 }'
  fi
}

servers=(buzon-smol buzon-mio dovecot)
results=$work/mix.tsv
: >"$results"
if [[ $parts == *" mix "* ]]; then
for r in $(seq 1 "$runs"); do
  for s in "${servers[@]}"; do
    start "$s"
    # A warm-up SELECT, so the index is built before the clock starts.
    "$load" select "$addr" "$user" "$pass" INBOX 1 >/dev/null
    out=$("$load" mix "$addr" "$user" "$pass" "$clients" "$seconds")
    echo "$s run $r: $out" >&2
    printf '%s\t%s\n' "$s" "$out" >>"$results"
    stop "$s"
  done
done

echo "## IMAP: mixed sessions ($clients clients, ${seconds}s, median of $runs interleaved runs)"
echo
echo "| server | ops/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|"
for s in "${servers[@]}"; do
  awk -F'\t' -v s="$s" "$AWK_MEDIAN"'
    $1 == s {
      n++
      for (i = 1; i <= split($2, kv, " "); i++) { split(kv[i], p, "="); v[p[1], n] = p[2] }
    }
    END {
      for (i = 1; i <= n; i++) { a[i] = v["ops_per_s", i]; b[i] = v["p50_ms", i]; c[i] = v["p99_ms", i]; e += v["errors", i] }
      printf "| %s | %.0f | %.3f | %.3f | %d |\n", s, median(a, n), median(b, n), median(c, n), e
    }' "$results"
done
fi

if [[ $parts == *" idle "* ]]; then
echo
echo "## IMAP: $idle_n sessions in IDLE"
echo
echo "| server | RSS before (KiB) | RSS with sessions (KiB) | per session (KiB) |"
echo "|---|---:|---:|---:|"
for s in "${servers[@]}"; do
  start "$s"
  before=$(rss_kib)
  "$load" idle "$addr" "$user" "$pass" "$idle_n" 8 >"$work/idle-$s.out" 2>&1 &
  lp=$!
  sleep 6
  for _ in $(seq 1 120); do grep -q idle_connections "$work/idle-$s.out" && break; sleep 1; done
  after=$(rss_kib)
  wait "$lp" || true
  opened=$(grep -o 'idle_connections=[0-9]*' "$work/idle-$s.out" | cut -d= -f2)
  opened=${opened:-0}
  per=$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')
  echo "| $s ($opened open) | $before | $after | $per |"
  stop "$s"
done
fi

if [[ $parts == *" select "* ]]; then
echo
echo "## IMAP: EXAMINE of a $big-message folder"
echo
echo "| server | first (ms) | second (ms) |"
echo "|---|---:|---:|"
for s in "${servers[@]}"; do
  start "$s"
  out=$("$load" select "$addr" "$user" "$pass" Big 2)
  first=$(echo "$out" | awk -F= '/select_0_ms/ { print $2 }')
  second=$(echo "$out" | awk -F= '/select_1_ms/ { print $2 }')
  echo "| $s | $first | $second |"
  stop "$s"
done
fi
