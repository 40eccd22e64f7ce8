"""Sandboxes for untrusted, LM-written code: the ``Sandbox`` protocol and its fork-server backend.

``ForkServerSandbox`` is the implementation; ``probe`` reports what this host offers (bubblewrap,
root, interpreter readability) before one is built; ``time_left`` is the deadline a proxy call
being served passes on to the jobs it starts. Everything else here is private.

One job's path (``pool`` -> ``_job_run`` -> ``_attempt``; the worker runs ``_forkserver_main``)::

    broker process                          | bwrap sandbox (one per worker; no network, own /tmp)
                                            |
    I/O thread (one per sandbox, epoll):    |   worker = fork server, pid 1, numpy imported,
                                            |     the job path rehearsed on a job of its own
      queues each worker's offers  <--------+---- "spare" + the broker's ends of the spare's job
                                            |     socket, output pipe, exit-report pipe, and
                                            |     its pidfd; sent once the spare says it is
    caller thread: ForkServerSandbox.run    |     ready (ready pipe)
      JobRun: CPU slot, deadline            |   background, at nice 10: fork -> spare (pid 1 of
      Attempt: take a queued spare (no      |     a new pid namespace; bare fork(2), no Python
        system call)                        |     at-fork hooks): joins a reused cgroup, scratch
        job frame ----------------------.   |     dir, rlimits, own uid, no_new_privs, seccomp;
        "took" (+ all slots in demand?)-+---+-->  "ready"; back to nice 0; waits on fd 3 and
        ready+start, result, proxy calls|   |     runs a warm-up job of its own at nice 19
                                        |   |     (stopping when the job comes): at once, or
                                        |   |     after 2 ms if the last "took" said all slots
                                        |   |     were in demand. "took": the server puts it
                                        |   |     back to nice 0 and forks a replacement
          <- direct, no hop via worker -+---+-->  spare = job: CPU rlimit, compile, call, send
        last result: drain output, read     |       results, os._exit
          the cgroup counters, return       |
          the Outcome                       |
    I/O thread: waits on the job's pidfd    |
      (readable once its tree is gone), then|     worker reaps it, writes the exit report
      frees the slot (the exit report      <+---- (status, CPU s, cgroup counters), wipes the
      where the kernel gave no pidfd); kills|     scratch dir, keeps the cgroup for a later job
      a job still alive 1 s after its       |
      results ------------------------------+--> "kill" (also: timeouts, protocol violations)

Only the job's own messages and the broker's work on them are on the caller's path; forking,
confining and warming up spares, and a finished job's exit, happen beside it (and, where the
worker may raise priorities again, at a lower priority than running jobs).

A job that has to be killed (a call past its window, the deadline, a protocol violation) or
that dies is waited for by its caller instead, so its exit report can say why it ended.
"""

from selftaught.sandbox._job_run import time_left
from selftaught.sandbox._launch import HostReport, probe
from selftaught.sandbox.base import Handler, Sandbox
from selftaught.sandbox.pool import DEFAULT_PRELOAD, ForkServerSandbox

__all__ = ["DEFAULT_PRELOAD", "ForkServerSandbox", "Handler", "HostReport", "Sandbox", "probe", "time_left"]
