"""lecturekit: tested reference implementations for the policy-gradient course.

Notebooks start with::

    import lecturekit as lk
    lk.notebook_setup(seed=0)
"""
from __future__ import annotations

import random

import numpy as np

__version__ = "0.1.0"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def notebook_setup(seed: int = 0, threads: int = 1) -> None:
    """Seed everything and use `threads` torch threads (one lets notebooks run side by side under pytest-xdist)."""
    import torch

    torch.set_num_threads(threads)
    seed_everything(seed)
    try:  # inline figures when running inside IPython
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None:
            ip.run_line_magic("matplotlib", "inline")
    except Exception:  # plain Python: nothing to configure
        pass
