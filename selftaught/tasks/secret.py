"""The split secret: what makes ``val`` and ``test`` instances unknowable inside a sandbox.

A task's instances are drawn from seeded generators. If the seed were a function of public
constants only, a solution could import the task's own code inside its sandbox, regenerate the
split, find the instance it was just given and return the stored answer (a "lookup" solution).
So the seed of every ``val`` and ``test`` instance also depends on a ``SplitSecret``: 32 random
bytes that only the trusted broker holds (kept in the run store, or in a file a group shares on
purpose). ``train`` stays public: it is what improvers see anyway.

A secret is identified by its ``fingerprint`` (a hash, safe to print and store next to results);
the secret itself is never printed, passed to a sandbox or shown in a prompt. What the task code
sees is only a derived seed (``split_seed``): a task file's ``generate(rng, split, index)`` gets a
generator seeded from it, never the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from selftaught.errors import TaskError
from selftaught.records import Instance, Split

__all__ = ["HIDDEN_SPLITS", "SplitSecret", "instances_fingerprint", "split_seed"]

HIDDEN_SPLITS: frozenset[Split] = frozenset({"val", "test"})
_SIZE = 32


@dataclass(frozen=True, repr=False)
class SplitSecret:
    """32 secret bytes; ``repr`` and ``str`` show only the fingerprint."""

    key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != _SIZE:
            raise TaskError(f"a split secret is {_SIZE} bytes ({2 * _SIZE} hex digits)")

    @classmethod
    def new(cls) -> SplitSecret:
        """A fresh random secret."""
        return cls(secrets.token_bytes(_SIZE))

    @classmethod
    def from_hex(cls, text: str, where: str = "split secret") -> SplitSecret:
        """Parse ``2 * 32`` hex digits (surrounding whitespace ignored)."""
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            raise TaskError(f"{where} is not hex text") from None
        if len(key) != _SIZE:
            raise TaskError(f"{where} must be {2 * _SIZE} hex digits, not {2 * len(key)}")
        return cls(key)

    @classmethod
    def from_file(cls, path: Path) -> SplitSecret:
        """Read a secret written by ``selftaught secret export`` (one line of hex)."""
        try:
            text = path.expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise TaskError(f"cannot read secret file {path}: {exc}") from exc
        return cls.from_hex(text, f"secret file {path}")

    def hex(self) -> str:
        """The secret as hex text: for the store and for export, never for output a sandbox sees."""
        return self.key.hex()

    @property
    def fingerprint(self) -> str:
        """A short public identifier: two results with the same fingerprint used the same secret."""
        return hashlib.sha256(b"selftaught split secret/" + self.key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SplitSecret(fingerprint={self.fingerprint!r})"

    __str__ = __repr__


def split_seed(secret: SplitSecret | None, task: str, split: Split, index: int) -> int:
    """A 128-bit seed for instance ``index`` of a hidden split, or 0 for public ones.

    It is an HMAC of the task name, split and index under the secret: knowing seeds (or the
    instances drawn from them) reveals nothing about the secret or the other seeds.
    """
    if secret is None or split not in HIDDEN_SPLITS:
        return 0
    message = f"{task}/{split}/{index}".encode()
    return int.from_bytes(hmac.new(secret.key, message, hashlib.sha256).digest()[:16], "big")


def instances_fingerprint(splits: Iterable[tuple[Split, Sequence[Instance]]]) -> str:
    """A hash of every instance (args and answer) of the given splits, in order.

    Two runs whose fingerprints are equal scored the very same instances, whatever the machine.
    """
    digest = hashlib.sha256()
    for split, instances in splits:
        digest.update(f"{split}:{len(instances)}\n".encode())
        for instance in instances:
            line = json.dumps([list(instance.args), instance.answer], sort_keys=True, default=_plain)
            digest.update(hashlib.sha256(line.encode()).digest())
    return digest.hexdigest()[:16]


def _plain(value: object) -> object:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")
