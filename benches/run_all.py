#!/usr/bin/env python3
"""Run every benchmark of tg, print one table, and write the figures as JSON.

    benches/run_all.py [-sizes 10,50,100,200,500,1000] [-runs 3] [-json FILE] [-no-netns]

As root for the netns benchmarks (apply+destroy against Mininet, with the
nodes' SSH servers on and off); without root, or with `-no-netns`, those
are left out. The state benchmark measures PostgreSQL too when
TG_PG_TEST_URL is set (`.ci/postgres.sh` prints it). Figures go to
`target/bench/results.json` unless `-json` says otherwise;
`benches/plot.py` draws `docs/performance.svg` from that file.

Each part is one of the project's own benchmarks, run as its doc says:
`cargo bench --bench validate|plan|state_overhead` and
`benches/netns_vs_mininet.sh N` (tg and Mininet in turns after an untimed
round, median of RUNS: three times `-runs` up to 50 nodes, one run at 500
nodes and more). Only the Python standard library is used.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env=None):
    """Run `cmd` in the repository; its output, or exit saying what failed."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: `{' '.join(cmd)}` failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout


def number(pattern, text, what):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"error: cannot read {what} from:\n{text}")
    return float(m.group(1))


def validate(nodes):
    out = run(["cargo", "bench", "--quiet", "--bench", "validate"], {"TG_BENCH_NODES": str(nodes)})
    return {
        "nodes": nodes,
        "wall_s": number(r"best wall ([\d.]+) s", out, "validate wall"),
        "peak_mb": number(r"peak RSS ([\d.]+) MB", out, "validate memory"),
    }


def plan():
    out = run(["cargo", "bench", "--quiet", "--bench", "plan"])
    return {
        "nodes": int(number(r"plan benchmark, (\d+) nodes", out, "plan size")),
        "load_s": number(r"config::load \(HCL, IPAM\):\s+([\d.]+) s", out, "load"),
        "empty_state_s": number(r"plan, empty state:\s+([\d.]+) s", out, "plan"),
        "peak_mib": number(r"VmHWM\):\s+([\d.]+) MiB", out, "plan memory"),
        "no_change_s": number(r"-refresh=false:\s+([\d.]+) s", out, "no-change plan"),
        "no_change_refresh_s": number(r"refresh read of each:\s+([\d.]+) s", out, "refresh plan"),
    }


def state():
    out = run(["cargo", "bench", "--quiet", "--bench", "state_overhead"])
    rows = {}
    for store in ("sqlite", "postgres"):
        m = re.search(rf"^{store}\s+([\d.]+) s\s+([\d.]+) s", out, re.M)
        if m:
            rows[store] = {"apply_s": float(m.group(1)), "overhead_s": float(m.group(2))}
    return rows


def netns(n, runs):
    out = run(
        ["benches/netns_vs_mininet.sh", str(n)],
        {"RUNS": str(runs), "TG_BIN": os.path.join(ROOT, "target/release/tg")},
    )
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        sys.exit(f"error: no RESULT line from netns_vs_mininet.sh:\n{out}")
    fields = dict(kv.split("=") for kv in m.group(1).split())
    row = {"n": n, "runs": runs}
    row.update({k: float(v) for k, v in fields.items() if k != "n"})
    return row


def table(results):
    lines = ["| benchmark | figure |", "| --- | --- |"]
    for v in results["validate"]:
        lines.append(f"| validate, {v['nodes']:,} nodes | {v['wall_s']:.3f} s, {v['peak_mb']:.0f} MB peak |")
    p = results["plan"]
    lines.append(
        f"| plan, {p['nodes']:,} nodes, empty state | {p['load_s'] + p['empty_state_s']:.3f} s "
        f"(load {p['load_s']:.3f} s + plan {p['empty_state_s']:.3f} s), {p['peak_mib']:.0f} MiB peak |"
    )
    lines.append(f"| no-change plan, {p['nodes']:,} instances, `-refresh=false` | {p['no_change_s']:.3f} s |")
    lines.append(f"| no-change plan with refresh | {p['no_change_refresh_s']:.3f} s |")
    for store, r in results["state"].items():
        lines.append(f"| state overhead, 10,000 instances, {store} | {r['overhead_s']:.2f} s |")
    if results["netns"]:
        lines += ["", "| nodes | tg, SSH on | tg, `ssh = false` | Mininet | Mininet / tg (SSH on) | (SSH off) |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in results["netns"]:
            mn = r.get("mininet")
            ratio = f"{mn / r['tg_ssh']:.1f}x" if mn else "-"
            ratio_off = f"{mn / r['tg_nossh']:.1f}x" if mn else "-"
            mn_s = f"{mn:.2f} s" if mn else "-"
            lines.append(
                f"| {r['n']:,} | {r['tg_ssh']:.2f} s | {r['tg_nossh']:.2f} s | {mn_s} | {ratio} | {ratio_off} |"
            )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(prefix_chars="-")
    ap.add_argument("-sizes", default="10,50,100,200,500,1000")
    ap.add_argument("-runs", type=int, default=3)
    ap.add_argument("-json", default=os.path.join(ROOT, "target/bench/results.json"))
    ap.add_argument("-no-netns", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print("== building tg (release) and the benchmarks", file=sys.stderr)
    run(["cargo", "build", "--quiet", "--release"])
    run(["cargo", "bench", "--quiet", "--no-run"])
    load = os.getloadavg()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load]},
        "validate": [],
        "netns": [],
    }
    for nodes in (1000, 10000):
        print(f"== validate, {nodes} nodes", file=sys.stderr)
        results["validate"].append(validate(nodes))
    print("== plan", file=sys.stderr)
    results["plan"] = plan()
    print("== state overhead", file=sys.stderr)
    results["state"] = state()
    if not args.no_netns and os.geteuid() == 0:
        for n in sizes:
            # Small sizes are quick and the noisiest: three times the runs.
            runs = args.runs * 3 if n <= 50 else args.runs if n < 500 else 1
            print(f"== apply+destroy, {n} nodes, tg and Mininet ({runs} run(s))", file=sys.stderr)
            results["netns"].append(netns(n, runs))
    elif not args.no_netns:
        print("note: not root: the netns benchmarks are left out", file=sys.stderr)

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(table(results))
    print(f"\nfigures: {args.json} (plot: benches/plot.py {args.json} docs/performance.svg)")


if __name__ == "__main__":
    main()
