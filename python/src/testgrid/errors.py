"""The errors the client raises."""

from __future__ import annotations

from typing import Union


class TestGridError(Exception):
    """Any error of the client."""

    __test__ = False  # not a pytest test class


class ApiError(TestGridError):
    """The server refused a request: its HTTP status and error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class JobError(TestGridError):
    """A job ended failed: its error code and message."""

    def __init__(self, job_id: str, code: str, message: str) -> None:
        super().__init__(f"job {job_id} failed ({code}): {message}")
        self.job_id = job_id
        self.code = code
        self.message = message


class ExecError(TestGridError):
    """A command exited with a status other than 0 (like
    `subprocess.CalledProcessError`)."""

    def __init__(
        self,
        cmd: object,
        returncode: int,
        stdout: Union[str, bytes],
        stderr: Union[str, bytes],
    ) -> None:
        super().__init__(f"command {cmd!r} exited with status {returncode}")
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
