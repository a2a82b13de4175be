"""The `testgrid` client against a real `tg serve` (see conftest)."""

from __future__ import annotations

import os
import pathlib
import re
from concurrent.futures import ThreadPoolExecutor
from time import sleep

import pytest

import testgrid

DOUBLE = os.environ.get("TESTGRID_PLATFORM") != "netns"


def test_the_issue_example(client: testgrid.rest.Client) -> None:
    session = client.open_session("helloworld")
    hello = client.get_package(name="hello", version="2.10-3")
    session.deploy(hello)  # no node given: tg allocates one
    node = session.allocate_node(image="host", profile="cdn:basic")
    assert node.labels == {"tier": "cdn"}
    while not all(node.is_up() for node in session):
        sleep(1)
    out = [node.execute("uname") for node in session]
    assert len(out) == 2
    for o in out:
        assert isinstance(o, str)
        assert o.endswith(": sh -c uname") if DOUBLE else o == "Linux"
    assert all(n.address for n in session.nodes)
    files = session.export()
    assert 'package "hello"' in files["main.tg.hcl"]
    assert any("cdn:basic" in t for k, t in files.items() if k.startswith("catalog-"))
    assert [s.name for s in client.sessions()] == ["alice/helloworld"]
    session.close()
    assert client.sessions() == []


def test_exec_errors_and_bytes(client: testgrid.rest.Client) -> None:
    session = client.open_session("execs")
    try:
        node = session.allocate_node(is_image="host")
        with pytest.raises(testgrid.ExecError) as e:
            node.execute(["exit", "3"] if DOUBLE else "exit 3")
        assert e.value.returncode == 3
        r = node.run(["bytes"] if DOUBLE else ["printf", "\\377\\r\\n"])
        assert r.stdout == b"\xff\r\n"
        assert node.execute(["bytes"] if DOUBLE else ["printf", "\\377\\r\\n"]) == b"\xff\r"
    finally:
        session.close()


def test_refusals(client: testgrid.rest.Client, bob: testgrid.rest.Client) -> None:
    with pytest.raises(testgrid.ApiError) as e:
        client.get_package("hello", "9.9-9")
    assert e.value.status == 404 and "2.10-3" in e.value.message
    with pytest.raises(testgrid.ApiError) as e:
        client.get_package("hello", "not a version")
    assert e.value.status == 400
    with pytest.raises(testgrid.ApiError) as e:
        client.open_session("bad name")
    assert e.value.status == 400
    session = client.open_session("mine")
    try:
        with pytest.raises(testgrid.ApiError) as e:
            bob.session("alice/mine")
        assert e.value.status == 403
        # bob's own session of the same name is another session
        theirs = bob.open_session("mine")
        assert theirs.name == "bob/mine"
        theirs.close()
        with pytest.raises(testgrid.ApiError) as e:
            session.allocate_node(profile="nope")
        assert e.value.status == 400 and "cdn:basic" in e.value.message
        with pytest.raises(testgrid.JobError):
            session.allocate_node(image="windows")
        assert session.nodes == []
        # reopening gives the same session
        assert client.open_session("mine").name == "alice/mine"
    finally:
        session.close()


def test_wait_false_returns_the_job(client: testgrid.rest.Client) -> None:
    session = client.open_session("nowait")
    try:
        job = session.allocate_node(image="host", wait=False)
        assert isinstance(job, testgrid.Job)
        job.wait()
        assert job.status == "succeeded"
        assert [n.name for n in session] == [job.result["node"]]
        session.nodes[0].release()
        assert session.nodes == []
    finally:
        session.close()


