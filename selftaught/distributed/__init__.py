"""Scale-out on Ray (the optional ``ray`` extra): ``RaySandbox`` spreads solution evaluations over
a cluster's actors, each owning one fork-server sandbox, while improver runs stay with the broker.

This package is the only one that imports ``ray``, and only when a ``RaySandbox`` is built;
without Ray installed that raises a ``ConfigError`` naming ``pip install 'selftaught[ray]'``.
"""

from selftaught.distributed.sandbox import RaySandbox

__all__ = ["RaySandbox"]
