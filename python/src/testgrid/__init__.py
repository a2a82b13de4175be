"""TestGrid: drive `tg serve` test environments from Python.

    import testgrid
    client = testgrid.rest.Client()          # TESTGRID_URL, TESTGRID_TOKEN
    session = client.open_session("helloworld")
    node = session.allocate_node(image="host")
    print(node.execute("uname"))
    session.close()
"""

from . import rest
from .errors import ApiError, ExecError, JobError, TestGridError
from .rest import Client, ExecResult, Job, Node, Package, Session, UploadedFile

__all__ = [
    "rest",
    "ApiError",
    "Client",
    "ExecError",
    "ExecResult",
    "Job",
    "JobError",
    "Node",
    "Package",
    "Session",
    "TestGridError",
    "UploadedFile",
]
