"""The REST client of `tg serve` (`/v1`)."""

from __future__ import annotations

import base64
import json as jsonlib
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterator, List, NoReturn, Optional, Sequence, Union

import httpx

from .errors import ApiError, ExecError, JobError

DEFAULT_URL = "http://127.0.0.1:7676"
# How many times a request refused as `changed` (409) is sent.
CHANGED_RETRIES = 5

Command = Union[str, Sequence[str]]


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


@dataclass
class Package:
    """A Debian package version the server found installable."""

    name: str
    version: str
    versions: List[str] = field(default_factory=list)


@dataclass
class UploadedFile:
    """A file uploaded to a session: the testbed reads it as `files/NAME`,
    and `session.deploy(..., deb=...)` installs it when it is a `.deb`."""

    name: str
    size: int
    sha256: str


def _uploaded(r: Dict[str, Any]) -> UploadedFile:
    return UploadedFile(name=str(r["name"]), size=int(r["size"]), sha256=str(r["sha256"]))


@dataclass
class ExecResult:
    """A command's status and output (`bytes` when it is not UTF-8)."""

    returncode: int
    stdout: Union[str, bytes]
    stderr: Union[str, bytes]
    timed_out: bool = False


class Job:
    """A change of a session running on the server."""

    def __init__(self, client: "Client", data: Dict[str, Any]) -> None:
        self._client = client
        self.data = data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def result(self) -> Any:
        return self.data.get("result")

    def refresh(self) -> "Job":
        self.data = self._client._request("GET", f"/v1/jobs/{_quote(self.id)}")
        return self

    def events(self) -> Iterator[Dict[str, Any]]:
        """The job's progress as it happens (server-sent events): every event
        so far, then the rest, each a dict with `seq`, `kind` (`started`,
        `finished`, `failed`, `skipped`, `done`) and `address`, `op`,
        `elapsed_ms`, `message` as they apply. The last is `done`, whose
        `job` (the final document) this job then holds."""
        path = f"/v1/jobs/{_quote(self.id)}/events"
        with self._client._http.stream("GET", path) as r:
            if r.status_code >= 400:
                r.read()
                _raise(r)
            data: List[str] = []
            for line in r.iter_lines():
                if line == "":
                    if data:
                        event: Dict[str, Any] = jsonlib.loads("\n".join(data))
                        data = []
                        if event.get("kind") == "done" and isinstance(event.get("job"), dict):
                            self.data = event["job"]
                        yield event
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                if name == "data":
                    data.append(value[1:] if value.startswith(" ") else value)

    def wait(self, timeout: float = 600.0, interval: float = 0.1) -> "Job":
        """Wait until the job ends; raise `JobError` when it failed."""
        deadline = time.monotonic() + timeout
        while self.status == "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still running after {timeout}s")
            time.sleep(interval)
            interval = min(interval * 1.5, 1.0)
            self.refresh()
        if self.status == "failed":
            err = self.data.get("error") or {}
            raise JobError(self.id, str(err.get("code", "")), str(err.get("message", "")))
        return self


class Node:
    """A node of a session."""

    def __init__(self, session: "Session", data: Dict[str, Any]) -> None:
        self.session = session
        self.data = data

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def address(self) -> Optional[str]:
        a = self.data.get("address")
        return None if a is None else str(a)

    @property
    def labels(self) -> Dict[str, str]:
        return dict(self.data.get("labels") or {})

    @property
    def state(self) -> str:
        return str(self.data.get("state"))

    def _path(self) -> str:
        return f"{self.session._path()}/nodes/{_quote(self.name)}"

    def refresh(self) -> "Node":
        self.data = self.session.client._request("GET", self._path())
        return self

    def is_up(self) -> bool:
        """The node is created and answers (`true` runs)."""
        self.refresh()
        if self.state != "ready":
            return False
        try:
            return self.run(["true"]).returncode == 0
        except ApiError:
            return False

    def run(self, cmd: Command, timeout: Optional[float] = None) -> ExecResult:
        """Run `cmd` (a string through `sh -c`, a list as argv): the full result."""
        body: Dict[str, Any] = {"command": cmd if isinstance(cmd, str) else list(cmd)}
        if timeout is not None:
            body["timeout"] = timeout
        r = self.session.client._request("POST", self._path() + "/exec", json=body)
        return ExecResult(
            returncode=int(r["returncode"]),
            stdout=_decode(r["stdout"], r.get("stdout_encoding")),
            stderr=_decode(r["stderr"], r.get("stderr_encoding")),
            timed_out=bool(r.get("timed_out")),
        )

    def execute(self, cmd: Command, timeout: Optional[float] = None) -> Union[str, bytes]:
        """Run `cmd`; its stdout without the trailing newline. Raises
        `ExecError` when the status is not 0."""
        r = self.run(cmd, timeout=timeout)
        if r.returncode != 0:
            raise ExecError(cmd, r.returncode, r.stdout, r.stderr)
        out = r.stdout
        if isinstance(out, bytes):
            return out[:-1] if out.endswith(b"\n") else out
        return out[:-1] if out.endswith("\n") else out

    def release(self, wait: bool = True) -> Job:
        job = self.session._job("DELETE", self._path())
        return job.wait() if wait else job

    def impair(self, wait: bool = True, **keys: str) -> Job:
        """Impair this node's links: `node.impair(delay="50ms", loss="1%")`
        (keys as in an `impair` block: delay, jitter, loss, rate, corrupt,
        duplicate, reorder). The node's impairment becomes exactly these
        keys; it is kept in the session's testbed, so later calls keep it."""
        job = self.session._job("PUT", self._path() + "/impair", json=dict(keys))
        return job.wait() if wait else job

    def clear_impairment(self, wait: bool = True) -> Job:
        """Remove this node's own impairment (the session's, if any, stays)."""
        job = self.session._job("DELETE", self._path() + "/impair")
        return job.wait() if wait else job

    def __repr__(self) -> str:
        return f"Node({self.name!r}, address={self.address!r}, state={self.state!r})"


