#!/usr/bin/env python3
"""Draws bench/peers.sh results as an SVG bar chart (standard library only).

    bench/plot_peers.py RESULTS.tsv OUT.svg

RESULTS.tsv is the per-run file bench/peers.sh writes (`-o FILE` keeps it as FILE.tsv):
server, size, sessions, run, msgs/s, CPU us/msg, peak RSS KiB, processes, ok. One panel per
message size; in each, one group of bars per session count, one bar per server at its median
rate over the good runs, with a line from the slowest to the fastest run.
"""

import html
import statistics
import sys
from collections import defaultdict

ORDER = [
    "sink",
    "postfix",
    "twisted",
    "mailin",
    "buzon-smol-permsg",
    "buzon-mio-permsg",
    "buzon-smol",
    "buzon-mio",
    "buzon-smol-nofsync",
    "buzon-mio-nofsync",
]
LABEL = {
    "sink": "smtp-sink (stores nothing)",
    "postfix": "Postfix to Maildir (fsync)",
    "twisted": "Twisted Maildir (no fsync)",
    "mailin": "mailin-embedded Maildir (fsync)",
    "buzon-smol-permsg": "buzon, smol, flush per message",
    "buzon-mio-permsg": "buzon, mio, flush per message",
    "buzon-smol": "buzon, smol, group commit (fsync)",
    "buzon-mio": "buzon, mio, group commit (fsync)",
    "buzon-smol-nofsync": "buzon, smol, no fsync",
    "buzon-mio-nofsync": "buzon, mio, no fsync",
}
COLOUR = {
    "sink": "#bbbbbb",
    "postfix": "#d62728",
    "twisted": "#ff9f40",
    "mailin": "#8c564b",
    "buzon-smol-permsg": "#6baed6",
    "buzon-mio-permsg": "#74c476",
    "buzon-smol": "#1f77b4",
    "buzon-mio": "#2ca02c",
    "buzon-smol-nofsync": "#9ecae1",
    "buzon-mio-nofsync": "#a1d99b",
}

BAR, GAP, GROUP_GAP = 16, 2, 26
PANEL_H, TOP, LEFT, BOTTOM = 260, 40, 70, 40


def load(path):
    runs = defaultdict(list)
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9 or f[8] != "1":
            continue
        runs[(int(f[1]), int(f[2]), f[0])].append(float(f[4]))
    return runs


def nice_max(v):
    """The smallest 1, 2 or 5 times a power of ten that is at least v."""
    p = 1
    while p * 10 <= v:
        p *= 10
    for m in (1, 2, 5, 10):
        if m * p >= v:
            return m * p
    return 10 * p


def size_label(b):
    return f"{b // 1024} KiB" if b % 1024 == 0 else f"{b} B"


def draw(runs):
    sizes = sorted({k[0] for k in runs})
    sessions = sorted({k[1] for k in runs})
    servers = [s for s in ORDER if any(k[2] == s for k in runs)]
    group_w = len(servers) * (BAR + GAP) + GROUP_GAP
    width = LEFT + len(sessions) * group_w + 20
    legend_h = 18 * len(servers) + 30
    height = TOP + len(sizes) * (PANEL_H + BOTTOM + TOP) + legend_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    y0 = TOP
    for size in sizes:
        top = max(max(v) for k, v in runs.items() if k[0] == size)
        scale_max = nice_max(top)
        out.append(
            f'<text x="{LEFT}" y="{y0 - 14}" font-size="13" font-weight="bold">'
            f"{size_label(size)} messages: msgs/s stored"
            "</text>"
        )
        base = y0 + PANEL_H
        for i in range(6):
            v = scale_max * i / 5
            y = base - PANEL_H * i / 5
            out.append(
                f'<line x1="{LEFT}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#e0e0e0"/>'
            )
            out.append(
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>'
            )
        for g, s in enumerate(sessions):
            gx = LEFT + GROUP_GAP / 2 + g * group_w
            for b, srv in enumerate(servers):
                rates = runs.get((size, s, srv))
                if not rates:
                    continue
                x = gx + b * (BAR + GAP)
                med = statistics.median(rates)
                h = PANEL_H * med / scale_max
                out.append(
                    f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{BAR}" height="{h:.1f}" '
                    f'fill="{COLOUR[srv]}"><title>{html.escape(LABEL[srv])}, {s} sessions: '
                    f"{med:.0f} msgs/s</title></rect>"
                )
                lo = base - PANEL_H * min(rates) / scale_max
                hi = base - PANEL_H * max(rates) / scale_max
                cx = x + BAR / 2
                out.append(
                    f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{lo:.1f}" y2="{hi:.1f}" '
                    f'stroke="black" stroke-width="1"/>'
                )
            out.append(
                f'<text x="{gx + (group_w - GROUP_GAP) / 2:.1f}" y="{base + 16}" '
                f'text-anchor="middle">{s} session{"s" if s != 1 else ""}</text>'
            )
        y0 = base + BOTTOM + TOP
    y = y0 - TOP + 4
    for srv in servers:
        out.append(
            f'<rect x="{LEFT}" y="{y}" width="12" height="12" fill="{COLOUR[srv]}"/>'
        )
        out.append(f'<text x="{LEFT + 18}" y="{y + 10}">{html.escape(LABEL[srv])}</text>')
        y += 18
    out.append(
        f'<text x="{LEFT}" y="{y + 12}">bars: median of the good runs; '
        "black line: slowest to fastest run</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_peers.py RESULTS.tsv OUT.svg")
    runs = load(sys.argv[1])
    if not runs:
        sys.exit(f"plot_peers.py: no good runs in {sys.argv[1]}")
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(draw(runs))


if __name__ == "__main__":
    main()
