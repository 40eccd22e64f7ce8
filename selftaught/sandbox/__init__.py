"""Sandboxes for untrusted, LM-written code: the ``Sandbox`` protocol and its fork-server backend.

``ForkServerSandbox`` is the implementation; ``probe`` reports what this host offers (bubblewrap,
root, interpreter readability) before one is built; ``time_left`` is the deadline a proxy call
being served passes on to the jobs it starts. Everything else here is private.

One job's path (``pool`` -> ``_job_run`` -> ``_attempt``; the worker runs ``_forkserver_main``)::

    broker process                          | bwrap sandbox (one per worker; no network, own /tmp)
                                            |
    caller thread: ForkServerSandbox.run    |   worker = fork server, pid 1, numpy imported
      JobRun: CPU slot, deadline            |     keeps 2 spares ready; for each it makes the
      Attempt:                              |     job socket + output pipe + exit-report pipe
        take a spare  <----- "spare" + fds -+---- (broker's ends, sent ahead over the control
        "took" ------------------------------+--->  socket; "took" makes it fork a replacement)
        job frame ----------------------.   |     fork -> spare (pid 1 of a new pid namespace)
        ready/start/result/proxy calls <-+--+-->    joins its cgroup, scratch dir, rlimits,
          (direct, no hop via the worker)|  |       own uid, no_new_privs, seccomp: all done
        last result: drain output, read  |  |       before any job exists; waits on fd 3
          the cgroup counters, return    '--+-->  spare = job: CPU rlimit, compile, call, send
          the Outcome                       |       results, os._exit
    reaper thread (one per sandbox):        |     worker reaps it, wipes scratch, writes the
      waits on the exit-report pipe  <------+---- exit report (status, CPU s, cgroup counters)
      then frees the slot; kills a job      |
      still alive 1 s after its results ----+--> "kill" (also: timeouts, protocol violations)

A job that has to be killed (a call past its window, the deadline, a protocol violation) or
that dies is waited for by its caller instead, so its exit report can say why it ended.
"""

from selftaught.sandbox._job_run import time_left
from selftaught.sandbox._launch import HostReport, probe
from selftaught.sandbox.base import Handler, Sandbox
from selftaught.sandbox.pool import DEFAULT_PRELOAD, ForkServerSandbox

__all__ = ["DEFAULT_PRELOAD", "ForkServerSandbox", "Handler", "HostReport", "Sandbox", "probe", "time_left"]
