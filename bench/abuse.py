#!/usr/bin/env python3
"""Abusive SMTP clients against a running `buzon serve` (driven by bench/abuse.sh).

    abuse.py SCENARIO --port P --pid SERVER_PID --storage DIR [--duration S]
             [--count N (idle)] [--max-kib K (idle)] [--kinds noop,rcpt,ehlo (nonreading)]

SCENARIO is one of slow, nonreading, longline, endless, idle. Prints "key=value" result
lines ("warning=..." for a pass with a finding) and a last line "RESULT PASS" or
"RESULT FAIL: reason"; exit status 0 on PASS.
Loopback only; every scenario is bounded in time.
"""
import argparse
import errno
import os
import random
import selectors
import smtplib
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def out(key, value):
    print(f"{key}={value}", flush=True)


def count_files(path):
    try:
        return len([n for n in os.listdir(path) if not n.startswith(".")])
    except FileNotFoundError:
        return 0


def deliver(port, storage, rcpt="user", tag="probe"):
    """One normal smtplib delivery; returns (latency_s, ok, error)."""
    new = os.path.join(storage, "localhost", rcpt, "new")
    before = count_files(new)
    t0 = time.monotonic()
    try:
        with smtplib.SMTP(HOST, port, timeout=30) as s:
            greet = time.monotonic() - t0
            s.ehlo()
            t_data = time.monotonic()
            s.sendmail("me@example.org", [f"{rcpt}@localhost"],
                       f"Subject: {tag}\r\n\r\nhello from {tag}\r\n")
            print(f"probe {tag}: greeting {greet:.3f} s, EHLO {t_data - t0 - greet:.3f} s, "
                  f"MAIL..DATA stored {time.monotonic() - t_data:.3f} s", flush=True)
    except Exception as e:  # noqa: BLE001 - report anything
        return time.monotonic() - t0, False, repr(e)
    lat = time.monotonic() - t0
    landed = count_files(new) > before
    return lat, landed, "" if landed else "250 but no file in new/"


