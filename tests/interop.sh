#!/usr/bin/env bash
# Interoperability test: real SMTP clients (swaks, Postfix's smtp-source, openssl s_client)
# against `buzon serve`, plain and over TLS (STARTTLS and implicit TLS); real IMAP clients
# (curl, mbsync, neomutt) against its IMAP listeners, and Dovecot on the same Maildir tree
# (tests/interop_imap.sh); real news readers (slrn, tin, nntplib) against its NNTP listeners,
# and its notice feed into a real INN (tests/interop_nntp.sh); the page of `buzon ui` in headless
# Chromium (tests/interop_ui.sh).
#
#   tests/interop.sh                 build, then test both runtimes (smol and mio)
#
# Environment:
#   BUZON_BIN=PATH          use this binary instead of building one with cargo (the release
#                           build, wherever cargo puts it: CARGO_TARGET_DIR is honoured)
#   INTEROP_RUNTIMES="smol" runtimes to test (default "smol mio")
#   INTEROP_CHECKS="nntp"   which groups of checks to run (default "smtp send tls auth imap nntp
#                           ui"; ui runs under the first runtime only: the page does not change)
#   INTEROP_ARTIFACTS=DIR   where the browser test's screenshots go (default target/interop-artifacts)
#   INTEROP_KEEP=1          keep the temporary folder (storage, logs) for inspection
#
# Installs swaks, its TLS module (libnet-ssleay-perl), openssl, postfix (for smtp-source),
# isync (mbsync), neomutt, dovecot-imapd, slrn, tin, inn2 and chromium with apt-get when they are
# missing, and playwright-core with npm; postfix is
# preseeded to "No configuration" so no system MTA is set up or started. Needs root for that.
# Every server is started on a free loopback port with its own temporary storage and is killed
# when the script exits. Prints one PASS/FAIL line per check, then "N passed, M failed"; the
# exit status is non-zero if any check failed.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runtimes=${INTEROP_RUNTIMES:-smol mio}
checks=" ${INTEROP_CHECKS:-smtp send tls auth imap nntp ui} "
work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-interop.XXXXXX")
passed=0
failed=0
server_pid=""
sub_port=""
subs_port=""
bg_pids=()

