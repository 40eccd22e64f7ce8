"""Entry script of a worker process (run by path, never imported by the broker).

It registers ``selftaught``, ``selftaught.proxy`` and ``selftaught.sandbox`` as empty package
shells pointing at their directories, so the worker can import the sandbox's child-side modules
without running any package ``__init__`` (which could pull the LM clients and the rest of the
broker into a process that forks untrusted code, and makes every fork and exit dearer). Then
it hands over to ``_forkserver_main.main``.
"""

import sys
import types
from pathlib import Path


def _register_package_shells() -> None:
    here = Path(__file__).resolve().parent
    packages = (("selftaught", here.parent), ("selftaught.proxy", here.parent / "proxy"), ("selftaught.sandbox", here))
    for name, path in packages:
        shell = types.ModuleType(name)
        shell.__path__ = [str(path)]
        sys.modules[name] = shell


if __name__ == "__main__":
    _register_package_shells()
    from selftaught.sandbox._forkserver_main import main

    sys.exit(main(sys.argv[1:]))
