import pytest
import torch

from lecturekit.course import sandbox

torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox: needs a bubblewrap sandbox; skipped, saying why, where none starts")


def pytest_runtest_setup(item):
    """Skip a `sandbox` test (before its fixtures start one) where bubblewrap cannot start a sandbox."""
    if item.get_closest_marker("sandbox") is not None and sandbox.bwrap_problem() is not None:
        pytest.skip(f"no sandbox here: {sandbox.bwrap_problem()} (run `make grade-deps`)")
