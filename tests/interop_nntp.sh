# NNTP checks of tests/interop.sh (sourced by it; uses its helpers and variables).
#
# (t)-(w): slrn (driven by an S-Lang hook under `script`, as it needs a terminal) and tin (in
# its batch mode) read a user's notice group; Python's nntplib reads it over NNTPS with the
# certificate checked; the external feed posts every notice into a real INN, started on a free
# loopback port with its own configuration, and killed (SIGKILL) and started again while mail
# arrives: every notice arrives exactly once.

# inn_setup DIR PORT: an INN instance under DIR listening on 127.0.0.1:PORT, with the group
# local.notices and a reader "feeder" (password s3cret) allowed to post.
inn_setup() {
  local d=$1 port=$2
  mkdir -p "$d"/{etc,db,spool/{articles,overview,incoming/tmp,outgoing,archive},run,log,http}
  cp -r /etc/news/. "$d/etc/"
  sed -i -e "s#/etc/news#$d/etc#g" -e "s#/var/lib/news#$d/db#g" -e "s#/var/spool/news#$d/spool#g" \
    -e "s#/run/news#$d/run#g" -e "s#/var/log/news#$d/log#g" -e "s#/var/www/inn#$d/http#g" \
    -e "s#^port:.*#port: $port#" -e "s#^nnrpdpostport:.*#nnrpdpostport: $port#" \
    -e "s#^pathhost:.*#pathhost: inn.interop.test#" -e "s#^doinnwatch:.*#doinnwatch: false#" \
    -e "s#^htmlstatus:.*#htmlstatus: false#" -e "s#^domain:.*#domain: localdomain#" "$d/etc/inn.conf"
  grep -q '^domain:' "$d/etc/inn.conf" || echo "domain: localdomain" >>"$d/etc/inn.conf"
  echo "bindaddress: 127.0.0.1" >>"$d/etc/inn.conf"
  printf '%s 0000000000 0000000001 %s\n' control n control.cancel n junk n local.notices y >"$d/db/active"
  : >"$d/db/active.times"
  : >"$d/db/newsgroups"
  : >"$d/db/history"
  cat >"$d/etc/readers.conf" <<RC
auth "feed" {
    auth: "ckpasswd -f $d/etc/passwd.nntp"
}
access "feed" {
    users: "feeder"
    newsgroups: "*"
    access: RPA
}
RC
  echo "feeder:$(openssl passwd -1 s3cret)" >"$d/etc/passwd.nntp"
  chown -R news:news "$d"
  (cd "$d/db" && su news -s /bin/sh -c "INNCONF=$d/etc/inn.conf /usr/lib/news/bin/makedbz -i -o")
}

