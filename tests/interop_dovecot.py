"""Dovecot and buzon on one Maildir tree (run by tests/interop_imap.sh).

Usage: interop_dovecot.py DOVECOT_PORT BUZON_IMAPS_PORT CERT TREE

Dovecot runs its mail processes as nobody while buzon runs as root, so the tree is handed to
nobody before Dovecot reads what buzon just wrote (two servers sharing a tree in production run
as one user).

Dovecot must see buzon's UIDVALIDITY and UIDs; a message Dovecot appends must then be read
by buzon under the UID Dovecot gave it, with its flag, byte for byte (Dovecot stores bare LF,
buzon serves CRLF).
"""

import imaplib
import ssl
import subprocess
import sys


def uids(conn):
    typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    out = []
    for item in data:
        if isinstance(item, tuple):
            uid = int(item[0].split(b"UID ")[1].split()[0])
            out.append((uid, item[1].strip()))
    return out


def main():
    dport, bport, cert, tree = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    b = imaplib.IMAP4_SSL("127.0.0.1", bport, ssl_context=ctx)
    b.login("alice@localhost", "imap secret")
    typ, data = b.select("INBOX")
    assert typ == "OK", (typ, data)
    b_validity = b.response("UIDVALIDITY")[1][0]
    b_uids = uids(b)
    assert b_uids, "buzon has messages to share"
    subprocess.run(["chown", "-R", "nobody:nogroup", tree], check=True)

    d = imaplib.IMAP4("127.0.0.1", dport)
    d.login("alice@localhost", "imap secret")
    typ, data = d.select("INBOX")
    assert typ == "OK", (typ, data)
    d_validity = d.response("UIDVALIDITY")[1][0]
    assert d_validity == b_validity, (d_validity, b_validity)
    assert uids(d) == b_uids, (uids(d), b_uids)

    msg = b"Subject: from dovecot\r\n\r\nhello\r\n"
    typ, resp = d.append("INBOX", "(\\Flagged)", None, msg)
    assert typ == "OK" and b"APPENDUID" in resp[0], resp
    new_uid = int(resp[0].split(b"APPENDUID ")[1].split()[1].rstrip(b"]"))
    d.logout()

    b.noop()
    typ, data = b.uid("FETCH", str(new_uid), "(FLAGS RFC822.SIZE RFC822)")
    assert typ == "OK" and data and isinstance(data[0], tuple), data
    assert b"\\Flagged" in data[0][0], data
    assert b"RFC822.SIZE %d" % len(msg) in data[0][0], data
    assert data[0][1] == msg, data[0][1]
    b.logout()
    print("ok", b_validity, b_uids, new_uid)


if __name__ == "__main__":
    main()
