#!/usr/bin/env python3
"""Draw apply+destroy time against node count, tg and Mininet, as SVG.

    benches/plot.py target/bench/results.json docs/performance.svg

Reads the JSON `benches/run_all.py` writes. Log-log axes; one line each for
tg with SSH servers, tg with `ssh = false`, and Mininet. Only the Python
standard library is used (the SVG is written by hand).
"""

import json
import math
import sys

W, H = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 200, 40, 60
SERIES = [
    ("tg_ssh", "tg (SSH on)", "#1f77b4"),
    ("tg_nossh", "tg (ssh = false)", "#2ca02c"),
    ("mininet", "Mininet (lxbr)", "#d62728"),
]


def ticks(lo, hi):
    out = []
    e = math.floor(math.log10(lo))
    while 10**e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10**e
            if lo * 0.9999 <= v <= hi * 1.0001:
                out.append(v)
        e += 1
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: benches/plot.py RESULTS.json OUT.svg")
    with open(sys.argv[1]) as f:
        rows = json.load(f)["netns"]
    if not rows:
        sys.exit("error: the results hold no apply+destroy figures (run benches/run_all.py as root)")
    xs = [r["n"] for r in rows]
    ys = [r[k] for r in rows for k, _, _ in SERIES if r.get(k)]
    x0, x1 = min(xs), max(xs)
    y0 = 10 ** math.floor(math.log10(min(ys)))
    y1 = 10 ** math.ceil(math.log10(max(ys)))

    def px(x):
        return LEFT + (math.log10(x) - math.log10(x0)) / max(1e-9, math.log10(x1) - math.log10(x0)) * (W - LEFT - RIGHT)

    def py(y):
        return H - BOTTOM - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * (H - TOP - BOTTOM)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14">apply + destroy of N nodes on one network (log-log)</text>']
    for v in ticks(x0, x1):
        svg.append(f'<line x1="{px(v):.1f}" y1="{TOP}" x2="{px(v):.1f}" y2="{H - BOTTOM}" stroke="#ddd"/>')
        svg.append(f'<text x="{px(v):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{v:g}</text>')
    for v in ticks(y0, y1):
        svg.append(f'<line x1="{LEFT}" y1="{py(v):.1f}" x2="{W - RIGHT}" y2="{py(v):.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g} s</text>')
    svg.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 20}" text-anchor="middle">nodes</text>')
    for i, (key, label, colour) in enumerate(SERIES):
        pts = [(px(r["n"]), py(r[key])) for r in rows if r.get(key)]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        ly = TOP + 20 + 20 * i
        svg.append(f'<line x1="{W - RIGHT + 15}" y1="{ly}" x2="{W - RIGHT + 40}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        svg.append(f'<text x="{W - RIGHT + 46}" y="{ly + 4}">{label}</text>')
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
