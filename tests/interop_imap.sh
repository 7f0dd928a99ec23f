# IMAP checks of tests/interop.sh (sourced by it; uses its helpers and variables).
#
# (p)-(s): curl over STARTTLS and implicit TLS, mbsync pulling, pushing and syncing flags,
# neomutt in batch mode, and Dovecot reading the tree buzon wrote while buzon reads what
# Dovecot appended.

run_imap() {
  local rt=$1 dir=$work/imap-$1
  local storage=$dir/mail logf=$dir/server.log l f box cert
  mkdir -p "$dir"
  box=$storage/localhost/alice
  cert=$storage/tls/cert.pem
  if ! echo 'imap secret' | "$buzon" user add alice@localhost -s "$storage" >"$dir/user.log" 2>&1 ||
    ! start_server "$rt" "$storage" "$logf"; then
    fail "$rt: (p) IMAP server with an account starts" "" "$logf"
    return
  fi
  swaks_run "$rt-imap-deliver" --to alice@localhost --header "Subject: for imap $rt" || true
  local want=$dir/want.eml got scheme
  f=$(find "$box/new" "$box/cur" -type f 2>/dev/null | head -n1) || true
  [ -n "$f" ] && cp "$f" "$want"
  for scheme in imap imaps; do
    l=$work/$rt-curl-$scheme.log
    got=$dir/got-$scheme.eml
    local p=$imap_port extra=(--ssl-reqd)
    if [ $scheme = imaps ]; then
      p=$imaps_port
      extra=()
    fi
    if [ -n "$f" ] && timeout 60 curl -sS "${extra[@]}" --cacert "$cert" \
        --user 'alice@localhost:imap secret' "$scheme://127.0.0.1:$p/INBOX;UID=1" \
        -o "$got" >"$l" 2>&1 && cmp -s "$want" "$got"; then
      pass "$rt: (p) curl $scheme:// fetches the delivered message byte for byte (TLS verified)"
    else
      fail "$rt: (p) curl $scheme://" "" "$l"
    fi
  done
  imap_mbsync "$rt" "$dir" "$box" "$cert"
  imap_neomutt "$rt" "$dir" "$cert"
  imap_dovecot "$rt" "$storage" "$cert"
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# mbsync: pull, then push a new local message and a flag change.
imap_mbsync() {
  local rt=$1 dir=$2 box=$3 cert=$4
  local local_dir=$dir/local rc=$dir/mbsyncrc l=$work/$1-mbsync.log f
  mkdir -p "$local_dir"
  cat >"$rc" <<MBSYNC
IMAPAccount buzon
Host 127.0.0.1
Port $imaps_port
User alice@localhost
Pass "imap secret"
SSLType IMAPS
CertificateFile $cert

IMAPStore remote
Account buzon

MaildirStore local
Path $local_dir/
Inbox $local_dir/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Sync All
Expunge Both
SyncState *
MBSYNC
  if timeout 60 mbsync -c "$rc" -a >"$l" 2>&1 &&
    grep -lq "Subject: for imap $rt" "$local_dir"/INBOX/{new,cur}/* 2>/dev/null &&
    [ -d "$local_dir/Sent" ]; then
    pass "$rt: (q) mbsync pulls INBOX and the folders into a local Maildir"
  else
    fail "$rt: (q) mbsync pull" "" "$l"
  fi
  printf 'Subject: pushed by mbsync\r\n\r\nhello\r\n' >"$local_dir/INBOX/new/1700000000.push.local"
  # curl's FETCH above set \Seen, so the pulled copy may sit in cur/ with its info.
  f=$(grep -l "Subject: for imap $rt" "$local_dir"/INBOX/{new,cur}/* 2>/dev/null | head -n1) || true
  if [ -n "$f" ]; then
    local name
    name=$(basename "$f")
    mv "$f" "$local_dir/INBOX/cur/${name%%:*}:2,FS"
  fi
  sleep 1 # mbsync leaves alone a Maildir changed within the last second
  if timeout 60 mbsync -c "$rc" -a >>"$l" 2>&1 &&
    grep -lq 'Subject: pushed by mbsync' "$box"/cur/* "$box"/new/* 2>/dev/null &&
    find "$box/cur" -name '*:2,FS' | grep -q .; then
    pass "$rt: (q) mbsync pushes a new message and syncs \\Flagged \\Seen to the server"
  else
    fail "$rt: (q) mbsync push and flag sync" "" "$l"
  fi
}

# neomutt in batch mode; it wants a terminal, which script(1) gives it.
imap_neomutt() {
  local rt=$1 dir=$2 cert=$3 l=$work/$1-neomutt.log
  cat >"$dir/muttrc" <<MUTTRC
set imap_user = "alice@localhost"
set imap_pass = "imap secret"
set folder = "imaps://127.0.0.1:$imaps_port/"
set spoolfile = "+INBOX"
set certificate_file = "$dir/mutt-certs"
set ssl_verify_host = no
set header_cache = ""
set message_cachedir = ""
set mbox_type = mbox
set confirmappend = no
set confirmcreate = no
set quit = yes
MUTTRC
  cp "$cert" "$dir/mutt-certs"
  local keys="<tag-pattern>~A<enter><tag-prefix><copy-message>$dir/out.mbox<enter><quit>"
  TERM=xterm timeout 60 script -qc "neomutt -n -F '$dir/muttrc' -f 'imaps://127.0.0.1:$imaps_port/INBOX' -e 'push \"$keys\"'" \
    /dev/null >"$l" 2>&1 || true
  if [ "$(grep -c '^From ' "$dir/out.mbox" 2>/dev/null)" = 2 ] &&
    grep -q "^Subject: for imap $rt" "$dir/out.mbox" &&
    grep -q '^Subject: pushed by mbsync' "$dir/out.mbox"; then
    pass "$rt: (r) neomutt in batch mode reads both messages over imaps"
  else
    fail "$rt: (r) neomutt batch" "expected 2 messages in out.mbox" "$l"
  fi
}

# Dovecot on the same tree: buzon's UIDs and UIDVALIDITY, then buzon reads Dovecot's APPEND.
imap_dovecot() {
  local rt=$1 storage=$2 cert=$3 dv=$work/dovecot-$1 dport l=$work/$1-dovecot.log i
  dport=$(free_port)
  mkdir -p "$dv/run" "$dv/state" "$dv/home"
  echo "alice@localhost:{PLAIN}imap secret::::::" >"$dv/passwd"
  # Dovecot's auth process runs as its own user: it must reach the (test-only) password file.
  chmod 711 "$work"
  chmod 755 "$dv"
  chmod 644 "$dv/passwd"
  cat >"$dv/dovecot.conf" <<DOVECOT
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$storage/%d/%n
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
    port = $dport
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
}
DOVECOT
  # Dovecot refuses to run mail processes as root, so the tree becomes nobody's; buzon, as
  # root, still reads and writes it.
  chown -R nobody:nogroup "$storage/localhost" "$dv/home"
  if ! /usr/sbin/dovecot -c "$dv/dovecot.conf" >"$l" 2>&1; then
    fail "$rt: (s) Dovecot starts" "" "$l"
    return
  fi
  for i in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$dport") 2>/dev/null && break
    sleep 0.1
  done
  if timeout 60 python3 "$root/tests/interop_dovecot.py" "$dport" "$imaps_port" "$cert" \
      "$storage/localhost" >>"$l" 2>&1; then
    pass "$rt: (s) Dovecot serves buzon's Maildir with its UIDVALIDITY and UIDs; buzon reads Dovecot's APPEND"
  else
    fail "$rt: (s) Dovecot and buzon on one tree" "" "$l"
    [ -f "$dv/dovecot.log" ] && tail -n 5 "$dv/dovecot.log" | sed 's/^/    | /'
  fi
  /usr/sbin/dovecot -c "$dv/dovecot.conf" stop >/dev/null 2>&1 || true
}