def test_job_events(client: testgrid.rest.Client, bob: testgrid.rest.Client) -> None:
    session = client.open_session("events")
    try:
        job = session.allocate_node(image="host", wait=False)
        events = list(job.events())
        kinds = [e["kind"] for e in events]
        assert kinds[-1] == "done", kinds
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        started = [e for e in events if e["kind"] == "started"]
        assert any(e["address"] == "node.n1" and e["op"] == "create" for e in started)
        assert "finished" in kinds
        assert job.status == "succeeded" and job.result["node"] == "n1"
        # a late client gets the whole stream again
        assert [e["kind"] for e in job.events()] == kinds
        with pytest.raises(testgrid.ApiError) as e:
            list(testgrid.rest.Job(bob, {"id": job.id}).events())
        assert e.value.status == 404
        failing = session.allocate_node(image="windows", wait=False)
        last = list(failing.events())[-1]
        assert last["kind"] == "done" and last["job"]["status"] == "failed"
        assert failing.status == "failed"
    finally:
        session.close()


def test_inventory_and_pool(
    client: testgrid.rest.Client, admin: testgrid.rest.Client
) -> None:
    session = client.open_session("inv")
    try:
        assert session.inventory() == {"all": {"hosts": {}, "children": {}}}
        session.allocate_node(image="host", labels={"role": "web"})
        inv = session.inventory()
        assert list(inv["all"]["hosts"]) == ["n1"]
        assert inv["all"]["hosts"]["n1"]["tg_labels"] == {"role": "web"}
        assert "role_web" in inv["all"]["children"]
        script = session.inventory(format="script")
        assert "n1" in script["_meta"]["hostvars"]
        with pytest.raises(testgrid.ApiError) as e:
            session.inventory(format="ini")
        assert e.value.status == 400
        with pytest.raises(testgrid.ApiError) as e:
            client.pool()
        assert e.value.status == 403 and e.value.code == "forbidden"
        assert admin.pool() == []  # the test catalog has no ssh pool
        with pytest.raises(testgrid.ApiError) as e:
            admin.quarantine("nohost", "broken disk")
        assert e.value.status == 404
    finally:
        session.close()


def test_upload(client: testgrid.rest.Client, bob: testgrid.rest.Client, tmp_path: pathlib.Path) -> None:
    session = client.open_session("uploads")
    try:
        motd = tmp_path / "motd.txt"
        motd.write_text("hello motd\n")
        up = session.upload(motd)
        assert (up.name, up.size, len(up.sha256)) == ("motd.txt", 11, 64)
        assert session.upload(b"again\n", name="motd.txt").size == 6
        with pytest.raises(ValueError):
            session.upload(b"x")
        for bad in ["../x", ".hidden", "a b"]:
            with pytest.raises(testgrid.ApiError) as e:
                session.upload(b"x", name=bad)
            assert (e.value.status, e.value.code) == (400, "bad_request"), bad
        with pytest.raises(testgrid.ApiError) as e:
            testgrid.Session(bob, {"name": session.name}).upload(b"x", name="x.txt")
        assert e.value.status == 403
        node = session.allocate_node(profile="reader")
        assert node.labels["motd"] == "again"
        if DOUBLE:
            deb = session.upload(b"!<arch>\n", name="mine_1.0_all.deb")
            session.deploy(testgrid.Package(name="mine", version="1.0"), node=node, deb=deb)
            assert 'deb     = "files/mine_1.0_all.deb"' in session.export()["main.tg.hcl"]
            with pytest.raises(testgrid.ApiError) as e:
                session.delete_file(deb)
            assert (e.value.status, e.value.code) == (409, "in_use")
            assert "`mine`" in e.value.message
        # A path the session names is read only in its uploads and the catalog.
        session.upload(b"/etc/passwd\n", name="path.txt")
        with pytest.raises(testgrid.JobError) as j:
            session.allocate_node(image="host")
        assert "outside the directories this testbed may read" in j.value.message
        session.upload(b"files/motd.txt\n", name="path.txt")
        assert session.allocate_node(profile="reader").labels["leak"] == "again"
        names = [f.name for f in session.files()]
        assert names == sorted(names) and "motd.txt" in names
        assert [f.size for f in session.files() if f.name == "motd.txt"] == [6]
        session.delete_file("path.txt")
        assert "path.txt" not in [f.name for f in session.files()]
        with pytest.raises(testgrid.ApiError) as e:
            session.delete_file("path.txt")
        assert (e.value.status, e.value.code) == (404, "no_such_file")
    finally:
        session.close()


