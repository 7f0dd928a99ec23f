#!/usr/bin/env python3
"""Per-message latency under load, as one more SMTP client sees it (standard library only).

    bench/latency_probe.py HOST PORT OUT [--size BYTES] [--interval SECONDS] [--to ADDR]

Sends one message per connection, paced at one every --interval seconds (default 0.02: at most
50 messages per second, a light extra load), until SIGTERM; then writes one latency per line,
in milliseconds, to OUT. A message's latency is the time from the start of connect() until the
reply to the final dot, i.e. what a sending MTA waits for per message, including the server's
durable write before its 250. Pipelining is not used, so each command waits for its reply, as
smtp-source does. Messages that were not accepted with 250 are not counted; their number goes
to stderr. bench/peers.sh runs this next to smtp-source and reports percentiles.
"""

import argparse
import signal
import socket
import sys
import time

stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


def read_reply(f):
    """Returns the reply code of one (possibly multi-line) reply."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


def one_message(host, port, body, to):
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        if read_reply(f) != 220:
            return None
        for cmd, want in (
            (b"EHLO probe.test\r\n", 250),
            (b"MAIL FROM:<probe@example.org>\r\n", 250),
            (b"RCPT TO:<" + to.encode() + b">\r\n", 250),
            (b"DATA\r\n", 354),
        ):
            s.sendall(cmd)
            if read_reply(f) != want:
                return None
        s.sendall(body)
        code = read_reply(f)
        t1 = time.perf_counter()
        s.sendall(b"QUIT\r\n")
        try:
            read_reply(f)
        except (ConnectionError, OSError):
            pass
    return (t1 - t0) * 1000 if code == 250 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--to", default="probe@example.com")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    line = b"X" * 76 + b"\r\n"
    header = b"From: <probe@example.org>\r\nTo: <" + args.to.encode() + b">\r\nSubject: probe\r\n\r\n"
    body = header + line * max(1, (args.size - len(header)) // len(line)) + b".\r\n"
    latencies, refused = [], 0
    next_at = time.perf_counter()
    while not stop:
        try:
            ms = one_message(args.host, args.port, body, args.to)
        except OSError:
            ms = None
        if stop and ms is None:
            break
        if ms is None:
            refused += 1
        else:
            latencies.append(ms)
        next_at += args.interval
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.perf_counter()
    with open(args.out, "w", encoding="ascii") as out:
        out.writelines(f"{ms:.3f}\n" for ms in latencies)
    if refused:
        print(f"latency_probe: {refused} messages not accepted", file=sys.stderr)


if __name__ == "__main__":
    main()