cleanup() {
  local pid conf
  for pid in "${bg_pids[@]}" $server_pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for conf in "$work"/dovecot-*/dovecot.conf; do
    if [ -f "$conf" ]; then /usr/sbin/dovecot -c "$conf" stop 2>/dev/null || true; fi
  done
  if [ "${INTEROP_KEEP:-0}" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*"; }
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1${2:+: $2}"
  if [ -n "${3:-}" ] && [ -f "$3" ]; then sed 's/^/    | /' "$3" | tail -n 25; fi
}

# --- tools -------------------------------------------------------------------------------
have_tools() {
  command -v swaks >/dev/null && command -v smtp-source >/dev/null && command -v curl >/dev/null &&
    command -v openssl >/dev/null && perl -MNet::SSLeay -e 1 2>/dev/null &&
    command -v mbsync >/dev/null && command -v neomutt >/dev/null && command -v script >/dev/null &&
    [ -x /usr/sbin/dovecot ] && command -v slrn >/dev/null && command -v tin >/dev/null &&
    [ -x /usr/lib/news/bin/innd ] && dpkg-query -W -f='${Status}' inn2 2>/dev/null | grep -q 'ok installed'
}

# inn2's post-install script needs a domain in inn.conf, which a machine named without one
# ("vm") does not give it: the install stops half way; set the domain and finish it.
install_inn() {
  # Its post-install script also runs newaliases, which stops without a main.cf, and postfix
  # preseeded to "No configuration" writes none: an empty one means Postfix's defaults.
  if [ -d /etc/postfix ] && [ ! -e /etc/postfix/main.cf ]; then : >/etc/postfix/main.cf; fi
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confmiss inn2 \
    >>"$work/apt.log" 2>&1 || true
  if [ -f /etc/news/inn.conf ] && ! grep -q '^domain:' /etc/news/inn.conf; then
    echo "domain: localdomain" >>/etc/news/inn.conf
  fi
  dpkg --configure -a >>"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 2; }
}

install_tools() {
  have_tools && return 0
  log "installing swaks and postfix (smtp-source) with apt-get"
  [ "$(id -u)" = 0 ] || { echo "need root to apt-get install swaks postfix" >&2; exit 2; }
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Refresh the package lists only when apt does not know the packages (or the install fails).
  local pkgs=(swaks postfix openssl libnet-ssleay-perl libauthen-sasl-perl curl isync neomutt
    dovecot-imapd bsdutils slrn tin)
  if ! apt-cache policy "${pkgs[@]}" inn2 2>/dev/null | grep -c 'Candidate: [0-9]' | grep -qx 13; then
    apt-get update -qq
  fi
  if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$work/apt.log" 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$work/apt.log" 2>&1 ||
      { cat "$work/apt.log" >&2; exit 2; }
  fi
  # After postfix, so that inn2's need for a mail transport agent is met by it.
  install_inn
  have_tools || { echo "swaks/smtp-source/openssl/curl/Net::SSLeay/mbsync/neomutt/dovecot/slrn/tin/inn2 still missing after install" >&2; exit 2; }
}

# --- buzon -------------------------------------------------------------------------------
build_buzon() {
  if [ -n "${BUZON_BIN:-}" ]; then
    buzon=$BUZON_BIN
  else
    log "cargo build --release -p buzon"
    buzon=$(buzon_release_bin)
  fi
  [ -x "$buzon" ] || { echo "no buzon binary at $buzon" >&2; exit 2; }
}

# free_port and buzon_release_bin (and the other bench helpers, which interop does not use)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

# start_server RUNTIME STORAGE LOG [extra flags...]: sets $port (SMTP), $sub_port and $subs_port
# (submission with STARTTLS and implicit TLS), $imap_port and $imaps_port, $nntp_port and
# $nntps_port, and $server_pid; 0 when ready.
start_server() {
  local rt=$1 storage=$2 logf=$3
  shift 3
  for _ in 1 2 3; do
    port=$(free_port)
    sub_port=$(free_port)
    subs_port=$(free_port)
    imap_port=$(free_port)
    imaps_port=$(free_port)
    nntp_port=$(free_port)
    nntps_port=$(free_port)
    NO_COLOR=1 "$buzon" serve --runtime "$rt" -d localhost -s "$storage" -p "$port" --bind 127.0.0.1 \
      --hostname interop.test --submission-port "$sub_port" --submissions-port "$subs_port" \
      --imap "$imap_port" --imaps "$imaps_port" --nntp "$nntp_port" --nntps "$nntps_port" \
      "$@" >"$logf" 2>&1 &
    server_pid=$!
    local i
    for i in $(seq 1 100); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        grep -q "in use" "$logf" && continue 2 # lost a port race: try another port
        return 1
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    server_pid=""
    return 1
  done
  return 1
}

count_files() { if [ -d "$1" ]; then find "$1" -maxdepth 1 -type f | wc -l; else echo 0; fi; }
# Files left in any STORAGE/<domain>/<user>/tmp/ (the folder itself may sit under /tmp).
tmp_files() { find "$1" -mindepth 4 -maxdepth 4 -type f -path "$1/*/*/tmp/*" 2>/dev/null | wc -l; }

# swaks_run NAME [swaks args...]: runs swaks against the current server, output in $work/NAME.log.
swaks_run() {
  local name=$1
  shift
  timeout 60 swaks --server "127.0.0.1:$port" --helo interop.client --from sender@example.org \
    --timeout 30 "$@" >"$work/$name.log" 2>&1
}

# --- the checks, for one runtime ----------------------------------------------------------
run_runtime() {
  local rt=$1
  local storage=$work/$rt/mail logf=$work/$rt/server.log
  local new=$storage/localhost
  mkdir -p "$work/$rt"
  log "runtime $rt"
  # 64 KiB limit: big enough for every message below except the oversized one.
  if ! start_server "$rt" "$storage" "$logf" --max-message-size 65536; then
    fail "$rt: server starts" "no listener on 127.0.0.1:$port" "$logf"
    return
  fi
  pass "$rt: server starts on 127.0.0.1:$port"

  # (a) plain delivery with swaks.
  local subject="interop $rt $$ $RANDOM" l=$work/$rt-deliver.log
  if swaks_run "$rt-deliver" --to user@localhost --header "Subject: $subject" &&
    grep -q '^<-  250 ' "$l"; then
    local n f
    n=$(count_files "$new/user/new")
    f=$(find "$new/user/new" -maxdepth 1 -type f 2>/dev/null | head -n1)
    if [ "$n" = 1 ] && grep -qF "Subject: $subject" "$f" && grep -q '^X-Mailer: swaks' "$f"; then
      pass "$rt: (a) swaks delivers one message to localhost/user/new with its headers"
    else
      fail "$rt: (a) swaks delivery" "$n file(s) in user/new, or headers missing" "${f:-$l}"
    fi
  else
    fail "$rt: (a) swaks delivery" "swaks failed" "$l"
  fi

  # (b) a foreign domain is refused at RCPT.
  l=$work/$rt-relay.log
  swaks_run "$rt-relay" --to x@elsewhere.example || true
  if grep -Eq '^<\*\* +550 5\.7\.1' "$l" && [ ! -e "$storage/elsewhere.example" ]; then
    pass "$rt: (b) relay attempt to x@elsewhere.example refused with 550 5.7.1"
  else
    fail "$rt: (b) relay refusal" "expected 550 5.7.1" "$l"
  fi

  # (c) a local part that would escape the Maildir is refused with 553.
  l=$work/$rt-traversal.log
  swaks_run "$rt-traversal" --to '"../../evil"@localhost' || true
  if grep -Eq '^<\*\* +553' "$l" && [ -z "$(find "$work/$rt" -name evil\* -print -quit)" ]; then
    pass "$rt: (c) path-traversal local part \"../../evil\" refused with 553"
  else
    fail "$rt: (c) path traversal" "expected 553" "$l"
  fi

  # (d) a message over --max-message-size is refused with 552 and nothing is kept.
  l=$work/$rt-big.log
  head -c 150000 /dev/zero | tr '\0' 'x' | fold -w 76 >"$work/big-body.txt"
  swaks_run "$rt-big" --to big@localhost --body "@$work/big-body.txt" || true
  if grep -Eq '^<\*\* +552' "$l" && [ "$(count_files "$new/big/new")" = 0 ] &&
    [ "$(tmp_files "$storage")" = 0 ]; then
    pass "$rt: (d) 150 kB message over a 64 KiB limit refused with 552, nothing stored"
  else
    fail "$rt: (d) oversized message" \
      "expected 552, $(count_files "$new/big/new") in big/new, $(tmp_files "$storage") in tmp/" "$l"
  fi

  # (e) PIPELINING (RFC 2920): swaks sends MAIL/RCPT/DATA as one group.
  l=$work/$rt-pipeline.log
  if swaks_run "$rt-pipeline" --pipeline --to pipe@localhost,pipe2@localhost &&
    grep -q 'PIPELINING' "$l" && [ "$(count_files "$new/pipe/new")" = 1 ] &&
    [ "$(count_files "$new/pipe2/new")" = 1 ]; then
    pass "$rt: (e) swaks --pipeline with two recipients delivers to both"
  else
    fail "$rt: (e) pipelining" "" "$l"
  fi

  # (f) Postfix smtp-source: 4 sessions, 200 messages of 2 KiB.
  l=$work/$rt-source.log
  if timeout 120 smtp-source -s 4 -m 200 -l 2048 -f a@localhost -t u@localhost \
    "127.0.0.1:$port" >"$l" 2>&1; then
    local n
    n=$(count_files "$new/u/new")
    if [ "$n" = 200 ]; then
      pass "$rt: (f) smtp-source -s 4 -m 200 -l 2048 delivers exactly 200 files"
    else
      fail "$rt: (f) smtp-source" "$n files in u/new, expected 200" "$l"
    fi
  else
    fail "$rt: (f) smtp-source" "smtp-source exit status $?" "$l"
  fi

  # (g) SIGTERM while smtp-source is still sending: exit 0, no leftovers in tmp/.
  timeout 60 smtp-source -s 8 -m 1000000 -l 2048 -f a@localhost -t load@localhost \
    "127.0.0.1:$port" >"$work/$rt-load.log" 2>&1 &
  bg_pids+=($!)
  local before i=0 rc=0
  before=$(count_files "$new/load/new")
  while [ "$(count_files "$new/load/new")" -lt $((before + 20)) ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  kill -TERM "$server_pid"
  for i in $(seq 1 300); do # up to 30 s for a graceful stop
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    fail "$rt: (g) SIGTERM" "still running 30 s after SIGTERM (killed)" "$logf"
  else
    wait "$server_pid" || rc=$?
    server_pid=""
    local left
    left=$(tmp_files "$storage")
    if [ "$rc" = 0 ] && [ "$left" = 0 ]; then
      pass "$rt: (g) SIGTERM under load: exit 0, tmp/ empty ($(count_files "$new/load/new") delivered)"
    else
      fail "$rt: (g) SIGTERM" "exit status $rc, $left file(s) left in tmp/" "$logf"
    fi
  fi
  kill -KILL "${bg_pids[@]}" 2>/dev/null || true
  wait "${bg_pids[@]}" 2>/dev/null || true
  bg_pids=()
}

# (i)-(k) TLS: swaks --tls and openssl s_client -starttls smtp on the SMTP port, swaks --tlsc on
# the implicit-TLS port of the same process; each message says ESMTPS in its Received: header.
run_tls() {
  local rt=$1 dir=$work/tls-$1
  local storage=$dir/mail logf=$dir/server.log tls_port l f
  mkdir -p "$dir"
  if ! openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
    -days 2 -subj "/CN=localhost" >"$dir/openssl-req.log" 2>&1; then
    fail "$rt: (i) TLS certificate" "openssl req failed" "$dir/openssl-req.log"
    return
  fi
  tls_port=$(free_port)
  if ! start_server "$rt" "$storage" "$logf" --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" \
    --tls-port "$tls_port"; then
    fail "$rt: (i) TLS server starts" "" "$logf"
    return
  fi
  l=$work/$rt-starttls.log
  if swaks_run "$rt-starttls" --tls --to tls1@localhost && grep -q 'STARTTLS' "$l" &&
    f=$(find "$storage/localhost/tls1/new" -maxdepth 1 -type f 2>/dev/null | head -n1) &&
    [ -n "$f" ] && grep -q ' with ESMTPS id ' "$f"; then
    pass "$rt: (i) swaks --tls delivers over STARTTLS (Received: with ESMTPS)"
  else
    fail "$rt: (i) swaks --tls" "" "$l"
  fi
  l=$work/$rt-s_client.log
  { printf 'EHLO interop.client\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<tls2@localhost>\r\nDATA\r\n'
    sleep 1
    printf 'Subject: via openssl\r\n\r\nhello\r\n.\r\nQUIT\r\n'
    sleep 1
  } | timeout 30 openssl s_client -starttls smtp -connect "127.0.0.1:$port" -quiet >"$l" 2>&1 || true
  if grep -q '^250 2.0.0 Ok: queued as ' "$l" &&
    f=$(find "$storage/localhost/tls2/new" -maxdepth 1 -type f 2>/dev/null | head -n1) &&
    [ -n "$f" ] && grep -q ' with ESMTPS id ' "$f"; then
    pass "$rt: (j) openssl s_client -starttls smtp delivers"
  else
    fail "$rt: (j) openssl s_client -starttls smtp" "" "$l"
  fi
  l=$work/$rt-implicit.log
  if timeout 60 swaks --server "127.0.0.1:$tls_port" --tlsc --helo interop.client \
    --from sender@example.org --to tls3@localhost --timeout 30 >"$l" 2>&1 &&
    f=$(find "$storage/localhost/tls3/new" -maxdepth 1 -type f 2>/dev/null | head -n1) &&
    [ -n "$f" ] && grep -q ' with ESMTPS id ' "$f"; then
    pass "$rt: (k) swaks --tlsc delivers on the implicit-TLS listener of the same process"
  else
    fail "$rt: (k) implicit TLS" "" "$l"
  fi
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# (l)-(o) accounts and submission: `buzon user add`, then swaks --auth PLAIN and LOGIN over
# STARTTLS on the submission port, curl --ssl-reqd with a login, and a wrong password refused.
# The certificate is the one the first start made; curl verifies it (--cacert), swaks does not.
run_auth() {
  local rt=$1 dir=$work/auth-$1
  local storage=$dir/mail logf=$dir/server.log l f box
  mkdir -p "$dir"
  box=$storage/localhost/alice/new
  if ! echo 'interop secret' | "$buzon" user add alice@localhost -s "$storage" >"$dir/user.log" 2>&1; then
    fail "$rt: (l) buzon user add" "" "$dir/user.log"
    return
  fi
  if ! start_server "$rt" "$storage" "$logf"; then
    fail "$rt: (l) server with accounts starts" "" "$logf"
    return
  fi
  local mech n=0
  for mech in PLAIN LOGIN; do
    n=$((n + 1))
    l=$work/$rt-auth-$mech.log
    if timeout 60 swaks --server "127.0.0.1:$sub_port" --tls --auth "$mech" \
        --auth-user alice@localhost --auth-password 'interop secret' --helo interop.client \
        --from alice@localhost --to alice@localhost --header "Subject: auth $mech" \
        --timeout 30 >"$l" 2>&1 && grep -q '^<~  235 ' "$l" &&
      [ "$(count_files "$box")" = "$n" ] && grep -lq "Subject: auth $mech" "$box"/* &&
      grep -q ' with ESMTPSA id ' "$(grep -l "Subject: auth $mech" "$box"/*)"; then
      pass "$rt: (l/m) swaks --tls --auth $mech submits on port $sub_port (Received: with ESMTPSA)"
    else
      fail "$rt: (l/m) swaks --auth $mech" "" "$l"
    fi
  done
  l=$work/$rt-curl.log
  printf 'From: alice@localhost\r\nTo: alice@localhost\r\nSubject: via curl\r\n\r\nhello\r\n' >"$dir/curl-msg.txt"
  if timeout 60 curl -sS --ssl-reqd --cacert "$storage/tls/cert.pem" \
      --url "smtp://127.0.0.1:$sub_port" --user 'alice@localhost:interop secret' \
      --mail-from alice@localhost --mail-rcpt alice@localhost \
      --upload-file "$dir/curl-msg.txt" >"$l" 2>&1 &&
    f=$(grep -l 'Subject: via curl' "$box"/* 2>/dev/null | head -n1) && [ -n "$f" ]; then
    pass "$rt: (n) curl --ssl-reqd with a login submits, the self-signed certificate verified"
  else
    fail "$rt: (n) curl --ssl-reqd" "" "$l"
  fi
  l=$work/$rt-auth-wrong.log
  local before
  before=$(count_files "$box")
  timeout 60 swaks --server "127.0.0.1:$sub_port" --tls --auth PLAIN \
    --auth-user alice@localhost --auth-password wrong --helo interop.client \
    --from alice@localhost --to alice@localhost --timeout 30 >"$l" 2>&1 || true
  if grep -Eq '^<~\* +535 5\.7\.8' "$l" && [ "$(count_files "$box")" = "$before" ] &&
    ! grep -q 'wrong' "$logf"; then
    pass "$rt: (o) a wrong password gets 535 5.7.8, nothing is stored, the log has no password"
  else
    fail "$rt: (o) wrong password" "expected 535 5.7.8" "$l"
  fi
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# (h) `buzon send` through Postfix's smtp-sink: 200 rows, every one accepted.
run_send() {
  local rt=$1 dir=$work/send-$1 sink_port sink_pid l i
  mkdir -p "$dir"
  l=$dir/send.log
  {
    echo "email,name"
    for i in $(seq 1 200); do echo "r$i@sink.example,Row $i"; done
  } >"$dir/rcpt.csv"
  printf 'From: Sender <s@example.org>\nSubject: hi {{ name }}\n\nHello {{ name }}\n' >"$dir/msg.tmpl"
  sink_port=$(free_port)
  smtp-sink -u nobody "127.0.0.1:$sink_port" 64 >"$dir/sink.log" 2>&1 &
  sink_pid=$!
  bg_pids+=("$sink_pid")
  for i in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$sink_port") 2>/dev/null && break
    sleep 0.1
  done
  if timeout 120 "$buzon" send --csv "$dir/rcpt.csv" --template "$dir/msg.tmpl" \
      --server "127.0.0.1:$sink_port" --no-dry-run --concurrency 4 --runtime "$rt" >"$l" 2>&1 \
    && [ "$(grep -c ',sent,' "$dir/rcpt.csv.results.csv")" = 200 ]; then
    pass "$rt: (h) buzon send delivers 200 rows through Postfix smtp-sink"
  else
    fail "$rt: (h) buzon send to smtp-sink" "expected 200 rows sent" "$l"
  fi
  kill -KILL "$sink_pid" 2>/dev/null || true
  wait "$sink_pid" 2>/dev/null || true
  bg_pids=()
}

# shellcheck source=tests/interop_imap.sh
source "$root/tests/interop_imap.sh"
# shellcheck source=tests/interop_nntp.sh
source "$root/tests/interop_nntp.sh"
# shellcheck source=tests/interop_ui.sh
source "$root/tests/interop_ui.sh"

install_tools
if [[ $checks == *" ui "* ]]; then install_ui_tools; fi
build_buzon
first_rt=${runtimes%% *}
for rt in $runtimes; do
  if [[ $checks == *" smtp "* ]]; then run_runtime "$rt"; fi
  if [[ $checks == *" send "* ]]; then run_send "$rt"; fi
  if [[ $checks == *" tls "* ]]; then run_tls "$rt"; fi
  if [[ $checks == *" auth "* ]]; then run_auth "$rt"; fi
  if [[ $checks == *" imap "* ]]; then run_imap "$rt"; fi
  if [[ $checks == *" nntp "* ]]; then run_nntp "$rt"; fi
  if [[ $checks == *" ui "* && $rt == "$first_rt" ]]; then run_ui "$rt"; fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
