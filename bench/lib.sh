# shellcheck shell=bash
# Helpers for the bench/ scripts (sourced, not run).
#
# start_listener LOG CMD ARGS...   starts CMD in the background with @PORT@ in its arguments
#                                  replaced by a free loopback port; sets $port and
#                                  $server_pid; returns 0 once the port accepts connections
# stop_server                      SIGTERM to $server_pid, waits up to 30 s (then SIGKILL);
#                                  sets $stop_rc to its exit status
# peak_rss PID                     prints the process's peak resident set (VmHWM) in KiB
# summarize TSV                    markdown table from "config sessions run rate rss ok" lines
# $AWK_MEDIAN                      awk source of median(a, n) over a[1..n], for the report tables
# buzon_release_bin [--if-missing] runs `cargo build --release -p buzon` in the workspace (cargo's
#                                  output on stderr) and prints the path of the binary, where cargo
#                                  put it: CARGO_TARGET_DIR, build.target-dir and build.target are
#                                  honoured. --if-missing: if a release binary is already in the
#                                  target directory, print its path without building

# shellcheck disable=SC2120 # --if-missing is optional
buzon_release_bin() {
  local root json bin=""
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ "${1:-}" = --if-missing ]; then
    json=$(cd "$root" && cargo metadata --format-version 1 --no-deps) || return
    bin=$(_json_field target_directory <<<"$json")/release/buzon
    if [ -x "$bin" ]; then
      echo "$bin"
      return
    fi
    echo "no binary at $bin yet: cargo build --release -p buzon" >&2
  fi
  # One JSON message per line on stdout; the compiler's diagnostics and cargo's progress are
  # rendered on stderr as usual. The compiler-artifact message of the `buzon` binary names it.
  json=$(cd "$root" && cargo build --release -p buzon --message-format=json-render-diagnostics) ||
    return
  bin=$(_json_field executable <<<"$json")
  [ -n "$bin" ] || { echo "cargo build named no buzon executable" >&2; return 1; }
  echo "$bin"
}

# _json_field target_directory|executable: from cargo's JSON on stdin, the metadata's target
# directory, or the executable of the last compiler-artifact for the `buzon` bin target.
_json_field() {
  if command -v python3 >/dev/null; then
    python3 -c '
import json, sys
field, out = sys.argv[1], ""
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if field == "target_directory":
        out = m.get("target_directory") or out
    elif (m.get("reason") == "compiler-artifact" and m.get("executable")
          and m["target"]["name"] == "buzon" and "bin" in m["target"]["kind"]):
        out = m["executable"]
print(out)' "$1"
  elif [ "$1" = target_directory ]; then # no python3: paths without quotes or backslashes
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
  else
    sed -n 's/.*"reason":"compiler-artifact".*"executable":"\([^"]*\/buzon\)".*/\1/p' | tail -n 1
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

start_listener() {
  local logf=$1
  shift
  for _ in 1 2 3; do
    port=$(free_port)
    NO_COLOR=1 "${@//@PORT@/$port}" >"$logf" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        grep -qi "in use" "$logf" && continue 2 # lost a race for the port: take another
        return 1
      fi
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
      sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    return 1
  done
  return 1
}

# shellcheck disable=SC2034 # stop_rc is read by the caller
stop_server() {
  stop_rc=0
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    echo "pid $server_pid ignored SIGTERM for 30 s: killed" >&2
  fi
  wait "$server_pid" 2>/dev/null || stop_rc=$?
  server_pid=""
}

AWK_MEDIAN='
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }'

peak_rss() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

summarize() {
  sort -t$'\t' -k2,2n -k1,1 "$1" | awk -F'\t' "$AWK_MEDIAN"'
    {
      key = $1 "\t" $2
      if (!(key in total)) order[++keys] = key
      total[key]++
      if ($6 == 1) { k = ++good[key]; rate[key, k] = $4; rss[key, k] = $5 }
    }
    END {
      print "| server | sessions | msgs/s (median) | min - max | peak RSS (median) | good runs |"
      print "|---|---:|---:|---:|---:|---:|"
      for (o = 1; o <= keys; o++) {
        key = order[o]; split(key, kv, "\t"); n = good[key] + 0
        if (n == 0) { printf "| %s | %s | failed | - | - | 0/%d |\n", kv[1], kv[2], total[key]; continue }
        lo = hi = rate[key, 1]
        for (i = 1; i <= n; i++) {
          r[i] = rate[key, i]; m[i] = rss[key, i]
          if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i]
        }
        printf "| %s | %s | %.0f | %.0f - %.0f | %.1f MiB | %d/%d |\n", kv[1], kv[2], median(r, n), lo, hi, median(m, n) / 1024, n, total[key]
      }
    }'
}
