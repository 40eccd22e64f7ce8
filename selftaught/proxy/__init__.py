"""The proxy contract: everything LM-written code in a sandbox sees of the trusted side, in one place.

An improver runs as ``improve_algorithm(initial_solution, utility, language_model)`` in a
sandboxed job; the two objects it gets are proxies, and every method call on them is a message to
the broker::

    sandboxed improver                               broker (trusted)
    language_model.prompt("e", "m", 2) --- call ---> remotes.parse_call: bind, check -> LMCall
                                                     broker: budget, LM call, events
    returns ["...", "..."]  <------------ reply ---  calls.reply_value
    or raises BudgetExceeded, ProxyError, ... <----  calls.reply_error (a class of selftaught.errors)

* ``remotes``: the two remotes, their methods and signatures (``SIGNATURES``), the specs an
  improver job carries (``improver_remotes``), and the binding and checking of a call's arguments.
* ``calls``: a call and its answer on the wire, both ends: the proxy objects built in the sandbox,
  and the error classes raised there, which are those of ``selftaught.errors`` (``ERROR_CLASSES``).
* ``helpers``: the ``helpers`` module every improver may import (``extract_code``), whose parser
  the trusted side also runs.
* ``describe``: the meta-utility's description, ``utility.str`` for an improver of improvers.

What stays elsewhere: budgets and dispatch (``broker``), the transport (``sandbox``), and the
plain ``records.RemoteSpec`` a ``Job`` carries. This package imports only ``errors``,
``records`` and ``config``, so both the broker and the sandboxed runner can use it.
"""

from selftaught.proxy.calls import ERROR_CLASSES, reply_error, reply_value, unpack_reply
from selftaught.proxy.describe import meta_description
from selftaught.proxy.helpers import (
    EXTRACT_CODE_SOURCE,
    HELPERS_MODULE,
    HELPERS_SOURCE,
    ends_in_open_block,
    extract_code,
)
from selftaught.proxy.remotes import (
    IMPROVER_ENTRY,
    SIGNATURES,
    LMCall,
    UtilityCall,
    improver_call,
    improver_remotes,
    parse_call,
)

__all__ = [
    "ERROR_CLASSES",
    "EXTRACT_CODE_SOURCE",
    "HELPERS_MODULE",
    "HELPERS_SOURCE",
    "IMPROVER_ENTRY",
    "SIGNATURES",
    "LMCall",
    "UtilityCall",
    "ends_in_open_block",
    "extract_code",
    "improver_call",
    "improver_remotes",
    "meta_description",
    "parse_call",
    "reply_error",
    "reply_value",
    "unpack_reply",
]
