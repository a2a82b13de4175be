#!/usr/bin/env python3
"""Draw the timeline of a `tg apply -trace FILE` (or `destroy -trace`) as SVG.

    scripts/trace_svg.py TRACE.json OUT.svg

The same picture Perfetto (https://ui.perfetto.dev) or chrome://tracing shows
of the file, without a browser: one row per instance operation, in the order
they started; a light bar while the operation waited for a free slot
(`-parallelism`), a bar while it ran (red when it failed), and under it the
platform's phases (the netns platform's `namespaces`, `cgroups`, `links`,
`wait_for`, `packages`, and a network delete's `session folder`). Only the
Python standard library is used (the SVG is written by hand).
"""

import html
import json
import sys

ROW, BAR, PHASE = 26, 12, 7
RIGHT, TOP, BOTTOM = 150, 50, 40
WIDTH = 960
OP_COLOURS = {"create": "#4c9be8", "update": "#e8a94c", "delete": "#8c8c8c"}
PHASE_COLOURS = ["#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#e377c2", "#8c564b"]


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        events = doc["traceEvents"] if isinstance(doc, dict) else doc
        spans = [e for e in events if e.get("ph") == "X"]
        if not all(k in e for e in spans for k in ("ts", "dur", "name")):
            raise KeyError("ts")
    except (OSError, ValueError) as e:
        sys.exit(f"error: cannot read the trace `{path}`: {e}")
    except (KeyError, TypeError, AttributeError):
        sys.exit(f"error: `{path}` is not a trace `tg apply -trace` or `tg destroy -trace` wrote")
    title = next(
        (e.get("args", {}).get("name", "tg") for e in events
         if e.get("ph") == "M" and e.get("name") == "process_name"),
        "tg",
    )
    # Queued spans and phases by (lane, address), read once.
    queued, phases = {}, {}
    for e in spans:
        if e.get("cat") == "queued":
            queued.setdefault((e.get("tid"), e["name"].removesuffix(" (queued)")), []).append(e)
        elif e.get("cat") == "phase":
            phases.setdefault((e.get("tid"), e.get("args", {}).get("instance")), []).append(e)
    ops = sorted(
        (e for e in spans if e.get("cat") not in ("queued", "phase")),
        key=lambda e: (e["ts"], e["name"]),
    )
    # A replace is two operations with one address, often on one lane: a
    # queued span belongs to the operation it ends at, a phase to the one
    # whose time it lies in.
    rows = []
    for e in ops:
        key = (e.get("tid"), e["name"])
        q = next((x for x in queued.get(key, []) if x["ts"] + x["dur"] == e["ts"]), None)
        ps = sorted(
            (x for x in phases.get(key, []) if e["ts"] <= x["ts"] <= e["ts"] + e["dur"]),
            key=lambda x: x["ts"],
        )
        rows.append((e, q, ps))
    return title, rows


def tick_step(span_ms):
    """A round step in ms (1, 2 or 5 times a power of ten) for at most 10 ticks."""
    k = 0
    while True:
        for m in (1, 2, 5):
            if span_ms / (m * 10**k) <= 10:
                return m * 10**k
        k += 1


def draw(title, rows):
    if not rows:
        sys.exit("error: the trace has no operations (nothing ran: an apply with no changes writes an empty one)")
    start = min((q or e)["ts"] for e, q, _ in rows)
    end = max(e["ts"] + e["dur"] for e, _, _ in rows)
    span = max(end - start, 1)
    # Room for the longest address (about 7 px a character at 12 px).
    left = min(20 + 7 * max(len(e["name"]) for e, _, _ in rows), WIDTH // 2)
    plot_w = WIDTH - left - RIGHT
    x = lambda ts: left + (ts - start) / span * plot_w
    phase_names = []
    for _, _, ps in rows:
        for p in ps:
            if p["name"] not in phase_names:
                phase_names.append(p["name"])
    colour_of = {n: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, n in enumerate(phase_names)}
    legend = [("queued", "#dddddd")] + [(k, v) for k, v in OP_COLOURS.items()
                                         if any(e.get("cat") == k for e, _, _ in rows)]
    if any(e.get("args", {}).get("result") == "failed" for e, _, _ in rows):
        legend.append(("failed", "#d62728"))
    legend += [(n, colour_of[n]) for n in phase_names]
    height = TOP + max(ROW * len(rows), 18 * len(legend)) + BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">'
        f"{html.escape(title)}: {len(rows)} operations in {span / 1000:.1f} ms</text>",
    ]
    # A grid line every round number of milliseconds (seconds past 10 s).
    step = tick_step(span / 1000)
    t = 0
    while t * 1000 <= span:
        gx = x(start + t * 1000)
        label = f"{t / 1000:g} s" if step >= 1000 else f"{t} ms"
        out.append(f'<line x1="{gx:.1f}" y1="{TOP - 8}" x2="{gx:.1f}" y2="{TOP + ROW * len(rows)}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{gx:.1f}" y="{TOP + ROW * len(rows) + 16}" text-anchor="middle" fill="#555">{label}</text>')
        t += step
    for i, (e, q, ps) in enumerate(rows):
        y = TOP + i * ROW
        out.append(f'<text x="{left - 8}" y="{y + BAR - 2}" text-anchor="end">{html.escape(e["name"])}</text>')
        if q:
            out.append(f'<rect x="{x(q["ts"]):.1f}" y="{y}" width="{max(x(q["ts"] + q["dur"]) - x(q["ts"]), 0.5):.1f}" '
                       f'height="{BAR}" fill="#dddddd"><title>queued {q["dur"] / 1000:.2f} ms</title></rect>')
        failed = e.get("args", {}).get("result") == "failed"
        colour = "#d62728" if failed else OP_COLOURS.get(e.get("cat"), "#4c9be8")
        out.append(f'<rect x="{x(e["ts"]):.1f}" y="{y}" width="{max(x(e["ts"] + e["dur"]) - x(e["ts"]), 0.5):.1f}" '
                   f'height="{BAR}" fill="{colour}"><title>{html.escape(e["name"])}: {html.escape(str(e.get("cat", "")))} '
                   f'{e["dur"] / 1000:.2f} ms</title></rect>')
        for p in ps:
            out.append(f'<rect x="{x(p["ts"]):.1f}" y="{y + BAR + 1}" width="{max(x(p["ts"] + p["dur"]) - x(p["ts"]), 0.5):.1f}" '
                       f'height="{PHASE}" fill="{colour_of[p["name"]]}"><title>{html.escape(p["name"])} '
                       f'{p["dur"] / 1000:.2f} ms</title></rect>')
    for i, (name, colour) in enumerate(legend):
        ly = TOP + i * 18
        out.append(f'<rect x="{WIDTH - RIGHT + 16}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 34}" y="{ly + 10}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: scripts/trace_svg.py TRACE.json OUT.svg")
    title, rows = load(sys.argv[1])
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(draw(title, rows))


if __name__ == "__main__":
    main()
