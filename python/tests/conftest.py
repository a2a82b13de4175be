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
from typing import Dict, Iterator

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


class _Server:
    """A running `tg serve` in folder `tmp` (its data dir is `tmp/data`)."""

    def __init__(self, tmp: pathlib.Path, env: Dict[str, str]) -> None:
        (tmp / "tokens").write_text(
            "".join(f"{t} {u}\n" for u, t in TOKENS.items()) + f"{ADMIN[1]} {ADMIN[0]} admin\n"
        )
        (tmp / "catalog").mkdir()
        (tmp / "catalog" / "profiles.tg.hcl").write_text(CATALOG)
        port = _free_port()
        tg = os.environ.get("TG_BIN", str(ROOT / "target" / "debug" / "tg"))
        self.tmp = tmp
        self.proc = subprocess.Popen(
            [tg, "serve", "-listen", f"127.0.0.1:{port}", "-token-file", str(tmp / "tokens"),
             "-catalog", str(tmp / "catalog"), "-data-dir", str(tmp / "data")],
            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "w"),
        )
        self.url = f"http://127.0.0.1:{port}"
        probe = testgrid.rest.Client(url=self.url)
        for _ in range(200):
            if probe.healthy():
                return
            if self.proc.poll() is not None:
                raise RuntimeError((tmp / "serve.log").read_text())
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tg serve did not answer: {(tmp / 'serve.log').read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _base_env(tmp: pathlib.Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    if os.environ.get("TESTGRID_PLATFORM") != "netns":
        double = tmp / "double"
        double.mkdir(exist_ok=True)
        (double / "apt.json").write_text(json.dumps({"hello": ["2.10-3"]}))
        env["TG_TESTDOUBLE_DIR"] = str(double)
    else:
        env["TG_NETNS_RUN_DIR"] = str(tmp / "run")
    return env


@pytest.fixture(scope="session")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    tmp = tmp_path_factory.mktemp("serve")
    s = _Server(tmp, _base_env(tmp))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def server(first: _Server) -> str:
    return first.url


@pytest.fixture(scope="session")
def second(first: _Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another `tg serve` on the first one's state store (its own data dir;
    on the test double, the same double "platform", as one pool is shared;
    on netns, another machine name)."""
    tmp = tmp_path_factory.mktemp("serve-second")
    env = _base_env(first.tmp)
    env["TG_STATE_URL"] = str(first.tmp / "data" / "state.db")
    if os.environ.get("TESTGRID_PLATFORM") == "netns":
        env["TG_NETNS_RUN_DIR"] = str(tmp / "run")
        env["TG_HOSTNAME"] = f"second-{os.getpid()}"
    s = _Server(tmp, env)
    try:
        yield s.url
    finally:
        s.stop()


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
