"""The one exception tree of selftaught.

Everything a user can cause is a ``SelftaughtError``; the CLI turns it into one line and a
non-zero exit code. Third-party errors are translated where they enter (``raise X(...) from exc``).

* SelftaughtError
  + ConfigError          bad flags, config files or task files
  + LMError              a language model could not answer
    - LMUnavailable      the server is unreachable or keeps failing (after retries)
    - LMRequestError     the request itself is wrong (bad key, unknown model)
      · PromptRejected   this one prompt cannot be served (too long for the context); raised
                         inside the improver that sent it, the run goes on
  + BudgetExceeded       a call past one improver run's budget (LM calls, responses per call,
                         utility calls); raised inside the improver, the run goes on
  + RunCapExceeded       the run's own cap (``--max-lm-calls``, ``--max-tokens``, ``--max-cost-usd``)
                         is reached: the run stops cleanly (status ``stopped``) and can be resumed;
                         an improver whose call hit it gets it raised inside, and its run still ends
  + ProxyError           sandboxed code called a proxy wrongly (raised inside the improver)
  + SandboxError         the sandbox could not be started or is not strong enough (--strict-sandbox)
  + TaskError            a task could not be loaded or is malformed
  + StoreError           the run store is missing, corrupt or from a newer version

Candidate code failing is never an exception here: it is a result (``records.Outcome``).
"""

from __future__ import annotations

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "LMError",
    "LMRequestError",
    "LMUnavailable",
    "PromptRejected",
    "ProxyError",
    "RunCapExceeded",
    "SandboxError",
    "SelftaughtError",
    "StoreError",
    "TaskError",
]


class SelftaughtError(Exception):
    """Base of every error a user can cause; its message is shown as one line."""


class ConfigError(SelftaughtError):
    """A flag, config value or file given by the user is invalid."""


class LMError(SelftaughtError):
    """A language model could not give an answer."""


class LMUnavailable(LMError):
    """The LM server is unreachable or kept failing after retries."""


class LMRequestError(LMError):
    """The LM request is wrong in itself: bad key, unknown model, prompt that cannot fit."""


class PromptRejected(LMRequestError):
    """The model cannot serve this particular prompt (it does not fit its context window)."""


class BudgetExceeded(SelftaughtError):
    """A call went past one improver run's budget (LM calls, responses per call, utility calls)."""


class RunCapExceeded(SelftaughtError):
    """The run reached one of its own caps (LM calls, tokens, dollars); it stops and can be resumed.

    Deliberately not a ``BudgetExceeded``: an improver that swallows its budget errors must not be
    mistaken for one that ran the whole run out, and the run's end must not be mistaken for an
    improver's spent budget.
    """


class ProxyError(SelftaughtError):
    """Sandboxed code called ``utility`` or ``language_model`` with bad arguments."""


class SandboxError(SelftaughtError):
    """The sandbox could not be started, or is weaker than the user demanded."""


class TaskError(SelftaughtError):
    """A task could not be loaded, or declares something malformed."""


class StoreError(SelftaughtError):
    """The run store cannot be opened, is corrupt, or lacks the requested record."""
