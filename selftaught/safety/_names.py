"""Name tables the static scanner matches against, and small helpers to read AST names.

A *qualified name* is what an expression refers to after following the module's imports:
``o.system`` after ``import os as o`` is ``os.system``; ``open`` with no import shadowing it is the
builtin ``open``. Module tables match only names that really come from an import, so a local
variable called ``signal`` in numpy code is not mistaken for the ``signal`` module.

Left out: tracking names through assignments across functions, ``from m import *``, and
attribute lookups by computed strings beyond ``getattr(x, "constant")``.
"""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatchcase

__all__ = [
    "BUILTIN_REFERENCES",
    "DANGEROUS_MODULES",
    "IMPORT_REFERENCES",
    "INTROSPECTION_ATTRIBUTES",
    "ISOLATION",
    "Imports",
    "attribute_root",
    "dotted",
    "is_negated_isolation",
    "is_isolation_flag",
    "match_reference",
]

# Names that suggest isolation; a flag with such a name set falsy turns isolation off.
ISOLATION = re.compile(r"sandbox|isolat|secur|safe_?mode|jail|confine", re.IGNORECASE)
# Words that invert such a name: ``no_sandbox=True`` or ``insecure=True`` also turn it off.
_NEGATION = re.compile(
    r"(^|_)(no|not|disable|disabled|skip|bypass|without|allow_unsafe|dangerous)(_|$)|unsafe|insecure|unsandbox",
    re.IGNORECASE,
)
# Trailing words that make an isolation-sounding name a setting, not an on/off switch.
_SETTING_SUFFIXES = frozenset(
    {"dir", "dirs", "path", "paths", "root", "file", "name", "id", "size", "count", "limit", "limits",
     "timeout", "mb", "s", "ms", "key", "token", "layers", "level", "mode_name", "log", "logs"}
)


def is_isolation_flag(name: str) -> bool:
    """Whether ``name`` reads like an on/off switch for isolation (``use_sandbox``, ``no_jail``)."""
    if not ISOLATION.search(name):
        return False
    words = [word for word in re.split(r"_+|(?<=[a-z])(?=[A-Z])", name) if word]
    return not words or words[-1].lower() not in _SETTING_SUFFIXES


def is_negated_isolation(name: str) -> bool:
    """Whether a true value of this isolation flag means *less* isolation (``disable_sandbox``)."""
    return bool(_NEGATION.search(name))


# Modules whose import alone is worth a finding, by category.
IMPORT_REFERENCES: dict[str, tuple[str, str]] = {
    **{m: ("process_control", m) for m in ("subprocess", "multiprocessing", "signal", "resource", "pty", "posix",
                                            "pexpect", "sh", "psutil")},
    **{m: ("network", m) for m in ("socket", "ssl", "http.client", "http.server", "urllib.request", "urllib3",
                                    "requests", "httpx", "aiohttp", "websocket", "websockets", "ftplib", "smtplib",
                                    "telnetlib", "xmlrpc", "grpc", "paramiko", "socketserver", "asyncssh")},
    **{m: ("native_code", m) for m in ("ctypes", "_ctypes", "cffi")},
    **{m: ("lm_client", m) for m in ("openai", "anthropic", "litellm", "langchain", "langchain_openai",
                                      "google.generativeai", "cohere", "mistralai", "together", "groq")},
    **{m: ("dynamic_import", m) for m in ("runpy", "imp", "zipimport")},
}

