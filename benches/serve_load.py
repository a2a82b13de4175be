#!/usr/bin/env python3
"""Load on `tg serve`: N concurrent clients, each opening a session,
allocating 2 nodes, running a command on each and closing; every call must
succeed and nothing may be left in state. Prints the wall time.

    target/pyenv/bin/python benches/serve_load.py [-clients 50] [-platform double|netns]

`double` (default) measures the server and engine on the test double;
`netns` makes real namespaces (root). Needs `cargo build` and the
`testgrid` package (`pip install ./python`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import testgrid

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-clients", type=int, default=50)
    ap.add_argument("-platform", default="double", choices=["double", "netns"])
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="tg-serve-load-"))
    tokens = {f"u{i}": f"load-token-{i:08d}-abcdef" for i in range(args.clients)}
    (tmp / "tokens").write_text("".join(f"{t} {u}\n" for u, t in tokens.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    if args.platform == "double":
        (tmp / "double").mkdir()
        env["TG_TESTDOUBLE_DIR"] = str(tmp / "double")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(ROOT / "target/debug/tg"), "serve", "-listen", f"127.0.0.1:{port}",
         "-token-file", str(tmp / "tokens"), "-data-dir", str(tmp / "data")],
        env=env, stdout=subprocess.DEVNULL,
    )
    try:
        probe = testgrid.rest.Client(url=url)
        while not probe.healthy():
            time.sleep(0.05)

        def one(user: str) -> float:
            t0 = time.monotonic()
            with testgrid.rest.Client(url=url, token=tokens[user]) as c:
                s = c.open_session("load")
                for _ in range(2):
                    s.allocate_node(image="host")
                for n in s:
                    n.execute(["true"])
                s.close()
                assert c.sessions() == []
            return time.monotonic() - t0

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            each = list(pool.map(one, tokens))
        total = time.monotonic() - t0
        left = subprocess.run(
            [str(ROOT / "target/debug/tg"), "session", "list", "-json"],
            env={**env, "TG_STATE_URL": str(tmp / "data/state.db")},
            capture_output=True, text=True,
        )
        print(json.dumps({
            "clients": args.clients, "platform": args.platform,
            "wall_s": round(total, 2), "slowest_client_s": round(max(each), 2),
            "state_after": left.stdout.strip() or left.stderr.strip(),
        }))
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if not os.environ.get("KEEP"):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
