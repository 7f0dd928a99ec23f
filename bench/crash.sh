#!/usr/bin/env bash
# Crash safety: SIGKILL `buzon serve` while Python clients send to it, and SIGKILL `buzon send`
# in the middle of a mail merge; then check that nothing acknowledged was lost or torn.
#
#   bench/crash.sh [-r ROUNDS] [-R "smol mio"] [-k KILLS] [-n ROWS] [-s SENDERS] [-K]
#
#   -r  server crash rounds per runtime (default 20)
#   -R  runtimes (default "smol mio"); the mail-merge part uses the same runtime for both the
#       server and `buzon send --runtime`
#   -k  SIGKILLs of `buzon send` per runtime in the mail-merge part (default 5); 0 skips it
#   -n  CSV rows in the mail-merge part (default 200, sent with --rate 25/s --concurrency 4)
#   -s  concurrent Python senders per round (default 4)
#   -K  keep the scratch folder (storage, ack logs, journals, server logs) for inspection
#
# Environment: BUZON_BIN (use this binary; default the release build in cargo's target
# directory, CARGO_TARGET_DIR honoured, built if missing).
# The binary is copied into the scratch folder first, so a rebuild during the run changes
# nothing.
#
# Server part, per runtime, ROUNDS rounds on ONE storage folder kept across the rounds:
#   start `buzon serve` on a free loopback port; start SENDERS Python smtplib clients, each
#   sending messages with a unique marker (Message-ID and X-Crash-Marker), a body of hex lines
#   ending in "END <marker>", its length and SHA-256 in headers; 30 % of the bodies are
#   ~100 KiB, 20 % of the messages have two recipients. A client appends "<marker> <rcpts>" to
#   its ack log (write, flush, fsync) only after the final 250 for that message. After a
#   random 0.2-2 s the server gets SIGKILL; the clients exit on their connection errors.
#   Every fourth round adds a power cut: the links into new/ that the spool still holds (not
#   yet checkpointed, so not yet fsynced) are removed, and the next start, which must replay
#   them, is itself SIGKILLed 0-150 ms after its replay began (during it, or just after it).
#   The server is then started again (its start-up removes tmp/ leftovers) and stopped with
#   SIGTERM (must exit 0), and the checker reads every file of the storage:
#     lost     an acknowledged marker missing from one of its recipients' new/ (any round)
#     dup      a marker stored twice in one mailbox (clients never re-send a marker, so any
#              duplicate would come from the server)
#     partial  a file in new/ whose name is not <unique>,S=<size>, whose size differs from
#              S=, whose headers or body do not parse, whose body length or SHA-256 is wrong,
#              or which does not end with the full "END <marker>" line
#     tmp      files left in any tmp/ after the restart;  cur  files in cur/ (none expected)
#   Files verified in an earlier round are only checked to be there with the same size; the
#   last round re-reads and re-verifies every file. A round passes when all of these are 0.
#   Counts in the summary line are deliveries (message x recipient) over all rounds so far;
#   "in tmp/ at the kill" counts deliveries the kill cut short (mid-DATA or before the link),
#   which the restart must remove; "unacked" (stored, but the 250 never reached the client:
#   the kill landed between the link and the reply) is counted, not an error.
#
# Mail-merge part, per runtime: a fresh server and storage; a CSV of ROWS rows (email
# m<i>@localhost, column row) and a template with X-Row; `buzon send --rate 25/s` is
# SIGKILLed at a random 0.3-1.3 s, KILLS times (re-run each time on the same journal), then
# run to completion without --rate (must exit 0). The journal is read after each kill; its
# lines since the run began give the rows in flight at that kill (a `start` line without a
# later `sent` or `clear`; a torn last line does not count). Passes when every row has at
# least one message (with the right X-Row), and each row has at most 1 + (number of kills it
# was in flight at) messages, so a row with two copies must have been in flight at a kill; and
# no kill found more than --concurrency (4) rows in flight.
#
# Prints PASS/FAIL per round and "N passed, M failed"; exits 1 if anything failed.
# Needs: python3, cargo (unless BUZON_BIN or the binary exists). About 2-3 minutes; results
# and the bug found on the way: docs/reliability-crash.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh disable=SC1091
. "$here/lib.sh"