def _decode(text: str, encoding: Optional[str]) -> Union[str, bytes]:
    if encoding == "base64":
        return base64.b64decode(text)
    return text


class Session:
    """A session of the caller on the server; iterating it yields its nodes."""

    def __init__(self, client: "Client", data: Dict[str, Any]) -> None:
        self.client = client
        self.data = data

    @property
    def name(self) -> str:
        """`OWNER/NAME`."""
        return str(self.data["name"])

    def _path(self) -> str:
        return f"/v1/sessions/{_quote(self.name)}"

    def _job(self, method: str, path: str, json: Optional[Dict[str, Any]] = None) -> Job:
        r = self.client._request(method, path, json=json)
        return Job(self.client, r["job"])

    def refresh(self) -> "Session":
        self.data = self.client._request("GET", self._path())
        return self

    @property
    def nodes(self) -> List[Node]:
        r = self.client._request("GET", self._path() + "/nodes")
        return [Node(self, n) for n in r["nodes"]]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def node(self, name: str) -> Node:
        return Node(self, {"name": name}).refresh()

    def impair(self, wait: bool = True, **keys: str) -> Job:
        """Impair every node's link to the session's network (the network's
        `impair` block becomes exactly these keys; a node's own overrides it
        key by key)."""
        job = self._job("PUT", self._path() + "/impair", json=dict(keys))
        return job.wait() if wait else job

    def clear_impairment(self, wait: bool = True) -> Job:
        """Remove the session-wide impairment."""
        job = self._job("DELETE", self._path() + "/impair")
        return job.wait() if wait else job

    def allocate_node(
        self,
        image: Optional[str] = None,
        profile: Optional[str] = None,
        is_image: Optional[str] = None,
        cpus: Optional[int] = None,
        memory: Optional[str] = None,
        labels: Optional[Dict[str, str]] = None,
        name: Optional[str] = None,
        wait: bool = True,
    ) -> Any:
        """Add a node; returns the `Node` (or the `Job` with `wait=False`)."""
        body: Dict[str, Any] = {}
        for k, v in (
            ("image", image if image is not None else is_image),
            ("profile", profile),
            ("cpus", cpus),
            ("memory", memory),
            ("labels", labels),
            ("name", name),
        ):
            if v is not None:
                body[k] = v
        job = self._job("POST", self._path() + "/nodes", json=body)
        if not wait:
            return job
        job.wait()
        return self.node(str(job.result["node"]))

    def upload(
        self,
        source: Union[str, "os.PathLike[str]", bytes],
        name: Optional[str] = None,
    ) -> UploadedFile:
        """Upload a file (a path, or the bytes themselves) to the session as
        `name` (default: the path's file name; required for bytes). The
        session's testbed reads it as `files/NAME`; a `.deb` can then be
        deployed with `deploy(package, deb=NAME)`. An existing file of that
        name is replaced."""
        if isinstance(source, bytes):
            if name is None:
                raise ValueError("give `name` when uploading bytes")
            r = self.client._put(f"{self._path()}/files/{_quote(name)}", source)
        else:
            path = os.fspath(source)
            if name is None:
                name = os.path.basename(path)
            with open(path, "rb") as f:
                r = self.client._put(f"{self._path()}/files/{_quote(name)}", f)
        return _uploaded(r)

    def files(self) -> List[UploadedFile]:
        """The files uploaded to the session, sorted by name."""
        return [_uploaded(f) for f in self.client._request("GET", self._path() + "/files")]

    def delete_file(self, name: Union[str, UploadedFile]) -> None:
        """Delete an uploaded file. Refused (`ApiError` 409, code `in_use`)
        while a package of the session is deployed from it; 404 when it is
        not there."""
        n = name if isinstance(name, str) else name.name
        self.client._request("DELETE", f"{self._path()}/files/{_quote(n)}")

    def deploy(
        self,
        package: Package,
        node: Optional[Node] = None,
        wait: bool = True,
        deb: Optional[Union[str, UploadedFile]] = None,
        requires: Optional[Dict[str, Any]] = None,
    ) -> Any:
        """Install `package` on `node` (none: on a new node, shaped by
        `requires`: `{"profile": "cdn:basic"}`, or `image`, `cpus`, `memory`,
        `labels`), from the apt archives or, with `deb`, from that uploaded
        `.deb` (`upload`); returns the `Job`, finished unless `wait=False`."""
        body: Dict[str, Any] = {"name": package.name, "version": package.version}
        if node is not None:
            body["node"] = node.name
        if requires is not None:
            body["requires"] = dict(requires)
        if deb is not None:
            body["deb"] = deb if isinstance(deb, str) else deb.name
        job = self._job("POST", self._path() + "/packages", json=body)
        return job.wait() if wait else job

    def undeploy(self, package: Union[Package, str], node: Optional[Node] = None, wait: bool = True) -> Job:
        name = package if isinstance(package, str) else package.name
        path = f"{self._path()}/packages/{_quote(name)}"
        if node is not None:
            path += "?node=" + _quote(node.name)
        job = self._job("DELETE", path)
        return job.wait() if wait else job

    def export(self) -> Dict[str, str]:
        """The session's testbed files (`main.tg.hcl` and the catalog's), by
        name: write them into a folder to review and re-apply with `tg`."""
        r = self.client._request("GET", self._path() + "/testbed")
        return {str(k): str(v) for k, v in r["files"].items()}

    def inventory(self, format: str = "json") -> Dict[str, Any]:
        """The session's Ansible inventory: the static document
        (`tg output inventory -format json`), or with `format="script"` the
        dynamic-inventory `--list` answer."""
        r = self.client._request("GET", f"{self._path()}/inventory?format={_quote(format)}")
        return dict(r)

    def close(self, wait: bool = True) -> Job:
        """Destroy everything of the session and end it."""
        job = self._job("DELETE", self._path())
        return job.wait() if wait else job

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session({self.name!r})"


