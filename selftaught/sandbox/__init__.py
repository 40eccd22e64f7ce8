"""Sandboxes for untrusted, LM-written code: the ``Sandbox`` protocol and its fork-server backend.

``ForkServerSandbox`` is the implementation; ``probe`` reports what this host offers (bubblewrap,
root, interpreter readability) before one is built; ``time_left`` is the deadline a proxy call
being served passes on to the jobs it starts. Everything else here is private.
"""

from selftaught.sandbox._job_run import time_left
from selftaught.sandbox._launch import HostReport, probe
from selftaught.sandbox.base import Handler, Sandbox
from selftaught.sandbox.pool import DEFAULT_PRELOAD, ForkServerSandbox

__all__ = ["DEFAULT_PRELOAD", "ForkServerSandbox", "Handler", "HostReport", "Sandbox", "probe", "time_left"]
