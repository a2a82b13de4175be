"""Fixtures: a real `tg serve` on a free port, with a temporary token file,
data dir and catalog, on the test-double platform (`TG_TESTDOUBLE_DIR`)
unless `TESTGRID_PLATFORM=netns` (needs root)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import time
from typing import Iterator

import pytest

import testgrid

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789ab"}
ADMIN = ("root", "root-token-0123456789ab")
CATALOG = """
profile "cdn:basic" {
  image  = "host"
  cpus   = 1
  labels = { tier = "cdn" }
}

profile "reader" {
  image  = "host"
  labels = {
    motd = fileexists("files/motd.txt") ? trimspace(file("files/motd.txt")) : "none"
    leak = fileexists("files/path.txt") ? trimspace(file(trimspace(file("files/path.txt")))) : "none"
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "tokens").write_text(
        "".join(f"{t} {u}\n" for u, t in TOKENS.items()) + f"{ADMIN[1]} {ADMIN[0]} admin\n"
    )
    (tmp / "catalog").mkdir()
    (tmp / "catalog" / "profiles.tg.hcl").write_text(CATALOG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    if os.environ.get("TESTGRID_PLATFORM") != "netns":
        double = tmp / "double"
        double.mkdir()
        (double / "apt.json").write_text(json.dumps({"hello": ["2.10-3"]}))
        env["TG_TESTDOUBLE_DIR"] = str(double)
    else:
        env["TG_NETNS_RUN_DIR"] = str(tmp / "run")
    port = _free_port()
    tg = os.environ.get("TG_BIN", str(ROOT / "target" / "debug" / "tg"))
    proc = subprocess.Popen(
        [tg, "serve", "-listen", f"127.0.0.1:{port}", "-token-file", str(tmp / "tokens"),
         "-catalog", str(tmp / "catalog"), "-data-dir", str(tmp / "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        probe = testgrid.rest.Client(url=url)
        for _ in range(200):
            if probe.healthy():
                break
            if proc.poll() is not None:
                raise RuntimeError((tmp / "serve.log").read_text())
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def client(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[testgrid.rest.Client]:
    monkeypatch.setenv("TESTGRID_URL", server)
    monkeypatch.setenv("TESTGRID_TOKEN", TOKENS["alice"])
    c = testgrid.rest.Client()
    yield c
    c.close()


@pytest.fixture
def bob(server: str) -> Iterator[testgrid.rest.Client]:
    c = testgrid.rest.Client(url=server, token=TOKENS["bob"])
    yield c
    c.close()


@pytest.fixture
def admin(server: str) -> Iterator[testgrid.rest.Client]:
    c = testgrid.rest.Client(url=server, token=ADMIN[1])
    yield c
    c.close()
