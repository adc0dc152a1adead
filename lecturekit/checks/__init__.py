"""Exercise checkers: `check_<exercise>(fn)` for every exercise of the course.

Every public `check_*` function of every module in this package (`part0.py`, `part1.py`, ...) is available here,
so notebooks write `from lecturekit.checks import check_discounted_returns`.
"""
from __future__ import annotations

import importlib
import pkgutil

from lecturekit.checking import CheckFailed  # noqa: F401  (re-exported for notebooks and tests)

__all__ = ["CheckFailed"]

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in dir(_module):
        if _name.startswith("check_"):
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)