def connect_nb(port, src=None, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((src, 0))
    s.setblocking(False)
    try:
        s.connect((HOST, port))
    except BlockingIOError:
        pass
    return s


class Sampler(threading.Thread):
    """Samples the server's VmRSS every `every` seconds until stopped."""

    def __init__(self, pid, every=0.25):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.stop = pid, every, [], threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            self.samples.append((time.monotonic() - t0, rss_kib(self.pid)))
            self.stop.wait(self.every)


def probes(port, storage, times, results, t0):
    """Deliveries at the given offsets (s) from t0, appended to results."""
    for at in times:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        results.append(deliver(port, storage, tag=f"probe-{at}"))


# --------------------------------------------------------------------------- 1. slow clients
def slow(a):
    n, dur = 500, a.duration or 20.0
    conns = {}
    sel = selectors.DefaultSelector()
    script = [f"EHLO slow{i}.example\r\n".encode() + b"NOOP\r\n" * 50 for i in range(n)]
    t0 = time.monotonic()
    for i in range(n):
        s = connect_nb(a.port)
        conns[s.fileno()] = dict(sock=s, i=i, pos=0, next=t0 + random.uniform(2, 3),
                                 greeted=False, got=b"", closed=False)
        sel.register(s, selectors.EVENT_READ, s.fileno())
    results = []
    th = threading.Thread(target=probes, args=(a.port, a.storage, [4, 8, 12, 16], results, t0),
                          daemon=True)
    th.start()
    sent = 0
    while time.monotonic() - t0 < dur:
        for key, _ in sel.select(timeout=0.05):
            c = conns[key.data]
            try:
                data = c["sock"].recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                c["closed"] = True
                sel.unregister(c["sock"])
                continue
            c["got"] += data
            if c["got"].startswith(b"220"):
                c["greeted"] = True
        now = time.monotonic()
        for c in conns.values():
            if not c["closed"] and now >= c["next"]:
                try:
                    c["sock"].send(script[c["i"]][c["pos"]:c["pos"] + 1])
                    c["pos"] += 1
                    sent += 1
                except OSError:
                    c["closed"] = True
                    sel.unregister(c["sock"])
                c["next"] = now + random.uniform(2, 3)
    th.join(timeout=60)
    greeted = sum(c["greeted"] for c in conns.values())
    closed = sum(c["closed"] for c in conns.values())
    ehlo_done = sum(b"250 " in c["got"] for c in conns.values())
    for c in conns.values():
        c["sock"].close()
    lats = [r[0] for r in results]
    ok = all(r[1] for r in results) and len(results) == 4
    out("slow_connections", n)
    out("slow_greeted", greeted)
    out("slow_closed_by_server", closed)
    out("slow_bytes_trickled", sent)
    out("slow_ehlo_completed", ehlo_done)
    out("probe_latencies_s", ",".join(f"{x:.3f}" for x in lats))
    out("probe_max_latency_s", f"{max(lats):.3f}" if lats else "nan")
    out("probe_delivered", sum(r[1] for r in results))
    errs = [r[2] for r in results if r[2]]
    if errs:
        out("probe_errors", "; ".join(errs))
    if not ok:
        return "a probe delivery failed"
    if greeted < n:
        return f"only {greeted}/{n} slow clients got a greeting"
    if closed:
        return f"{closed} slow clients were disconnected"
    if max(lats) >= 1.0:
        return f"probe latency {max(lats):.3f} s >= 1 s"
    return None


# ------------------------------------------------------------------ 2. non-reading clients
def nonreading(a):
    n, dur = 50, a.duration or 30.0
    base = rss_kib(a.pid)
    kinds = a.kinds.split(",")
    payload = {
        "noop": b"NOOP\r\n" * 100_000,
        "rcpt": (b"MAIL FROM:<spam@example.org>\r\n" + b"RCPT TO:<user@localhost>\r\n" * 99
                 + b"RSET\r\n") * 300,
        "ehlo": b"EHLO flood.example\r\n" * 30_000,
    }
    conns = []
    for i in range(n):
        s = connect_nb(a.port, rcvbuf=4096)  # small: replies pile up on the server, not here
        conns.append(dict(sock=s, kind=kinds[i % len(kinds)], pos=0, sent=0, closed=False, why=""))
    sampler = Sampler(a.pid)
    sampler.start()
    results = []
    t0 = time.monotonic()
    th = threading.Thread(target=probes, args=(a.port, a.storage, [5, dur - 5], results, t0),
                          daemon=True)
    th.start()
    first = b"EHLO flood.example\r\n"
    pushed, next_mark = [], t0 + 1
    while time.monotonic() - t0 < dur:
        if time.monotonic() >= next_mark:
            pushed.append(sum(c["sent"] for c in conns))
            next_mark += 1
        progressed = False
        for c in conns:
            if c["closed"]:
                continue
            p = payload[c["kind"]]
            try:
                if c["sent"] == 0:
                    k = c["sock"].send(first)
                    c["sent"] += k
                    continue
                k = c["sock"].send(p[c["pos"]:c["pos"] + 262144])
                c["pos"] = (c["pos"] + k) % len(p)  # forever: start the pipeline again
                c["sent"] += k
                progressed = progressed or k > 0
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                if e.errno in (errno.ENOTCONN,):  # still connecting
                    continue
                c["closed"], c["why"] = True, errno.errorcode.get(e.errno, str(e))
        if not progressed:
            time.sleep(0.01)
    th.join(timeout=60)
    sampler.stop.set()
    sampler.join()
    samples = [r for _, r in sampler.samples]
    third = len(samples) // 3
    peak, last = max(samples), samples[-1]
    # "flat": the last third of the run must not rise above the middle third
    first_half, second_half = max(samples[third:2 * third]), max(samples[2 * third:])
    rates = [b - a_ for a_, b in zip([0] + pushed, pushed)]
    out("client_push_mib_per_s", ",".join(f"{r / 1048576:.1f}" for r in rates))
    for c in conns:
        c["sock"].close()
    total = sum(c["sent"] for c in conns)
    bound = n * (256 + 64)  # KiB, the documented per-connection limits
    out("rss_baseline_kib", base)
    out("rss_peak_kib", peak)
    out("rss_last_kib", last)
    out("rss_growth_kib", peak - base)
    out("rss_middle_third_max_kib", first_half)
    out("rss_last_third_max_kib", second_half)
    out("documented_bound_kib", bound)
    out("bytes_pushed_by_clients", total)
    out("clients_closed_by_server", sum(c["closed"] for c in conns))
    out("rss_series_kib_per_s", ",".join(str(r) for r in samples[::4]))
    lats = [r[0] for r in results]
    out("probe_latencies_s", ",".join(f"{x:.3f}" for x in lats))
    errs = [r[2] for r in results if r[2]]
    if errs:
        out("probe_errors", "; ".join(errs))
    if not all(r[1] for r in results) or len(results) != 2:
        return "a probe delivery failed"
    out("rss_growth_per_client_kib", (peak - base) // n)
    if peak - base > 4 * bound:
        return f"RSS grew {peak - base} KiB > 4 x {bound} KiB"
    if peak - base > bound:
        out("warning", f"RSS grew {(peak - base) // n} KiB per non-reading client, over the "
            f"documented {bound // n} KiB (output limit + input buffer)")
    if second_half - first_half > 4096:
        return f"RSS still growing: +{second_half - first_half} KiB in the last third"
    return None


# ------------------------------------------------- 3./4. one client streaming without end
def stream_until_cut(a, prologue, chunk, expect, limit_bytes, max_s):
    """Send prologue (reading each reply), then chunk forever; track when the replies in
    expect arrive and when the server cuts the connection."""
    base = rss_kib(a.pid)
    s = socket.create_connection((HOST, a.port), timeout=10)
    f = s.makefile("rb")
    f.readline()  # greeting
    for line, want in prologue:
        s.sendall(line)
        while True:
            r = f.readline()
            if not r.startswith(want):
                out("prologue_reply", r.decode(errors="replace").strip())
                return "unexpected reply in prologue"
            if r[3:4] == b" ":
                break
    s.setblocking(False)
    sampler = Sampler(a.pid, 0.1)
    sampler.start()
    sent, got, at = 0, b"", {}
    eof_at = cut = None
    t0 = time.monotonic()
    # Before the server's EOF at most limit_bytes; after it, keep sending (as a client that
    # ignores the close would) until the server resets the connection or `linger` s passed.
    linger = 10.0
    while True:
        now = time.monotonic() - t0
        if eof_at is None and (sent >= limit_bytes or now > max_s):
            break
        if eof_at is not None and now - eof_at[1] > linger:
            break
        try:
            data = s.recv(65536)
            if data == b"":
                eof_at = eof_at or (sent, time.monotonic() - t0)
            else:
                got += data
                for code in expect:
                    if code not in at and code in got:
                        at[code] = (sent, time.monotonic() - t0)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            cut = (sent, time.monotonic() - t0, errno.errorcode.get(e.errno, str(e)))
            break
        try:
            sent += s.send(chunk)
        except (BlockingIOError, InterruptedError):
            time.sleep(0.0005)
        except OSError as e:
            cut = (sent, time.monotonic() - t0, errno.errorcode.get(e.errno, str(e)))
            break
    s.close()
    time.sleep(0.5)
    sampler.stop.set()
    sampler.join()
    samples = [r for _, r in sampler.samples]
    out("replies", " | ".join(got.decode(errors="replace").strip().splitlines()))
    for code in expect:
        v = at.get(code)
        out(f"sent_when_{code.decode().split()[0]}_kib", v[0] // 1024 if v else "never")
    out("server_eof_seen_after_kib", eof_at[0] // 1024 if eof_at else "never")
    if cut and eof_at:
        out("connection_cut", f"{cut[2]} {cut[1] - eof_at[1]:.1f} s after EOF, "
            f"{(cut[0] - eof_at[0]) // 1048576} MiB drained meanwhile")
    elif cut:
        out("connection_cut", f"{cut[2]} after {cut[0] // 1024} KiB, {cut[1]:.2f} s")
    else:
        out("connection_cut", f"no (client stopped at {sent // 1024} KiB, {now:.1f} s)")
    out("rss_before_kib", base)
    out("rss_peak_kib", max(samples))
    out("rss_growth_kib", max(samples) - base)
    missing = [c.decode() for c in expect if c not in at]
    if missing:
        return f"never got {', '.join(missing)}"
    if max(samples) - base > 8192:
        return f"RSS grew {max(samples) - base} KiB"
    if not (eof_at or cut):
        return f"server never closed the connection ({sent // 1048576} MiB sent)"
    if eof_at and not cut:
        return f"server still reading {linger:.0f} s after closing (linger should end it)"
    if cut and eof_at and cut[0] - eof_at[0] > limit_bytes:
        out("warning", f"after its close the server kept reading and dropping "
            f"{(cut[0] - eof_at[0]) // 1048576} MiB for {cut[1] - eof_at[1]:.1f} s (linger); "
            f"a client that never reads replies pushes more than {limit_bytes // 1048576} MiB")
    return None


def longline(a):
    # 100 MiB of 'A' with no LF; limit 16 x 512 octets = 8 KiB.
    fail = stream_until_cut(a, [], b"A" * 65536, [b"500 5.5.2", b"421 4.7.0"],
                            100 * 1024 * 1024, a.duration or 30.0)
    return fail


def endless(a):
    rc = "endless"
    new = os.path.join(a.storage, "localhost", rc, "new")
    tmp = os.path.join(a.storage, "localhost", rc, "tmp")
    prologue = [(b"EHLO endless.example\r\n", b"250"),
                (b"MAIL FROM:<e@example.org>\r\n", b"250"),
                (f"RCPT TO:<{rc}@localhost>\r\n".encode(), b"250"),
                (b"DATA\r\n", b"354")]
    line = b"x" * 998 + b"\r\n"
    fail = stream_until_cut(a, prologue, line * 64, [b"552 5.3.4", b"421 4.7.0"],
                            100 * 1024 * 1024, a.duration or 30.0)
    time.sleep(0.5)
    stored = count_files(new) + count_files(tmp)
    out("files_stored_for_endless", stored)
    if fail is None and stored:
        fail = f"{stored} files stored"
    return fail


# ------------------------------------------------------------------ 5. idle sessions
def idle(a):
    n = a.count
    srcs = [f"127.0.0.{2 + i}" for i in range(8)]
    time.sleep(0.5)
    base = rss_kib(a.pid)
    socks, failed, errors = [], 0, {}
    t0 = time.monotonic()
    # Non-blocking handshakes, at most `inflight` at once (a burst of SYNs beyond the listen
    # backlog would only be retried by the kernel after 1, 3, 7... s).
    sel = selectors.DefaultSelector()
    inflight, nxt, state = 200, 0, {}
    deadline = t0 + 150
    while (nxt < n or state) and time.monotonic() < deadline:
        while nxt < n and len(state) < inflight:
            try:
                sk = connect_nb(a.port, src=srcs[nxt % len(srcs)])
                state[sk.fileno()] = [sk, b"", 0]  # socket, input, phase (0 greeting, 1 EHLO)
                sel.register(sk, selectors.EVENT_READ, sk.fileno())
            except OSError as e:
                failed += 1
                errors[str(e)] = errors.get(str(e), 0) + 1
            nxt += 1
        for key, _ in sel.select(timeout=1):
            st = state[key.data]
            sk = st[0]
            try:
                d = sk.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                d, why = b"", str(e)
            else:
                why = "EOF"
            if not d:
                failed += 1
                errors[why] = errors.get(why, 0) + 1
                sel.unregister(sk)
                sk.close()
                del state[key.data]
                continue
            st[1] += d
            if st[2] == 0 and b"\r\n" in st[1]:
                st[1], st[2] = b"", 1
                sk.send(b"EHLO idle.example\r\n")
            elif st[2] == 1 and b"\r\n250 " in b"\r\n" + st[1] and st[1].endswith(b"\r\n"):
                sel.unregister(sk)
                socks.append(sk)
                del state[key.data]
    for st in state.values():  # deadline hit
        failed += 1
        st[0].close()
    if errors:
        out("idle_errors", "; ".join(f"{k} x{v}" for k, v in errors.items()))
    setup = time.monotonic() - t0
    time.sleep(3)
    after = rss_kib(a.pid)
    per = (after - base) / max(1, len(socks))
    # are they still alive and is the server still serving?
    lat, ok, err = deliver(a.port, a.storage, tag="idle-probe")
    out("idle_sessions_open", len(socks))
    out("idle_failed", failed)
    out("setup_s", f"{setup:.1f}")
    out("rss_before_kib", base)
    out("rss_after_kib", after)
    out("kib_per_idle_session", f"{per:.2f}")
    out("probe_latency_s", f"{lat:.3f}")
    if err:
        out("probe_error", err)
    for s in socks:
        s.close()
    if len(socks) < n:
        return f"only {len(socks)}/{n} sessions established"
    if not ok:
        return "probe delivery failed"
    if a.max_kib and per > a.max_kib:
        return f"{per:.2f} KiB per session > {a.max_kib} KiB"
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["slow", "nonreading", "longline", "endless", "idle"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--storage", required=True)
    p.add_argument("--duration", type=float, default=0)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--kinds", default="noop,rcpt,ehlo", help="nonreading: floods to mix")
    p.add_argument("--max-kib", type=float, default=0, help="idle: fail above this per session")
    a = p.parse_args()
    fail = globals()[a.scenario](a)
    print("RESULT PASS" if fail is None else f"RESULT FAIL: {fail}", flush=True)
    sys.exit(0 if fail is None else 1)


if __name__ == "__main__":
    main()