def test_impair(client: testgrid.rest.Client) -> None:
    session = client.open_session("impaired")
    try:
        node = session.allocate_node(image="host")
        started = None if DOUBLE else node.execute("cut -d' ' -f22 /proc/1/stat")
        job = node.impair(rate="10mbit")
        if not DOUBLE:
            # netns changes the link in place: the node (its init) stays.
            assert job.result["apply"] == {"added": 0, "changed": 1, "destroyed": 0}
            assert node.execute("cut -d' ' -f22 /proc/1/stat") == started
        text = session.export()["main.tg.hcl"]
        assert "impair {" in text and '"10mbit"' in text, text
        # A later change keeps it: it is part of the session's testbed.
        session.allocate_node(image="host")
        assert '"10mbit"' in session.export()["main.tg.hcl"]
        session.impair(rate="20mbit")
        assert '"20mbit"' in session.export()["main.tg.hcl"]
        with pytest.raises(testgrid.ApiError) as e:
            node.impair(rate="fast")
        assert e.value.status == 400 and "rate" in e.value.message
        with pytest.raises(testgrid.ApiError) as e:
            node.impair(latency="5ms")
        assert e.value.status == 400 and "latency" in e.value.message
        node.clear_impairment()
        session.clear_impairment()
        assert "impair {" not in session.export()["main.tg.hcl"]
    finally:
        session.close()


def test_deploy_requires_shapes_the_node_it_allocates(client: testgrid.rest.Client) -> None:
    session = client.open_session("shaped")
    try:
        hello = client.get_package(name="hello", version="2.10-3")
        session.deploy(hello, requires={"profile": "cdn:basic"})
        [node] = session.nodes
        assert node.labels == {"tier": "cdn"}
        assert re.search(r'profile\s*=\s*"cdn:basic"', session.export()["main.tg.hcl"])
        with pytest.raises(testgrid.ApiError) as e:
            session.deploy(hello, requires={"profile": "nope"})
        assert e.value.status == 400 and "cdn:basic" in e.value.message
        with pytest.raises(testgrid.ApiError) as e:
            session.deploy(hello, node=node, requires={"image": "host"})
        assert e.value.status == 400
        with pytest.raises(testgrid.ApiError) as e:
            session.deploy(hello, requires={"colour": "red"})
        assert e.value.status in (400, 422)
    finally:
        session.close()


def test_two_servers_on_one_store(client: testgrid.rest.Client, second: str) -> None:
    """A session opened on one server is served by another on the same
    store (test double, as a pool); both changing it at once loses no
    change (a `changed` refusal is sent again). A netns session is held by
    the server whose machine runs its nodes."""
    s = client.open_session("two-servers")
    other = testgrid.rest.Client(url=second, token=os.environ["TESTGRID_TOKEN"])
    try:
        if os.environ.get("TESTGRID_PLATFORM") == "netns":
            s.allocate_node(image="host")
            with pytest.raises(testgrid.ApiError) as e:
                other.open_session("two-servers")
            assert (e.value.status, e.value.code) == (409, "elsewhere")
            return
        s2 = other.open_session("two-servers")
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda x: x.allocate_node(image="host"), [s, s2]))
        s2.allocate_node(image="host")
        nodes = other.session("two-servers").nodes
        assert len(nodes) == 3 and all(n.is_up() for n in nodes)
        assert [n.execute("uname") for n in s.refresh()] == [f"{n.name}: sh -c uname" for n in nodes]
    finally:
        s.close()
        other.close()
