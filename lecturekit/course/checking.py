"""Machinery for exercise checkers (`lecturekit.checks`).

A checker runs the student's function on cases from smallest to largest and stops at the first failure with a
`CheckFailed` (an AssertionError) whose message names the exercise, the case, what was expected, what came back, and a
hint.  Nothing else may escape: a student's exception, a None, a wrong type/shape/dtype, NaN, or a modified input all
become readable failures.  Pattern::

    @checker("discounted_returns")
    def check_discounted_returns(fn):
        c = Check("discounted_returns")
        for rewards, gamma in cases:                       # smallest first
            case = f"rewards={rewards!r}, gamma={gamma}"
            got = c.call(fn, rewards, gamma, case=case)    # copies inputs, catches exceptions, detects mutation
            c.expect_close(got, reference(rewards, gamma), case=case,
                           mistakes={"reversed": (wrong_value, "hint for this mistake")})
        c.passed(f"{len(cases)} cases")
"""
from __future__ import annotations

import copy
import functools
import inspect
import os
import traceback
from typing import Any, Callable

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency, but the checker must never crash on import
    torch = None

NOT_IMPLEMENTED = "not implemented yet"
_HERE = os.path.dirname(os.path.abspath(__file__))


class CheckFailed(AssertionError):
    """A checker's verdict: the message says what is wrong and how to find it."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for it: the verdict alone, without the traceback through the checker's own code
        (a student's own exception already names its line in the message)."""
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {self}"]


def _is_tensor(x) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def describe(x: Any, limit: int = 300) -> str:
    """A short, exact-enough text for a value: arrays with dtype and shape, tensors with requires_grad."""
    if isinstance(x, str):
        return x
    if _is_tensor(x):
        flags = ", requires_grad=True" if x.requires_grad else ""
        body = np.array2string(x.detach().cpu().numpy(), precision=6, separator=", ", threshold=20)
        text = f"tensor({body}, dtype={str(x.dtype).replace('torch.', '')}, shape={tuple(x.shape)}{flags})"
    elif isinstance(x, np.ndarray):
        body = np.array2string(x, precision=6, separator=", ", threshold=20)
        text = f"array({body}, dtype={x.dtype}, shape={x.shape})"
    elif isinstance(x, (float, np.floating)):
        text = f"{float(x):.6g}"
    else:
        text = repr(x)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _copy(x):
    if _is_tensor(x):
        return x.detach().clone()
    try:
        return copy.deepcopy(x)
    except Exception:
        return x


def _same(a, b) -> bool:
    """Exact equality (NaN equal to NaN) for the types inputs come in."""
    try:
        if _is_tensor(a) or _is_tensor(b):
            if not (_is_tensor(a) and _is_tensor(b)) or a.shape != b.shape:
                return False
            return bool(torch.equal(a.detach(), b.detach()) or torch.allclose(a.detach(), b.detach(), 0, 0, True))
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                return False
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        if callable(a) or (torch is not None and isinstance(a, torch.nn.Module)):
            return True  # functions and modules are compared by the checker itself where it matters
        return bool(a == b) or (a != a and b != b)
    except Exception:
        return True