class Client:
    """A client of one `tg serve`: `url` (default `TESTGRID_URL`, else
    http://127.0.0.1:7676) and `token` (default `TESTGRID_TOKEN`)."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 120.0,
    ) -> None:
        self.url = (url or os.environ.get("TESTGRID_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("TESTGRID_TOKEN", "")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, json: Optional[Dict[str, Any]] = None) -> Any:
        # A 409 `changed` (another server changed the session between this
        # server's read and its write) did nothing: send it again.
        for attempt in range(CHANGED_RETRIES):
            r = self._http.request(method, path, json=json)
            if r.status_code != 409 or _code(r) != "changed":
                break
            time.sleep(0.05 * 2**attempt)
        if r.status_code >= 400:
            _raise(r)
        if r.status_code == 204:
            return None
        return r.json()

    def _put(self, path: str, content: Union[bytes, BinaryIO]) -> Any:
        """PUT a raw body (streamed from a file object)."""
        headers = {"content-type": "application/octet-stream"}
        r = self._http.request("PUT", path, content=content, headers=headers)
        if r.status_code >= 400:
            _raise(r)
        return r.json()

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def open_session(self, name: str) -> Session:
        """Open the caller's session `name` (reopened when it exists)."""
        return Session(self, self._request("POST", "/v1/sessions", json={"name": name}))

    def session(self, name: str) -> Session:
        return Session(self, self._request("GET", f"/v1/sessions/{_quote(name)}"))

    def sessions(self) -> List[Session]:
        r = self._request("GET", "/v1/sessions")
        return [Session(self, s) for s in r["sessions"]]

    def get_package(self, name: str, version: str) -> Package:
        """Check that `name` `version` is installable (`ApiError` 404 lists
        the versions that are)."""
        r = self._request("GET", f"/v1/packages/{_quote(name)}/{_quote(version)}")
        return Package(name=r["name"], version=r["version"], versions=list(r.get("versions", [])))

    def job(self, job_id: str) -> Job:
        return Job(self, {"id": job_id, "status": "running"}).refresh()

    def pool(self) -> List[Dict[str, Any]]:
        """The hosts of the server's `ssh` pools with their leases (admins only)."""
        return list(self._request("GET", "/v1/pool")["hosts"])

    def quarantine(self, host: str, reason: str) -> Dict[str, Any]:
        """Take a pool host out of placement (admins only)."""
        return dict(self._request("POST", f"/v1/pool/{_quote(host)}/quarantine", json={"reason": reason}))

    def release_host(self, host: str) -> Dict[str, Any]:
        """Free a pool host: end its quarantine or lease (admins only)."""
        return dict(self._request("POST", f"/v1/pool/{_quote(host)}/release"))


def _error(r: httpx.Response) -> Optional[tuple[str, str]]:
    """The `(code, message)` of an error response (`None`: not tg's shape)."""
    try:
        err = r.json()["error"]
        return str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        return None


def _code(r: httpx.Response) -> str:
    """The error code of an error response ("" when it has none)."""
    err = _error(r)
    return err[0] if err else ""


def _raise(r: httpx.Response) -> NoReturn:
    """Raise the `ApiError` of an error response."""
    err = _error(r)
    if err is None:
        raise ApiError(r.status_code, "http", r.text)
    raise ApiError(r.status_code, *err)
