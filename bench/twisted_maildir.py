#!/usr/bin/env python3
"""Twisted SMTP server that stores mail in Maildir, the Python peer of bench/peers.sh.

    twisted_maildir.py --port PORT --storage DIR [--domains a.test,b.test] [--bind 127.0.0.1]

Each accepted recipient's copy is appended to DIR/<domain>/<local part>/ (a Maildir; the same
layout as `buzon serve`) by Twisted's own twisted.mail.maildir.MaildirMailbox.appendMessage,
which writes the file into tmp/ from the reactor and renames it into new/. The 250 reply to
the final dot waits for that rename. Twisted calls no fsync anywhere on this path, so this
server is not durable: keep that in mind when comparing it with servers that fsync.
Recipients outside the listed domains get 550. SIGTERM stops the reactor.
"""

import argparse
import os
import signal
import sys

from twisted.internet import reactor
from twisted.mail import maildir, smtp
from zope.interface import implementer


class Boxes:
    """Opens each recipient's Maildir once. MaildirMailbox lists cur/ and new/ when it is
    created, so a new one per message would make delivery slower as the mailbox grows."""

    def __init__(self, root):
        self.root = root
        self.open = {}

    def box(self, domain, local):
        key = (domain, local)
        found = self.open.get(key)
        if found is None:
            path = os.path.join(self.root, domain, local)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            found = maildir.MaildirMailbox(path.encode())  # creates tmp/ new/ cur/
            self.open[key] = found
        return found


@implementer(smtp.IMessage)
class Copy:
    """One recipient's copy of one message, buffered until the final dot."""

    def __init__(self, box):
        self.box = box
        self.parts = []

    def lineReceived(self, line):
        self.parts.append(line)
        self.parts.append(b"\n")

    def eomReceived(self):
        data, self.parts = b"".join(self.parts), None
        return self.box.appendMessage(data)  # fires once the file is in new/

    def connectionLost(self):
        self.parts = None


@implementer(smtp.IMessageDelivery)
class Policy:
    def __init__(self, domains, boxes, hostname):
        self.domains = domains
        self.boxes = boxes
        self.hostname = hostname

    def receivedHeader(self, helo, origin, recipients):
        name = helo[0] if helo and helo[0] else b"unknown"
        addr = helo[1] if helo and len(helo) > 1 and helo[1] else b"?"
        if isinstance(name, str):
            name = name.encode()
        if isinstance(addr, str):
            addr = addr.encode()
        return b"Received: from %s ([%s]) by %s with ESMTP; %s" % (
            name, addr, self.hostname, smtp.rfc822date())

    def validateFrom(self, helo, origin):
        return origin

    def validateTo(self, user):
        domain = user.dest.domain.decode("utf-8", "replace").lower()
        local = user.dest.local.decode("utf-8", "replace")
        if domain not in self.domains or not local or "/" in local or local.startswith("."):
            raise smtp.SMTPBadRcpt(user)
        box = self.boxes.box(domain, local)
        return lambda: Copy(box)


class Factory(smtp.SMTPFactory):
    protocol = smtp.ESMTP  # EHLO, no AUTH offered

    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        self.domain = policy.hostname

    def buildProtocol(self, addr):
        proto = super().buildProtocol(addr)
        proto.delivery = self.policy
        return proto


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--domains", default="example.com")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--hostname", default="bench.test")
    args = ap.parse_args()

    domains = {d.strip().lower() for d in args.domains.split(",") if d.strip()}
    os.makedirs(args.storage, exist_ok=True)
    policy = Policy(domains, Boxes(args.storage), args.hostname.encode())
    reactor.listenTCP(args.port, Factory(policy), backlog=256, interface=args.bind)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    print(f"twisted_maildir: listening on {args.bind}:{args.port}", flush=True)
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
