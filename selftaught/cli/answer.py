"""``selftaught answer DIR``: be the language model of a ``--lm manual:DIR`` run by hand.

Lists the requests still waiting for answers (oldest first) and, unless ``--list``, shows the
oldest one's prompt (or request ``ID``'s) and opens its next missing answer in ``$EDITOR``
(``VISUAL`` first, then ``EDITOR``, else ``vi``). The editor works on a scratch copy; what it
saved is moved into place atomically when it exits, and an empty file is not an answer.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from selftaught.errors import ConfigError
from selftaught.lm.manual import PendingRequest, pending, write_answer

__all__ = ["answer"]


def answer(args: argparse.Namespace, env: dict[str, str]) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory (the DIR of --lm manual:DIR)")
    waiting = pending(directory)
    if not waiting:
        print(f"no requests waiting in {directory}")
        return 0
    now = time.time()
    for request in waiting:
        print(f"{request.id}  {request.tag or '-':<28}  {len(request.missing)} answer(s) missing  "
              f"waiting {(now - request.created_at) / 60:.0f} min")
    if args.list:
        return 0
    chosen = _choose(waiting, args.request)
    target = chosen.missing[0]
    try:
        print(f"\n{chosen.prompt_file.read_text(encoding='utf-8')}")
    except OSError as exc:
        raise ConfigError(f"cannot read {chosen.prompt_file}: {exc.strerror}") from exc
    editor = env.get("VISUAL") or env.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="selftaught-answer-") as scratch:
        draft = Path(scratch) / target.name
        draft.write_text("", encoding="utf-8")
        try:
            subprocess.run([*shlex.split(editor), str(draft)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ConfigError(f"the editor {editor!r} failed: {exc}; nothing was answered") from exc
        text = draft.read_text(encoding="utf-8")
    if not text.strip():
        print(f"empty answer: {target.name} not written")
        return 1
    write_answer(target, text)
    print(f"wrote {target}")
    return 0


def _choose(waiting: list[PendingRequest], request_id: str | None) -> PendingRequest:
    if request_id is None:
        return waiting[0]
    for request in waiting:
        if request.id == request_id or request.id.startswith(request_id):
            return request
    raise ConfigError(f"no pending request {request_id!r} (pending: {', '.join(r.id for r in waiting)})")