# inn_start DIR PORT: starts innd in the foreground of a background job; sets $inn_pid.
inn_start() {
  local d=$1 port=$2 i
  rm -f "$d"/run/*
  INNCONF=$d/etc/inn.conf /usr/lib/news/bin/innd -f >>"$d/innd.out" 2>&1 &
  inn_pid=$!
  bg_pids+=("$inn_pid")
  for i in $(seq 1 100); do
    if python3 -W ignore -c "
import nntplib, sys
s = nntplib.NNTP('127.0.0.1', $port, readermode=True, timeout=5)
s.login('feeder', 's3cret'); s.group('local.notices'); s.quit()" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

inn_stop() {
  kill -KILL "$inn_pid" 2>/dev/null || true
  wait "$inn_pid" 2>/dev/null || true
}

# The message-ids in INN's local.notices, one per line, sorted.
inn_ids() {
  python3 -W ignore - "$1" <<'PY'
import nntplib, sys
s = nntplib.NNTP("127.0.0.1", int(sys.argv[1]), readermode=True, timeout=10)
s.login("feeder", "s3cret")
_, count, first, last, _ = s.group("local.notices")
ids = []
if count:
    ids = [o["message-id"] for _, o in s.over((first, last))[1]]
print("\n".join(sorted(ids)))
s.quit()
PY
}

run_nntp() {
  local rt=$1 dir=$work/nntp-$1
  local storage=$dir/mail logf=$dir/server.log l home inn_dir inn_port
  mkdir -p "$dir"
  # innd runs as the news user, which must reach its folder inside ours.
  chmod 711 "$work" "$dir"
  inn_dir=$dir/inn
  inn_port=$(free_port)
  l=$work/$rt-inn-setup.log
  if ! inn_setup "$inn_dir" "$inn_port" >"$l" 2>&1 || ! inn_start "$inn_dir" "$inn_port"; then
    fail "$rt: (w) INN starts on loopback with its own configuration" "" "$l"
    return
  fi
  if ! echo 'newssecret' | "$buzon" user add alice@localhost -s "$storage" >"$dir/user.log" 2>&1 ||
    ! BUZON_NOTIFY_NNTP_PASSWORD=s3cret start_server "$rt" "$storage" "$logf" \
      --allow-plaintext-auth-on-loopback --notify-nntp "nntp://feeder@127.0.0.1:$inn_port/local.notices"; then
    fail "$rt: (t) NNTP server with an account and a feed starts" "" "$logf"
    inn_stop
    return
  fi
  swaks_run "$rt-nntp-1" --to alice@localhost --header "Subject: first for news $rt" || true
  swaks_run "$rt-nntp-2" --to alice@localhost --header "Subject: second for news $rt" || true
  local group=buzon.mail.localhost.alice i
  # The notices are made beside delivery; wait for the second.
  for i in $(seq 1 100); do
    [ "$(find "$storage/localhost/alice/buzon-news/articles" -type f -name '[0-9]*' 2>/dev/null | wc -l)" = 2 ] && break
    sleep 0.1
  done

  # (t) slrn: an S-Lang hook selects the group, opens the first article, writes it out, quits.
  home=$dir/slrn-home
  mkdir -p "$home"
  cat >"$home/slrnrc" <<RC
set hostname "interop.test"
set username "alice"
set realname "Alice"
nnrpaccess "127.0.0.1" "alice@localhost" "newssecret"
interpret "$home/dump.sl"
RC
  cat >"$home/dump.sl" <<'SL'
define group_mode_startup_hook ()
{
   variable fp = fopen (getenv ("SLRN_OUT"), "w");
   if (0 == group_search ("buzon.mail.localhost.alice"))
     {
        () = fputs ("no group\n", fp);
        () = fclose (fp);
        quit (1);
     }
   () = select_group ();
   () = fputs ("subject: " + extract_article_header ("Subject") + "\n", fp);
   call ("article_page_down");
   () = fputs (article_as_string (), fp);
   () = fclose (fp);
   quit (0);
}
SL
  echo "$group:" >"$home/newsrc"
  l=$work/$rt-slrn.log
  if HOME=$home SLRN_OUT=$home/out TERM=vt100 timeout 60 script -qec \
      "slrn --nntp -h 127.0.0.1 -p $nntp_port -f $home/newsrc -i $home/slrnrc -n -k" /dev/null >"$l" 2>&1 &&
    grep -q "^subject: New mail from .*: first for news $rt\$" "$home/out" &&
    grep -q "^Open:    imap://alice%40localhost@127.0.0.1:$imap_port/INBOX;UIDVALIDITY=[0-9]*/;UID=1" "$home/out" &&
    ! grep -q "XOVER support disabled" "$l"; then
    pass "$rt: (t) slrn reads the notice group over XOVER and opens the first notice"
  else
    [ -f "$home/out" ] && cat "$home/out" >>"$l"
    fail "$rt: (t) slrn" "" "$l"
  fi

  # (u) tin in batch mode saves the unread notices of the subscribed group.
  home=$dir/tin-home
  mkdir -p "$home"
  echo "127.0.0.1 newssecret alice@localhost" >"$home/.newsauth"
  chmod 600 "$home/.newsauth"
  echo "$group:" >"$home/.newsrc"
  l=$work/$rt-tin.log
  if (cd "$home" && HOME=$home timeout 60 tin -r -g 127.0.0.1 -p "$nntp_port" -A -S -v -n -q) >"$l" 2>&1 &&
    [ "$(find "$home/News/buzon/mail/localhost/alice" -type f | wc -l)" = 2 ] &&
    grep -q "^Subject: New mail from .*: second for news $rt" "$home/News/buzon/mail/localhost/alice/2"; then
    pass "$rt: (u) tin -S saves both notices of the group"
  else
    fail "$rt: (u) tin" "" "$l"
  fi

  # (v) nntplib over NNTPS, certificate checked: by number, by message-id, OVER.
  l=$work/$rt-nntplib.log
  if python3 -W ignore - "$nntps_port" "$storage/tls/cert.pem" "$group" >"$l" 2>&1 <<'PY'
import nntplib, ssl, sys
port, cert, group = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = nntplib.NNTP_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=cert))
s.login("alice@localhost", "newssecret")
_, count, first, last, _ = s.group(group)
assert (count, first, last) == (2, 1, 2), (count, first, last)
_, info = s.article(2)
_, again = s.article(info.message_id)
assert again.lines == info.lines, (info, again)
_, over = s.over((1, 2))
assert [n for n, _ in over] == [1, 2] and "first for news" in over[0][1]["subject"], over
s.quit()
PY
  then
    pass "$rt: (v) nntplib over NNTPS reads the group by number, by message-id and OVER"
  else
    fail "$rt: (v) nntplib" "" "$l"
  fi

  # (w) The feed: the two notices reach INN; INN is killed as five more mails arrive (their
  # notices wait in the queue, and the log says why), then started again; each of the seven
  # arrives exactly once.
  l=$work/$rt-inn-feed.log
  : >"$l"
  local want
  for i in $(seq 1 100); do
    [ "$(inn_ids "$inn_port" 2>>"$l" | grep -c . || true)" = 2 ] && break
    sleep 0.1
  done
  # One mail races the kill, four come while INN is down; they must wait in the queue.
  swaks_run "$rt-nntp-during-1" --to alice@localhost --header "Subject: during 1" &
  local sender=$!
  inn_stop
  wait "$sender" || true
  for i in 2 3 4 5; do
    swaks_run "$rt-nntp-during-$i" --to alice@localhost --header "Subject: during $i" || true
  done
  sleep 1.5
  local queued
  queued=$(find "$storage/.buzon-feed/queue" -type f ! -name '.*' | wc -l)
  inn_start "$inn_dir" "$inn_port" >>"$l" 2>&1 || echo "INN did not start again" >>"$l"
  want=$(find "$storage/localhost/alice/buzon-news/articles" -type f -name '[0-9]*' 2>/dev/null | wc -l)
  for i in $(seq 1 300); do
    [ "$(inn_ids "$inn_port" 2>>"$l" | grep -c . || true)" -ge 7 ] && break
    sleep 0.1
  done
  sleep 1
  local got distinct
  got=$(inn_ids "$inn_port" 2>>"$l" || true)
  distinct=$(echo "$got" | sort -u | grep -c . || true)
  if [ "$want" = 7 ] && [ "$queued" -ge 4 ] && grep -q "notice feed: cannot post" "$logf" &&
    [ "$(echo "$got" | grep -c . || true)" = 7 ] && [ "$distinct" = 7 ] &&
    [ "$(echo "$got" | grep -c '\.buzon\.mail\.localhost\.alice@interop\.test>$' || true)" = 7 ]; then
    pass "$rt: (w) the feed posts all 7 notices into INN exactly once, $queued of them queued across INN's SIGKILL and restart"
  else
    { echo "notices made: $want; queued while INN was down: $queued"; echo "in INN:"; echo "$got"; tail -n 20 "$logf"; } >>"$l"
    fail "$rt: (w) the feed into INN" "" "$l"
  fi
  inn_stop
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