def _student_line(exc: BaseException) -> str:
    """'line N: code' of the deepest frame in the student's code (not in lecturekit, numpy or torch)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        f = os.path.abspath(fr.filename)
        if f.startswith(_HERE) or "site-packages" in f or "/lib/python" in f:
            continue
        return f" (line {fr.lineno}: {fr.line.strip()})" if fr.line else f" (line {fr.lineno})"
    return ""


class Check:
    """One run of one exercise's checker: calls the student's function and compares what comes back."""

    def __init__(self, exercise: str):
        self.exercise = exercise
        self.count = 0

    # -- verdicts -----------------------------------------------------------------------------------------------
    def fail(self, case: str, expected: Any = None, got: Any = None, hint: str = "") -> None:
        lines = [f"{self.exercise}: wrong answer for {case}"]
        if expected is not None:
            lines.append(f"  expected: {describe(expected)}")
        if got is not None or expected is not None:
            lines.append(f"  got:      {describe(got)}")
        if hint:
            lines.append(f"  hint: {hint}")
        raise CheckFailed("\n".join(lines))

    def passed(self, summary: str) -> None:
        print(f"✓ {self.exercise}: all checks passed ({summary})")

    # -- calling the student's function -------------------------------------------------------------------------
    def call(self, fn: Callable, *args, case: str, check_inputs: bool = True, **kwargs) -> Any:
        """fn(*args, **kwargs) with every exception turned into a CheckFailed, and inputs checked for mutation."""
        self.count += 1
        before_args = [_copy(a) for a in args]
        before_kwargs = {k: _copy(v) for k, v in kwargs.items()}
        try:
            out = fn(*args, **kwargs)
        except NotImplementedError:
            raise CheckFailed(
                f"{self.exercise}: {NOT_IMPLEMENTED}. Replace the `raise NotImplementedError` line in "
                f"`{self.exercise}` with your code, run that cell, then run this check again."
            ) from None
        except CheckFailed:
            raise
        except Exception as e:
            self.fail(case, got=f"{type(e).__name__}: {e}{_student_line(e)}",
                      hint="your function raised an exception on this input; the line above is where.")
        if check_inputs:
            names = _param_names(fn, len(args))
            for i, (a, b) in enumerate(zip(args, before_args)):
                if not _same(a, b):
                    self._mutated(case, names[i], b, a)
            for k, v in kwargs.items():
                if not _same(v, before_kwargs[k]):
                    self._mutated(case, k, before_kwargs[k], v)
        return out

    def _mutated(self, case: str, name: str, before, after) -> None:
        became = describe(after)
        if became == describe(before):  # a change below the printed precision, e.g. theta[k] += eps; theta[k] -= eps
            try:
                delta = float(np.max(np.abs(np.asarray(after, dtype=float) - np.asarray(before, dtype=float))))
                became += f" (it differs by up to {delta:.3g}, below the printed precision)"
            except (TypeError, ValueError, RuntimeError):
                pass
        self.fail(case, expected=f"`{name}` unchanged: {describe(before)}", got=f"`{name}` became {became}",
                  hint=f"your function modified its input `{name}` in place. Work on a copy "
                       "(np.array(x, dtype=float) or x.clone()) or build a new array instead of assigning into it.")

    # -- comparing results --------------------------------------------------------------------------------------
    def expect_close(self, got, expected, case: str, *, rtol: float = 1e-6, atol: float = 1e-8,
                     mistakes: dict[str, tuple[Any, str]] | None = None, hint: str = "",
                     float_dtype: bool = True) -> None:
        """`got` must be a NumPy array (or a Python/NumPy scalar when `expected` is one) close to `expected`."""
        self._not_none(got, case)
        expected_arr = np.asarray(expected)
        if np.ndim(expected) == 0 and not isinstance(expected, np.ndarray):
            if _is_tensor(got) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, (int, float, np.number, bool, np.bool_)):
                self.fail(case, expected, got, hint=f"return a number, not a {type(got).__name__}.")
            got_arr = np.asarray(got, dtype=np.float64)
        else:
            if _is_tensor(got):
                self.fail(case, expected, got, hint="return a NumPy array, not a torch tensor (use .numpy()).")
            if not isinstance(got, np.ndarray):
                self.fail(case, expected, got, hint=f"return a NumPy array (np.asarray(...)), not a {type(got).__name__}.")
            got_arr = got
            if got_arr.shape != expected_arr.shape:
                self.fail(case, expected, got, hint=f"shape {got_arr.shape} but {expected_arr.shape} was expected. "
                          + (hint or ""))
            if float_dtype and got_arr.dtype.kind != "f":
                self.fail(case, expected, got, hint=f"dtype {got_arr.dtype}: the result must be a float array "
                          "(integer arrays silently round values; use np.zeros(n) or dtype=float).")
        self._compare(got_arr.astype(np.float64, copy=False), expected_arr.astype(np.float64), got, expected, case,
                      rtol, atol, mistakes, hint)

    def expect_tensor(self, got, expected, case: str, *, rtol: float = 1e-5, atol: float = 1e-6,
                      mistakes: dict[str, tuple[Any, str]] | None = None, hint: str = "") -> None:
        """`got` must be a floating torch tensor of the expected shape, close to `expected`."""
        self._not_none(got, case)
        if not _is_tensor(got):
            self.fail(case, expected, got, hint=f"return a torch tensor, not a {type(got).__name__} "
                      "(keep the computation in torch so gradients can flow).")
        if tuple(got.shape) != tuple(expected.shape):
            extra = " A loss must be a scalar: did you forget .mean()?" if expected.dim() == 0 else ""
            self.fail(case, expected, got, hint=f"shape {tuple(got.shape)} but {tuple(expected.shape)} was expected."
                      + extra + (" " + hint if hint else ""))
        if not got.dtype.is_floating_point:
            self.fail(case, expected, got, hint=f"dtype {got.dtype}: the result must be a floating tensor.")
        self._compare(got.detach().double().cpu().numpy(), expected.detach().double().cpu().numpy(), got, expected,
                      case, rtol, atol, mistakes, hint)

    def _not_none(self, got, case: str) -> None:
        if got is None:
            self.fail(case, got=None, hint="your function returned None: did you forget the `return` statement?")

    def _compare(self, g: np.ndarray, e: np.ndarray, got, expected, case, rtol, atol, mistakes, hint) -> None:
        finite = np.isfinite(e)
        if np.any(finite & ~np.isfinite(g)):
            self.fail(case, expected, got, hint="your result contains NaN or inf where the answer is finite: "
                      "look for overflow (exp of a large number) or log(0); " + (hint or ""))
        if np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            return
        for _, (value, mistake_hint) in (mistakes or {}).items():
            try:
                v = np.asarray(value.detach().numpy() if _is_tensor(value) else value, dtype=np.float64)
                if v.shape == g.shape and not np.allclose(v, e, rtol=rtol, atol=atol) and np.allclose(
                        g, v, rtol=max(rtol, 1e-5), atol=max(atol, 1e-6), equal_nan=True):
                    self.fail(case, expected, got, hint=mistake_hint)
            except CheckFailed:
                raise
            except Exception:
                continue
        where = ""
        if g.ndim >= 1 and g.size > 1:
            idx = np.unravel_index(np.argmax(np.abs(g - e) - atol - rtol * np.abs(e)), g.shape)
            where = f"first large difference at index {tuple(int(i) for i in idx)}: expected {e[idx]:.6g}, got {g[idx]:.6g}. "
        self.fail(case, expected, got, hint=where + (hint or "compare your formula with the docstring."))


def _param_names(fn: Callable, n: int) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        names = []
    return (names + [f"argument {i + 1}" for i in range(len(names), n)])[:n] if n else []


def checker(exercise: str):
    """Decorator for `check_<exercise>(fn)`: only CheckFailed may leave it, and `fn` must be a function."""

    def deco(check: Callable) -> Callable:
        @functools.wraps(check)
        def wrapper(fn, *args, **kwargs):
            if not callable(fn):
                raise CheckFailed(f"{exercise}: expected your function, got {describe(fn)}. "
                                  f"Call it as check_{exercise}({exercise}).")
            try:
                return check(fn, *args, **kwargs)
            except CheckFailed as e:
                raise CheckFailed(str(e)) from None
            except Exception as e:  # the checker itself tripped over something odd the answer did
                raise CheckFailed(f"{exercise}: your answer made the checker fail with {type(e).__name__}: {e}. "
                                  "Check the type and shape of what your function returns.") from None

        wrapper.exercise = exercise
        return wrapper

    return deco