# Attributes of imported modules, by category (``*`` patterns allowed).
_MODULE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "process_control": (
        "os.system", "os.popen", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.exec*", "os.spawn*",
        "os.posix_spawn*", "os.setsid", "os.setpgid", "os.abort", "os._exit", "os.wait*", "os.nice",
        "os.setuid", "os.setgid", "os.pidfd_*", "os.startfile", "os.register_at_fork",
        "concurrent.futures.ProcessPoolExecutor", "asyncio.create_subprocess_*",
    ),
    "env_read": ("os.environ", "os.environb", "os.getenv", "os.getenvb", "os.putenv", "os.unsetenv",
                 "posix.environ"),
    "file_access": (
        "io.open", "io.FileIO", "codecs.open", "os.open", "os.remove", "os.unlink", "os.rename", "os.replace",
        "os.rmdir", "os.removedirs", "os.mkdir", "os.makedirs", "os.listdir", "os.scandir", "os.walk", "os.chdir",
        "os.chmod", "os.chown", "os.symlink", "os.link", "os.truncate", "os.fdopen", "shutil.*", "tempfile.*",
        "glob.*", "numpy.load", "numpy.save", "numpy.savez", "numpy.loadtxt", "numpy.savetxt", "numpy.fromfile",
        "numpy.genfromtxt", "fileinput.*",
    ),
    "introspection": (
        "sys._getframe", "sys.modules", "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.meta_path",
        "sys.path_hooks", "inspect.currentframe", "inspect.stack", "inspect.getouterframes", "inspect.trace",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "builtins.__dict__",
    ),
    "exec_string": ("builtins.exec", "builtins.eval", "builtins.compile", "code.interact", "code.InteractiveConsole",
                    "code.InteractiveInterpreter", "types.FunctionType", "types.CodeType"),
    "dynamic_import": ("builtins.__import__", "importlib.import_module", "importlib.__import__",
                       "importlib.util.spec_from_file_location", "importlib.util.module_from_spec",
                       "importlib.machinery.*", "importlib.reload"),
    "lm_client": ("openai.*", "anthropic.*"),
}

# Builtins worth a finding whenever they are referenced (and not shadowed by an import).
BUILTIN_REFERENCES: dict[str, tuple[str, str]] = {
    "exec": ("exec_string", "exec"),
    "eval": ("exec_string", "eval"),
    "compile": ("exec_string", "compile"),
    "__import__": ("dynamic_import", "__import__"),
    "open": ("file_access", "open"),
    "__builtins__": ("introspection", "__builtins__"),
    "breakpoint": ("introspection", "breakpoint"),
}

# Attribute names that reach frames, globals or the class graph: the classic in-process escapes.
INTROSPECTION_ATTRIBUTES = frozenset(
    {"__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "f_back", "f_globals", "f_locals",
     "f_builtins", "gi_frame", "cr_frame", "tb_frame", "__reduce__", "__reduce_ex__"}
)

# Top-level modules whose dynamic import is reported (their static import is handled above or is common).
DANGEROUS_MODULES = frozenset(
    {m.split(".")[0] for m in IMPORT_REFERENCES}
    | {"os", "sys", "builtins", "importlib", "io", "shutil", "pathlib", "gc", "inspect", "code", "codecs",
       "tempfile", "glob", "pickle", "marshal", "types"}
)


def match_reference(qualname: str) -> tuple[str, str] | None:
    """The (category, table entry) an imported dotted name falls under, or None."""
    for category, patterns in _MODULE_ATTRIBUTES.items():
        for pattern in patterns:
            if fnmatchcase(qualname, pattern) or qualname.startswith(pattern.rstrip("*") + "."):
                return category, pattern.rstrip(".*") if pattern.endswith(".*") else pattern
    for module, hit in IMPORT_REFERENCES.items():
        if qualname == module or qualname.startswith(module + "."):
            return hit
    return None


def dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def attribute_root(node: ast.expr) -> ast.expr:
    """The innermost object of an attribute/subscript chain (``x`` in ``x.a[0].b``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node


class Imports:
    """The module's import aliases: local name -> dotted name it stands for."""

    def __init__(self, tree: ast.AST) -> None:
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if alias.name != "*":
                        self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self.aliases = {k: _normalise(v) for k, v in self.aliases.items()}

    def resolve(self, node: ast.expr) -> tuple[str, bool] | None:
        """(qualified name, came from an import) of a name or attribute chain, or None."""
        name = dotted(node)
        if name is None:
            return None
        root, _, rest = name.partition(".")
        if root in self.aliases:
            target = self.aliases[root]
            return _normalise(f"{target}.{rest}" if rest else target), True
        return name, False


def _normalise(qualname: str) -> str:
    for prefix, replacement in (("np.", "numpy."), ("__builtin__.", "builtins."), ("pathlib2.", "pathlib.")):
        if qualname.startswith(prefix):
            return replacement + qualname[len(prefix):]
    return qualname