rounds=20 runtimes="smol mio" kills=5 rows=200 senders=4 keep=0
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 2; }
while getopts "r:R:k:n:s:Kh" opt; do
  case $opt in
    r) rounds=$OPTARG ;; R) runtimes=$OPTARG ;; k) kills=$OPTARG ;; n) rows=$OPTARG ;;
    s) senders=$OPTARG ;; K) keep=1 ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 2; }
py=$(python3 -c 'import sys; print(sys.executable)') # skips version-manager shims

work=$(mktemp -d "${TMPDIR:-/tmp}/buzon-crash.XXXXXX")
runid=${work##*.} # in every marker, so no two runs can share one
server_pid=""
port=""    # set by start_listener (lib.sh)
stop_rc=0  # set by stop_server (lib.sh)
send_pid=""
bg_pids=()
passed=0
failed=0

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local pid
  for pid in "${bg_pids[@]}" $server_pid $send_pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$keep" = 1 ] || [ "$failed" != 0 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# rand_delay LO HI: a random number of seconds in [LO, HI], two decimals.
rand_delay() { awk -v r="$RANDOM" -v lo="$1" -v hi="$2" 'BEGIN { printf "%.2f", lo + (hi - lo) * r / 32767 }'; }

# --- the binary ----------------------------------------------------------------------------
if [ -n "${BUZON_BIN:-}" ]; then
  bin=$BUZON_BIN
else
  bin=$(buzon_release_bin --if-missing) # the release build, wherever cargo puts it
fi
[ -x "$bin" ] || { echo "no buzon binary at $bin" >&2; exit 2; }
cp "$bin" "$work/buzon"
buzon=$work/buzon

# --- the Python client and checker ---------------------------------------------------------
cat >"$work/sender.py" <<'EOF'
# sender.py PORT TAG ACKLOG SECONDS READY: send until the server goes away (or SECONDS pass);
# log "<marker>\t<rcpt,...>" (fsynced) for each message whose final 250 arrived; create the
# file READY once the first session is open.
import hashlib, os, random, smtplib, sys, time

port, tag, acklog, secs, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
rng = random.Random()
deadline = time.monotonic() + secs
ack = open(acklog, "a")
seq = 0


def message(marker, rcpts):
    k = rng.random()
    if k < 0.3:
        n = 100 * 1024 + rng.randrange(4096)
    elif k < 0.4:
        n = rng.randrange(10000, 60000)
    else:
        n = rng.randrange(50, 4000)
    raw = os.urandom(n // 2 + 1).hex()[:n]
    lines = [raw[i:i + 76] for i in range(0, len(raw), 76)] + ["END " + marker]
    body = ("\r\n".join(lines) + "\r\n").encode()
    head = (
        "From: <crash@sender.test>\r\n"
        f"To: {', '.join(rcpts)}\r\n"
        f"Subject: crash {marker}\r\n"
        f"Message-ID: <{marker}@crash.test>\r\n"
        f"X-Crash-Marker: {marker}\r\n"
        f"X-Body-Length: {len(body)}\r\n"
        f"X-Body-SHA256: {hashlib.sha256(body).hexdigest()}\r\n"
        "\r\n"
    )
    return head.encode() + body


while time.monotonic() < deadline:
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("crash.client")
    except (OSError, smtplib.SMTPException):
        break  # the server is gone
    open(ready, "a").close()
    try:
        for _ in range(rng.randrange(1, 40)):
            if time.monotonic() >= deadline:
                break
            seq += 1
            marker = f"{tag}-{seq}"
            users = rng.sample(["u0", "u1", "u2", "u3"], 2 if rng.random() < 0.2 else 1)
            rcpts = [u + "@localhost" for u in users]
            refused = s.sendmail("crash@sender.test", rcpts, message(marker, rcpts))
            ok = [r for r in rcpts if r not in refused]
            ack.write(f"{marker}\t{','.join(ok)}\n")
            ack.flush()
            os.fsync(ack.fileno())
        s.quit()
    except (OSError, smtplib.SMTPException):
        try:
            s.close()
        except OSError:
            pass
EOF

cat >"$work/check.py" <<'EOF'
# check.py STATE full|quick STORAGE ACKLOG...: verify every file of STORAGE against the ack
# logs; one summary line on stdout, details on stderr; exit 1 on lost, dup, partial, tmp or cur
# files. STATE caches "name size marker" of files verified earlier: in quick mode such a file
# is only checked to be there with the same size (new/ files are never rewritten); full mode
# reads and verifies every file again.
import collections, hashlib, os, re, sys

state, mode, storage, acklogs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cache = {}
if mode == "quick" and os.path.exists(state):
    for line in open(state):
        p, size, marker = line.rstrip("\n").split("\t")
        cache[p] = (int(size), marker)
verified = {}
name_re = re.compile(r"^[^/,]+,S=(\d+)$")
found = collections.defaultdict(collections.Counter)  # mailbox -> marker -> copies
partial = tmp = cur = 0
problems = []


def bad(path, why):
    global partial
    partial += 1
    problems.append(f"partial: {path}: {why}")


for dom in sorted(os.listdir(storage)):
    ddir = os.path.join(storage, dom)
    if not os.path.isdir(ddir):
        continue
    for user in sorted(os.listdir(ddir)):
        mdir = os.path.join(ddir, user)
        box = f"{user}@{dom}"
        for f in os.listdir(os.path.join(mdir, "tmp")) if os.path.isdir(os.path.join(mdir, "tmp")) else []:
            tmp += 1
            problems.append(f"tmp: {os.path.join(mdir, 'tmp', f)}")
        for f in os.listdir(os.path.join(mdir, "cur")) if os.path.isdir(os.path.join(mdir, "cur")) else []:
            cur += 1
            problems.append(f"cur: {os.path.join(mdir, 'cur', f)}")
        ndir = os.path.join(mdir, "new")
        for f in os.listdir(ndir) if os.path.isdir(ndir) else []:
            p = os.path.join(ndir, f)
            if p in cache and cache[p][0] == os.stat(p).st_size:
                found[box][cache[p][1]] += 1
                verified[p] = cache[p]
                continue
            data = open(p, "rb").read()
            m = name_re.match(f)
            if not m:
                bad(p, "name is not <unique>,S=<size>")
                continue
            if int(m.group(1)) != len(data):
                bad(p, f"S={m.group(1)} but {len(data)} bytes")
                continue
            i = data.find(b"\r\n\r\n")
            if i < 0:
                bad(p, "no end of headers")
                continue
            hdr = {}
            for line in data[:i].decode("latin-1").split("\r\n"):
                if ":" in line and not line[:1].isspace():
                    k, v = line.split(":", 1)
                    hdr.setdefault(k.strip().lower(), v.strip())
            body = data[i + 4:]
            marker = hdr.get("x-crash-marker")
            if marker is None:
                bad(p, "no X-Crash-Marker header")
                continue
            if hdr.get("message-id") != f"<{marker}@crash.test>":
                bad(p, f"Message-ID {hdr.get('message-id')!r} does not match {marker}")
            elif str(len(body)) != hdr.get("x-body-length"):
                bad(p, f"body is {len(body)} bytes, header says {hdr.get('x-body-length')}")
            elif hashlib.sha256(body).hexdigest() != hdr.get("x-body-sha256"):
                bad(p, "body SHA-256 mismatch")
            elif not body.endswith(f"\r\nEND {marker}\r\n".encode()):
                bad(p, "body does not end with the END line")
            else:
                found[box][marker] += 1
                verified[p] = (len(data), marker)

acked = lost = 0
acked_pairs = set()
for log in acklogs:
    data = open(log, "rb").read().decode()
    for line in data.split("\n"):
        if not line:
            continue
        marker, rcpts = line.split("\t")
        for r in filter(None, rcpts.split(",")):
            acked += 1
            acked_pairs.add((r, marker))
            if found[r][marker] < 1:
                lost += 1
                problems.append(f"lost: {marker} for {r} (acknowledged with 250, not in new/)")
dup = 0
stored = unacked = 0
for box, c in found.items():
    for marker, n in c.items():
        stored += n
        if n > 1:
            dup += n - 1
            problems.append(f"dup: {marker} stored {n} times in {box}")
        if (box, marker) not in acked_pairs:
            unacked += 1
with open(state + ".new", "w") as out:
    for p, (size, marker) in verified.items():
        out.write(f"{p}\t{size}\t{marker}\n")
os.replace(state + ".new", state)
for p in problems[:30]:
    print("    " + p, file=sys.stderr)
print(f"acked={acked} stored={stored} unacked={unacked} lost={lost} dup={dup} "
      f"partial={partial} tmp={tmp} cur={cur}")
sys.exit(1 if lost or dup or partial or tmp or cur else 0)
EOF

cat >"$work/spooled.py" <<'EOF'
# spooled.py STORAGE [unlink]: the intact records in STORAGE/.spool/*.log (format in
# mailstore/src/spool.rs); prints "records=N files=M". With "unlink", removes each record's
# file from its mailboxes' new/: the links a power cut could lose (they are not fsynced until
# a checkpoint), so that the next start must replay them from the spool.
import glob, os, struct, sys, zlib

storage = sys.argv[1]
unlink = len(sys.argv) > 2 and sys.argv[2] == "unlink"
records = files = 0
for seg in sorted(glob.glob(os.path.join(storage, ".spool", "*.log"))):
    data = open(seg, "rb").read()
    at = 0
    while at + 24 <= len(data) and data[at:at + 4] == b"BZS1":
        meta_len, body_len, meta_crc, body_crc = struct.unpack_from("<IQII", data, at + 4)
        meta = data[at + 24:at + 24 + meta_len]
        body = data[at + 24 + meta_len:at + 24 + meta_len + body_len]
        if len(body) != body_len or zlib.crc32(meta) != meta_crc or zlib.crc32(body) != body_crc:
            break
        at += 24 + meta_len + body_len
        records += 1
        name, *dirs = meta.decode().split("\n")
        for d in dirs:
            p = os.path.join(storage, d, "new", name)
            if unlink and os.path.exists(p):
                os.remove(p)
                files += 1
print(f"records={records}" + (f" files={files}" if unlink else ""))
EOF

cat >"$work/merge_check.py" <<'EOF'
# merge_check.py STORAGE ROWS CONCURRENCY SNAPSHOT...: each SNAPSHOT is the journal right
# after a kill.
import collections, os, re, sys

storage, rows, conc, snaps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
problems = []


def complete(data):
    i = data.rfind(b"\n")
    return data[: i + 1] if i >= 0 else b""


inflight = collections.Counter()  # email -> kills at which it was in flight
prev = b""
total_inflight = 0
for s in snaps:
    data = complete(open(s, "rb").read())
    # The next run truncates a torn last line, so its own lines start after the complete ones.
    seg = data[len(prev):] if data.startswith(prev) else None
    if seg is None:
        print(f"    journal {s} does not extend the previous snapshot", file=sys.stderr)
        sys.exit(1)
    started = set()
    for line in seg.decode().split("\n"):
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        kind, _, email = parts
        if kind == "start":
            started.add(email)
        elif kind in ("sent", "clear"):
            started.discard(email)
    if len(started) > conc:
        problems.append(f"{s}: {len(started)} rows in flight, more than --concurrency {conc}")
    for e in started:
        inflight[e] += 1
    total_inflight += len(started)
    prev = data

missing = over = twice = 0
for i in range(rows):
    email = f"m{i}@localhost"
    ndir = os.path.join(storage, "localhost", f"m{i}", "new")
    files = os.listdir(ndir) if os.path.isdir(ndir) else []
    for f in files:
        body = open(os.path.join(ndir, f), "rb").read()
        if not re.search(rb"\r\nX-Row: %d\r\n" % i, body):
            problems.append(f"{ndir}/{f}: no 'X-Row: {i}' header")
    n = len(files)
    if n == 0:
        missing += 1
        problems.append(f"row {i} ({email}): no message")
    elif n > 1:
        twice += 1
        if n - 1 > inflight[email]:
            over += 1
            problems.append(f"row {i} ({email}): {n} copies but in flight at {inflight[email]} kill(s)")
for p in problems[:30]:
    print("    " + p, file=sys.stderr)
print(f"rows={rows} kills={len(snaps)} in_flight_at_kills={total_inflight} "
      f"duplicated_rows={twice} missing={missing} unexplained_duplicates={over}")
sys.exit(1 if missing or over or problems else 0)
EOF

# --- server crash rounds -------------------------------------------------------------------
crash_rounds() {
  local rt=$1
  local dir=$work/$rt
  local storage=$dir/mail
  mkdir -p "$dir/acks" "$storage"
  echo "== $rt: $rounds server crash rounds, $senders senders each, storage $storage"
  local r i n left delay out rc mode
  for r in $(seq 1 "$rounds"); do
    if ! start_listener "$dir/serve-$r.log" "$buzon" serve --runtime "$rt" --imap off --imaps off --nntp off --nntps off -d localhost \
      -s "$storage" -p @PORT@ --bind 127.0.0.1 --hostname crash.test; then
      fail "$rt round $r: server does not start"
      sed 's/^/    | /' "$dir/serve-$r.log" | tail -n 10
      continue
    fi
    bg_pids=()
    for i in $(seq 1 "$senders"); do
      timeout 60 "$py" "$work/sender.py" "$port" "$rt-$runid-r$r-s$i" "$dir/acks/r$r-s$i.log" 30 \
        "$dir/ready-$r-$i" 2>"$dir/sender-r$r-s$i.err" &
      bg_pids+=($!)
    done
    # The delay counts from the moment every sender has its session open (at most 10 s).
    for _ in $(seq 1 200); do
      [ "$(find "$dir" -maxdepth 1 -name "ready-$r-*" | wc -l)" -lt "$senders" ] || break
      sleep 0.05
    done
    delay=$(rand_delay 0.2 2.0)
    sleep "$delay"
    kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    for i in "${bg_pids[@]}"; do wait "$i" 2>/dev/null || true; done
    bg_pids=()
    touch "$dir/acks/r$r-s1.log"
    # Deliveries the kill cut short (mid-DATA or before the link into new/).
    left=$(find "$storage" -mindepth 4 -maxdepth 4 -type f -path "$storage/*/*/tmp/*" | wc -l)
    # Every fourth round, a power cut on top: the links not yet checkpointed are removed, so
    # the start must replay them from the spool; and that start is itself SIGKILLed a random
    # moment in, during the replay or just after it. The replay must be idempotent.
    replay=""
    if [ $((r % 4)) = 0 ]; then
      cut=$("$py" "$work/spooled.py" "$storage" unlink)
      NO_COLOR=1 "$buzon" serve --runtime "$rt" --imap off --imaps off --nntp off --nntps off -d localhost \
        -s "$storage" -p "$(free_port)" --bind 127.0.0.1 --hostname crash.test >"$dir/recover-$r.log" 2>&1 &
      server_pid=$!
      # The kill lands 0-150 ms after the replay has begun (it says so in its log).
      for _ in $(seq 1 1000); do
        grep -q "spool: replaying" "$dir/recover-$r.log" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.005
      done
      sleep "$(rand_delay 0.00 0.15)"
      kill -KILL "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
      server_pid=""
      if grep -q "spool recovered" "$dir/recover-$r.log"; then when="after the replay"; else when="during the replay"; fi
      replay="; power cut: $cut unlinked, start killed $when ($("$py" "$work/spooled.py" "$storage") left)"
    fi
    # Restart: start-up removes tmp/ leftovers; then a graceful stop.
    if ! start_listener "$dir/restart-$r.log" "$buzon" serve --runtime "$rt" --imap off --imaps off --nntp off --nntps off -d localhost \
      -s "$storage" -p @PORT@ --bind 127.0.0.1 --hostname crash.test; then
      fail "$rt round $r: server does not restart after SIGKILL"
      sed 's/^/    | /' "$dir/restart-$r.log" | tail -n 10
      continue
    fi
    stop_server
    rc=0
    mode=quick
    [ "$r" != "$rounds" ] || mode=full # the last round re-reads everything
    out=$("$py" "$work/check.py" "$dir/verified" "$mode" "$storage" "$dir"/acks/*.log 2>"$dir/check-$r.err") || rc=$?
    n=$(cat "$dir"/acks/r"$r"-s*.log | wc -l)
    if [ "$rc" = 0 ] && [ "$stop_rc" = 0 ]; then
      pass "$rt round $r: killed after ${delay}s, $n msgs acked, $left in tmp/ at the kill$replay; all rounds: $out"
    else
      fail "$rt round $r: killed after ${delay}s, $n msgs acked, $left in tmp/ at the kill$replay; all rounds: $out; restart exit $stop_rc"
      sed 's/^/    | /' "$dir/check-$r.err"
    fi
    echo "$rt $out" >"$work/totals-$rt.txt"
  done
}

# --- mail merge: SIGKILL the sender --------------------------------------------------------
merge_part() {
  local rt=$1
  local dir=$work/merge-$rt
  local storage=$dir/mail csv=$dir/rows.csv
  mkdir -p "$dir"
  {
    echo "email,row"
    for i in $(seq 0 $((rows - 1))); do echo "m$i@localhost,$i"; done
  } >"$csv"
  printf 'From: <merge@crash.test>\nSubject: row {{ row }}\nX-Row: {{ row }}\n\nHello row {{ row }}.\n' \
    >"$dir/message.tmpl"
  echo "== $rt: mail merge, $rows rows at 25/s, $kills SIGKILLs of buzon send"
  if ! start_listener "$dir/serve.log" "$buzon" serve --runtime "$rt" --imap off --imaps off --nntp off --nntps off -d localhost \
    -s "$storage" -p @PORT@ --bind 127.0.0.1 --hostname crash.test; then
    fail "$rt mail merge: server does not start"
    return
  fi
  local k delay snaps=() rc=0 out
  # --rate and --concurrency last: the final run drops them. Plain SMTP: the server's
  # STARTTLS certificate is self-signed, and this part is about the journal, not TLS.
  send_cmd=("$buzon" send --runtime "$rt" --csv "$csv" --template "$dir/message.tmpl"
    --server "127.0.0.1:$port" --tls none --no-dry-run --rate 25/s --concurrency 4)
  for k in $(seq 1 "$kills"); do
    NO_COLOR=1 "${send_cmd[@]}" >"$dir/send-$k.out" 2>&1 &
    send_pid=$!
    delay=$(rand_delay 0.3 1.3)
    sleep "$delay"
    if kill -KILL "$send_pid" 2>/dev/null; then
      echo "   kill $k after ${delay}s"
    else
      echo "   kill $k after ${delay}s: buzon send had already exited"
    fi
    wait "$send_pid" 2>/dev/null || true
    send_pid=""
    cp "$csv.journal" "$dir/journal-$k" 2>/dev/null || : >"$dir/journal-$k"
    snaps+=("$dir/journal-$k")
  done
  # The last run goes without --rate: it only has to finish (and with --rate the tail of a
  # campaign can crawl, see docs/reliability-crash.md).
  NO_COLOR=1 timeout 120 "${send_cmd[@]:0:${#send_cmd[@]}-4}" --concurrency 4 >"$dir/send-final.out" 2>&1 || rc=$?
  stop_server
  if [ "$rc" != 0 ]; then
    fail "$rt mail merge: the final run exited $rc"
    sed 's/^/    | /' "$dir/send-final.out" | tail -n 10
    return
  fi
  rc=0
  out=$("$py" "$work/merge_check.py" "$storage" "$rows" 4 "${snaps[@]}" 2>"$dir/check.err") || rc=$?
  if [ "$rc" = 0 ]; then
    pass "$rt mail merge: $out; final run: $(grep '^sent [0-9]' "$dir/send-final.out" | head -n1)"
  else
    fail "$rt mail merge: $out"
    sed 's/^/    | /' "$dir/check.err"
  fi
}

# In braces, ending in exit: bash reads a script as it runs, and this way an edit of the file
# during a run cannot make it execute shifted text.
{
start=$SECONDS
for rt in $runtimes; do
  crash_rounds "$rt"
  [ "$kills" = 0 ] || merge_part "$rt"
done
for rt in $runtimes; do
  [ ! -f "$work/totals-$rt.txt" ] || echo "== $rt totals after the last round: $(cut -d' ' -f2- "$work/totals-$rt.txt")"
done
echo "== $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
exit
}
