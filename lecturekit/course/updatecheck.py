"""Machinery for the build-it checkers: is the student's whole update step the reference's update step?

A build-it exercise has the student write a whole update (REINFORCE, A2C, TRPO, PPO, TD3, SAC).  Its checker has
three layers, and this module gives each one a helper:

1. `check_update`: one update on identical copies of everything (networks, optimizers with warmed-up state,
   *stale* gradients left from a previous step, data, generators), once with the reference and once with the
   student's function.  The gradients each optimizer sees at every `step()` (per parameter tensor), the parameter
   changes (per tensor) and the optimizer state afterwards must agree within a relative tolerance.  When they do
   not, the message says where the first difference is (which optimizer, which of its steps, which parameter
   group: actor, critic, ...) and what the student's diagnostics dict says next to the reference's.
2. Silent bugs are named by *mistake variants*: the reference with one realistic bug (no zero_grad, a target that
   carries gradient, truncation treated as termination, ...).  If the student's outcome equals a variant's outcome,
   the message is that variant's hint.  *Accepted variants* (an equivalent order the lecture allows) pass.
3. `check_training`: the student's update trains the task through the algorithm's `train(..., update=...)` seam
   within a step budget on the checker's own seeds.

Usage (see `lecturekit.course.checks.actor_critic.check_a2c_update`)::

    def make():                                # builds the same trial every time it is called
        model, opt = ...; warm_up(opt)          # Adam state not at zero, stale .grad everywhere
        return Trial(args=(model, opt, ro, cfg), groups={"actor": model.pi, "critic": model.v},
                     optimizers={"opt": opt}, inputs={"ro": ro})
    c = Check("a2c_update")
    check_update(c, student_fn, reference_fn, make, case="one update on a (16, 8) rollout",
                 mistakes=[Mistake("no zero_grad", variant_fn, "hint ..."), ...], stats_keys=("policy_loss", ...))

Comparisons are on *changes* (parameter after minus before), not on parameters, so that a step of size 1e-3 is not
lost in the size of the weights; each tensor's error is relative to the size of its reference change (with a floor
of a small fraction of its group's size, so that a bias whose change is nearly zero does not decide alone).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.course.checking import Check, CheckFailed


# --- what one update needs and what it did ------------------------------------------------------------------------
@dataclass
class Trial:
    """Everything one call `update(*args, **kwargs)` needs, built afresh (identically) by a `make()` function.

    groups:     parameter groups to compare, name -> a module or a list of tensors (include target networks and
                any tensor the update must change or leave alone, such as log_alpha)
    optimizers: the optimizers whose `step()` calls are recorded, by name (the names appear in messages)
    inputs:     data the update must not modify, by name (dataclasses of arrays/tensors, arrays, tensors, dicts)
    """

    args: tuple
    groups: dict
    optimizers: dict
    kwargs: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What an update did: per optimizer, the gradients it saw at each step() (name -> tensor); per group, the
    change of each parameter tensor; per optimizer, its state afterwards; the returned diagnostics."""

    steps: dict          # optimizer name -> list of {param name: grad (or None)} in step order
    deltas: dict         # group name -> {param name: after - before}
    state: dict          # optimizer name -> {param name: {state key: tensor}}
    stats: Any = None
    mutated: list = field(default_factory=list)  # names of inputs the update modified


@dataclass
class Mistake:
    """A realistic bug: `fn` is the reference with that bug; `hint` is what the student reads when theirs does the
    same.  `name` identifies it in tests (and in the message's last line)."""

    name: str
    fn: Callable
    hint: str


def _group_params(g) -> list[tuple[str, Tensor]]:
    if isinstance(g, nn.Module):
        return list(g.named_parameters())
    if isinstance(g, Tensor):
        return [("", g)]
    return [(str(i), p) for i, p in enumerate(g)]


def named_params(groups: dict) -> dict[str, tuple[str, Tensor]]:
    """'group.param' -> (group, tensor) for every tensor of every group (a tensor shared by two groups once)."""
    out, seen = {}, set()
    for gname, g in groups.items():
        for pname, p in _group_params(g):
            if id(p) in seen:
                continue
            seen.add(id(p))
            out[f"{gname}.{pname}" if pname else gname] = (gname, p)
    return out


def warm_up(optimizers: Iterable[torch.optim.Optimizer], seed: int = 12345, stale: bool = True) -> None:
    """Put each optimizer in the state of a run in progress: one step on a random linear loss (Adam's moments become
    non-zero, so a gradient's *size* changes the step, not only its sign), then, if `stale`, leave random gradients
    in every `.grad` (what the previous update left there: an update without zero_grad adds to them)."""
    gen = torch.Generator().manual_seed(seed)
    for opt in optimizers:
        params = [p for group in opt.param_groups for p in group["params"]]
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.1
        opt.step()
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.1 if stale else None


def _snapshot(x):
    """A detached copy of the data in x (dataclass, dict, list, tensor, array), for the modification check."""
    if isinstance(x, Tensor):
        return x.detach().clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _snapshot(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: _snapshot(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_snapshot(v) for v in x]
    return None


def _changed(before, x) -> str | None:
    """Name of the first field of x that differs from its snapshot `before` (None if unchanged)."""
    if isinstance(x, Tensor):
        return None if before.shape == x.shape and torch.equal(before, x.detach()) else ""
    if isinstance(x, np.ndarray):
        return None if before.shape == x.shape and np.array_equal(before, x, equal_nan=x.dtype.kind == "f") else ""
    if isinstance(before, dict):
        items = ((k, getattr(x, k) if not isinstance(x, dict) else x.get(k)) for k in before)
        for k, v in items:
            sub = _changed(before[k], v)
            if sub is not None:
                return f".{k}{sub}"
        return None
    if isinstance(before, list):
        for i, (b, v) in enumerate(zip(before, x)):
            sub = _changed(b, v)
            if sub is not None:
                return f"[{i}]{sub}"
    return None


def run_update(fn: Callable, make: Callable[[], Trial], call: Callable | None = None, seed: int = 0) -> Outcome:
    """Build a trial with `make()`, run `fn` on it (through `call(fn, *args, **kwargs)` if given: the Check's call,
    which turns exceptions into messages) and record what it did.  The global torch and NumPy generators are seeded
    with `seed` first, so an update that (wrongly) draws from them is at least repeatable."""
    trial = make()
    named = named_params(trial.groups)
    before = {n: p.detach().clone() for n, (_, p) in named.items()}
    by_id = {id(p): n for n, (_, p) in named.items()}
    steps: dict = {name: [] for name in trial.optimizers}
    hooks = []
    for oname, opt in trial.optimizers.items():
        def hook(optimizer, args, kwargs, oname=oname):
            seen = {}
            for group in optimizer.param_groups:
                for p in group["params"]:
                    n = by_id.get(id(p), f"?{id(p)}")
                    seen[n] = None if p.grad is None else p.grad.detach().clone()
            steps[oname].append(seen)
        hooks.append(opt.register_step_pre_hook(hook))
    snaps = {k: _snapshot(v) for k, v in trial.inputs.items()}
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's global generators are left as they were
            torch.manual_seed(seed)
            np.random.seed(seed)
            stats = (call or (lambda f, *a, **k: f(*a, **k)))(fn, *trial.args, **trial.kwargs)
    finally:
        np.random.set_state(np_state)
        for h in hooks:
            h.remove()
    deltas: dict = {g: {} for g in trial.groups}
    for n, (g, p) in named.items():
        deltas[g][n] = p.detach() - before[n]
    state = {}
    for oname, opt in trial.optimizers.items():
        state[oname] = {by_id.get(id(p), f"?{id(p)}"): {k: (v.detach().clone() if isinstance(v, Tensor) else
                                                             torch.tensor(float(v)))
                                                        for k, v in opt.state.get(p, {}).items()}
                        for group in opt.param_groups for p in group["params"]}
    mutated = [k + (_changed(snaps[k], v) or "") for k, v in trial.inputs.items() if _changed(snaps[k], v) is not None]
    return Outcome(steps, deltas, state, stats, mutated)


# --- comparing two outcomes ---------------------------------------------------------------------------------------
@dataclass
class Difference:
    kind: str     # 'steps' (number of optimizer steps), 'grad', 'delta', 'state'
    where: str    # e.g. "optimizer 'opt', step 3 of 16, group 'critic'"
    group: str    # the parameter group (or the optimizer for 'steps')
    error: float  # relative error (inf for a structural difference)
    detail: str   # a sentence for the message
    factor: float | None = None  # for 'grad': got = factor * reference (same direction), if it is a pure rescaling


def _rel_err(got: Tensor | None, ref: Tensor | None, floor: float) -> float:
    if got is None and ref is None:
        return 0.0
    if got is None or ref is None:
        other = ref if got is None else got
        return 0.0 if float(other.abs().max()) <= floor else math.inf
    if got.shape != ref.shape:
        return math.inf
    d = float((got.double() - ref.double()).norm())
    if not math.isfinite(d):
        return math.inf
    return d / max(float(ref.double().norm()), floor, 1e-30)


def _times(f: float) -> str:
    """A gradient's factor for a message, with enough digits that a factor near 1 does not print as "1 times"."""
    return f"{f:.4g}" if abs(f - 1.0) >= 5e-4 else f"{f:.7g}"


def _factor(got: list, ref: list, rtol: float) -> float | None:
    """f such that got = f * ref for the whole group (within 10 rtol), else None."""
    if any(g is None or r is None or g.shape != r.shape for g, r in zip(got, ref)) or not ref:
        return None
    g = torch.cat([t.double().reshape(-1) for t in got])
    r = torch.cat([t.double().reshape(-1) for t in ref])
    rr = float(r @ r)
    if rr == 0.0:
        return None
    f = float(g @ r) / rr
    if f == 0.0 or float((g - f * r).norm()) > 10 * rtol * abs(f) * math.sqrt(rr):
        return None
    return f


def _group_floor(tensors: Iterable[Tensor | None], rel: float = 1e-3) -> float:
    sq = sum(float(t.double().pow(2).sum()) for t in tensors if t is not None)
    return rel * math.sqrt(sq) + 1e-12


def compare(got: Outcome, ref: Outcome, rtol: float = 1e-4) -> list[Difference]:
    """The differences between two outcomes, most telling first: the number of optimizer steps, then the gradients
    of the first step that differs (per group), then the parameter changes, then the optimizer state."""
    diffs: list[Difference] = []
    group_of = {n: g for g, ps in ref.deltas.items() for n in ps}
    for oname, ref_steps in ref.steps.items():
        got_steps = got.steps.get(oname, [])
        if len(got_steps) != len(ref_steps):
            diffs.append(Difference("steps", f"optimizer '{oname}'", oname, math.inf,
                                    f"`{oname}.step()` was called {len(got_steps)} time(s); the reference calls it "
                                    f"{len(ref_steps)} time(s)"))
    n_before = len(diffs)
    for oname, ref_steps in ref.steps.items():
        got_steps = got.steps.get(oname, [])
        for k, (gs, rs) in enumerate(zip(got_steps, ref_steps)):
            per_group: dict[str, float] = {}
            groups = {group_of.get(n, "?") for n in rs}
            floors = {g: _group_floor(rs[n] for n in rs if group_of.get(n) == g) for g in groups}
            for n, r in rs.items():
                g = group_of.get(n, "?")
                per_group[g] = max(per_group.get(g, 0.0), _rel_err(gs.get(n), r, floors[g]))
            bad = {g: e for g, e in per_group.items() if e > rtol}
            if bad:
                where = f"optimizer '{oname}', step {k + 1} of {len(ref_steps)}"
                for g, e in bad.items():
                    ok = [h for h in per_group if h not in bad]
                    names = [n for n in rs if group_of.get(n) == g]
                    f = _factor([gs.get(n) for n in names], [rs[n] for n in names], rtol)
                    how = (f"is {_times(f)} times the reference's (same direction)" if f is not None else
                           f"differs from the reference's (relative error {e:.3g})")
                    diffs.append(Difference("grad", where, g, e, f"at {where} the gradient of the {g} {how}" +
                                            (f"; the gradient of the {', '.join(ok)} matches" if ok else ""), f))
                break
    # across optimizers the order of their steps in time is unknown: the one whose gradient is furthest off comes
    # first (a wrong critic target also nudges the actor's gradient, which must not be the one reported)
    by_opt: dict[str, list[Difference]] = {}
    for d in diffs[n_before:]:
        by_opt.setdefault(d.where.split(",")[0], []).append(d)
    diffs[n_before:] = [d for ds in sorted(by_opt.values(), key=lambda ds: -max(x.error for x in ds)) for d in ds]
    for g, ref_d in ref.deltas.items():
        got_d = got.deltas.get(g, {})
        floor = _group_floor(ref_d.values())
        err = max((_rel_err(got_d.get(n), r, floor) for n, r in ref_d.items()), default=0.0)
        if err > rtol:
            moved = any(float(t.abs().max()) > 0 for t in got_d.values()) if got_d else False
            ref_moved = any(float(t.abs().max()) > 0 for t in ref_d.values())
            what = ("did not change, but the reference changes it" if not moved and ref_moved else
                    "changed, but the reference leaves it unchanged" if not ref_moved else
                    f"changed differently from the reference (relative error {err:.3g})")
            diffs.append(Difference("delta", f"group '{g}'", g, err, f"the {g}'s parameters {what}"))
    for oname, ref_s in ref.state.items():
        got_s = got.state.get(oname, {})
        worst, where = 0.0, ""
        for n, rs in ref_s.items():
            gs = got_s.get(n, {})
            for key, r in rs.items():
                e = _rel_err(gs.get(key), r, 1e-3 * float(r.double().norm()) + 1e-12)
                if e > worst:
                    worst, where = e, f"{n} '{key}'"
        if worst > rtol:
            diffs.append(Difference("state", f"optimizer '{oname}'", oname, worst,
                                    f"the state of optimizer '{oname}' differs ({where}, relative error {worst:.3g})"))
    return diffs


# --- layer 1 and 2: one update ------------------------------------------------------------------------------------
def _check_stats(c: Check, stats, keys: Sequence[str], case: str) -> None:
    if keys and not isinstance(stats, dict):
        c.fail(case, expected=f"a dict of diagnostics with the keys {', '.join(keys)}", got=stats,
               hint="return the diagnostics dict the docstring describes (floats, e.g. loss.item()), "
                    "even if you do not use it.")
    missing = [k for k in keys if k not in stats]
    if missing:
        have = ", ".join(map(str, stats)) or "(none)"
        c.fail(case, expected=f"the keys {', '.join(keys)}", got=f"a dict with keys {have}",
               hint=f"add {', '.join(repr(k) for k in missing)} to the diagnostics dict your update returns.")
    for k in keys:
        v = stats[k]
        if isinstance(v, Tensor):
            c.fail(case, expected=f"'{k}' as a Python float", got=v,
                   hint=f"store `{k}` as a number: x.item() (a tensor keeps its whole graph alive in the logs).")
        if not isinstance(v, (int, float, np.number)) or isinstance(v, bool):
            c.fail(case, expected=f"'{k}' as a Python float", got=v, hint=f"store `{k}` as a float.")
        if not math.isfinite(float(v)):
            c.fail(case, expected=f"a finite '{k}'", got=v, hint="a NaN or inf here means a log of 0 or a division "
                                                                   "by zero somewhere in your update.")


def _stats_report(got, ref, keys: Sequence[str], stat_rtol: float) -> tuple[list[str], list[str]]:
    """(keys whose values differ, keys that match) between two diagnostics dicts."""
    differ, match = [], []
    if not isinstance(got, dict):
        return differ, match
    for k in keys:
        try:
            g, r = float(got[k]), float(ref[k])
        except Exception:
            continue
        (match if abs(g - r) <= stat_rtol * max(abs(r), 1e-3) else differ).append(k)
    return differ, match


def check_update(c: Check, fn: Callable, reference: Callable, make: Callable[[], Trial], *, case: str,
                 mistakes: Sequence[Mistake] = (), accepted: Sequence[Callable] = (),
                 stats_keys: Sequence[str] = (), stat_rtol: float = 1e-3, rtol: float = 1e-4,
                 group_hints: dict | None = None, stat_hints: dict | None = None,
                 compare_stats: Sequence[str] | None = None) -> Outcome:
    """Layers 1 and 2 for one trial: the student's `fn` must do what `reference` (or one of the `accepted`
    variants) does, within `rtol`; if it does what one of the `mistakes` does, the message is that mistake's hint.

    stats_keys:    keys the returned diagnostics dict must have (floats); those in `compare_stats` (default: all)
                   must also match the reference's within `stat_rtol` once the update itself is right
    group_hints:   {group name: hint} used when no mistake matches and that group's gradient or change differs
    stat_hints:    {stats key: hint} used when only that diagnostic differs
    Returns the student's Outcome.
    """
    cached = _cached(c.exercise, case, make)
    ref = cached("reference", reference)
    got = run_update(fn, make, call=lambda f, *a, **k: c.call(f, *a, case=case, check_inputs=False, **k))
    if got.mutated:
        c.fail(case, expected="the inputs unchanged", got=f"your update modified {', '.join(got.mutated)}",
               hint="work on copies (x.clone(), np.array(x), dataclasses.replace) instead of changing the data "
                    "in place: the training loop still needs it.")
    _check_stats(c, got.stats, stats_keys, case)
    diffs = compare(got, ref, rtol)
    if diffs:
        for i, variant in enumerate(accepted):
            out = cached(f"accepted {i}", variant)
            if not compare(got, out, rtol):
                diffs, ref = [], out
                break
    if not diffs:
        keys = list(stats_keys if compare_stats is None else compare_stats)
        differ, _ = _stats_report(got.stats, ref.stats, keys, stat_rtol)
        if differ:
            k = differ[0]
            for m in mistakes:  # a bug that only shows in the diagnostics here (e.g. a factor the clipping undid)
                try:
                    out = cached(f"mistake {m.name}", m.fn)
                except Exception:  # pragma: no cover
                    continue
                if not compare(got, out, rtol) and not _stats_report(got.stats, out.stats, keys, stat_rtol)[0]:
                    c.fail(case, expected=f"'{k}' = {float(ref.stats[k]):.6g}",
                           got=f"'{k}' = {float(got.stats[k]):.6g}", hint=m.hint)
            c.fail(case, expected=f"'{k}' = {float(ref.stats[k]):.6g} (the update itself is right)",
                   got=f"'{k}' = {float(got.stats[k]):.6g}",
                   hint=(stat_hints or {}).get(k, f"compute the diagnostic '{k}' as the docstring says."))
        return got
    for m in mistakes:
        try:
            out = cached(f"mistake {m.name}", m.fn)
        except Exception:  # pragma: no cover - a variant that cannot run on this trial says nothing
            continue
        if not compare(got, out, rtol):
            c.fail(case, expected="the reference's update", got=_summary(diffs, got, ref, stats_keys, stat_rtol),
                   hint=m.hint)
    first = diffs[0]
    hint = _generic_hint(first, diffs, group_hints or {})
    c.fail(case, expected="the reference's update", got=_summary(diffs, got, ref, stats_keys, stat_rtol), hint=hint)
    raise AssertionError("unreachable")  # pragma: no cover


_OUTCOMES: dict = {}  # (exercise, case, name) -> Outcome of the reference and its variants: trials are deterministic


def _cached(exercise: str, case: str, make: Callable[[], Trial]) -> Callable[[str, Callable], Outcome]:
    """run_update of the reference's functions on a trial, computed once per process (the student's never cached)."""

    def get(name: str, fn: Callable) -> Outcome:
        key = (exercise, case, name, getattr(fn, "__qualname__", repr(fn)))
        if key not in _OUTCOMES:
            _OUTCOMES[key] = run_update(fn, make)
        return _OUTCOMES[key]

    return get


def _summary(diffs: list[Difference], got: Outcome, ref: Outcome, keys, stat_rtol) -> str:
    d = diffs[0]
    same_step = [x for x in diffs if x.kind == "grad" and x.where == d.where]
    if d.kind == "grad" and len(same_step) > 1:  # every group that differs at that step, with how it differs
        parts = [f"of the {x.group} " + (f"is {_times(x.factor)} times the reference's (same direction)"
                                          if x.factor is not None else f"differs (relative error {x.error:.3g})")
                 for x in same_step]
        text = f"at {d.where} the gradient " + "; the gradient ".join(parts)
    else:
        text = d.detail
    differ, match = _stats_report(got.stats, ref.stats, keys, stat_rtol)
    if differ:
        vals = ", ".join(f"{k} {float(got.stats[k]):.4g} (reference {float(ref.stats[k]):.4g})" for k in differ)
        text += f". Your diagnostics: {vals}"
        if match:
            text += f"; {', '.join(match)} match"
    elif match:
        text += f". Your diagnostics ({', '.join(match)}) match the reference's"
    return text


def _generic_hint(first: Difference, diffs: list[Difference], group_hints: dict) -> str:
    if first.kind == "steps":
        if "was called 0 time(s)" in first.detail:
            return (f"your update never called step() of the optimizer `{first.group}` it was given: use that "
                    "optimizer (do not create a new one inside the update; it would start from scratch every call).")
        return ("count your optimizer steps: " + group_hints.get("steps", "one step per gradient update, as the "
                                                                          "docstring describes."))
    if first.kind == "grad":
        grads = [d for d in diffs if d.kind == "grad"]
        factors = [d.factor for d in grads]
        if all(f is not None for f in factors) and max(factors) - min(factors) <= 1e-3 * abs(factors[0]):
            return (f"every gradient points the right way but is {_times(factors[0])} times the reference's: "
                    + group_hints.get("scale", "look for a factor: mean vs sum, a coefficient, the clipping."))
        # with global-norm clipping a bug in one group rescales the others: the culprit changes direction
        culprits = [d.group for d in grads if d.factor is None] or [d.group for d in grads]
        hints = [group_hints[g] for g in dict.fromkeys(culprits) if g in group_hints]
        return " ".join(hints) or "compare each piece of your update with the docstring."
    if first.kind == "delta":
        groups = [d.group for d in diffs if d.kind == first.kind]
        hints = [group_hints[g] for g in dict.fromkeys(groups) if g in group_hints]
        return " ".join(hints) or "compare each piece of your update with the docstring."
    return ("the gradients and parameters match but the optimizer's state does not: call each optimizer's step() "
            "once per gradient update, and do not create a new optimizer inside the update.")


# --- layer 3: training ---------------------------------------------------------------------------------------------
def check_training(c: Check, train: Callable[[int], Any], *, seeds: Sequence[int], budget: int, target: float,
                   task: str) -> Any:
    """Layer 3: `train(seed) -> History` (the student's update through the algorithm's seam, `Run(steps=budget,
    seed=seed, target=target)`) must reach `target` on one of the checker's `seeds` (tried in order, stopping at the
    first success).  Returns (History, seed, seconds) of the first success."""
    tried = []
    for seed in seeds:
        case = f"training on {task}, seed {seed}, budget {budget:,} environment steps"
        t0 = time.perf_counter()
        try:
            hist = train(seed)
        except NotImplementedError:
            raise CheckFailed(f"{c.exercise}: not implemented yet.") from None
        except CheckFailed:
            raise
        except Exception as e:
            c.fail(case, got=f"{type(e).__name__}: {e}",
                   hint="training with your update raised this; the one-update checks passed, so look at what "
                        "differs in a real run (other batch sizes, episodes that end, NaN from a too large step).")
        secs = time.perf_counter() - t0
        if hist.solved:
            return hist, seed, secs
        tried.append(f"seed {seed}: best evaluation return {hist.best_return:.1f} in {hist.env_steps:,} steps")
    c.fail(f"training on {task}", expected=f"an evaluation return >= {target:g} within {budget:,} steps",
           got="; ".join(tried),
           hint="the one-update checks passed, so this is rare: rerun the check; if it fails again, look for "
                "something that only shows over many updates (state kept between calls, a global random generator).")


# --- on-policy trials: a rollout with every kind of episode end ---------------------------------------------------
def cartpole_spaces():
    """CartPole-v1's observation and action spaces, without making an environment."""
    import gymnasium as gym

    return gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2)


def synthetic_rollout(model, T: int, N: int, seed: int, logp_noise: float = 0.0):
    """A `rollout.Rollout` of T steps in N environments made up from `seed`, with the model's own log-probs and
    values, in which every kind of step occurs: episodes that terminate (inside the rollout and on its last step),
    episodes cut by the time limit (inside and on the last step: the latter bootstraps from `last_value`), an
    autoreset step on the first row (the previous rollout ended an episode), and random rewards (so that an
    off-by-one shows).  logp_noise > 0 makes the stored log-probs those of a slightly different, older policy (PPO
    and TRPO reuse data of pi_k: the ratio is then not 1 at the first step, so clipping and the KL show at once).
    """
    from lecturekit.rollout import Rollout

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    term = rng.random((T, N)) < 0.06
    trunc = (rng.random((T, N)) < 0.04) & ~term
    if N >= 4:
        term[:, 0] = trunc[:, 0] = False                # one episode runs through the whole rollout
        term[-1, 1], trunc[-1, 1] = True, False         # terminated on the last step: no bootstrap
        term[-1, 2], trunc[-1, 2] = False, True         # truncated on the last step: bootstraps from last_value
        term[T // 3, 3], trunc[T // 3, 3] = False, True  # truncated inside: bootstraps from V(final obs)
    prev = np.zeros(N, bool)
    if N >= 5:
        prev[4] = True                                  # the previous rollout ended this episode on its last step
    valid = np.zeros((T, N), bool)
    for t in range(T):
        valid[t] = ~prev
        term[t] &= valid[t]
        trunc[t] &= valid[t]
        prev = term[t] | trunc[t]
    obs = torch.randn((T, N, 4), generator=gen) * 0.5
    with torch.no_grad():
        logits = model.dist_params(obs)
        if not model.discrete:  # pragma: no cover - the course's on-policy checks use CartPole
            raise ValueError("synthetic_rollout: discrete models only")
        probs = torch.softmax(logits, -1).reshape(T * N, -1)
        act = torch.multinomial(probs, 1, generator=gen).reshape(T, N)
        logp = model.log_prob(obs, act)
        if logp_noise:
            logp = logp + logp_noise * torch.randn((T, N), generator=gen)
            logp = logp.clamp(max=-1e-3)
        values = model.value(obs)
        last_value = model.value(torch.randn((N, 4), generator=gen) * 0.5).double().numpy()
    rewards = np.where(valid, rng.uniform(0.5, 1.5, (T, N)), 0.0)
    return Rollout(obs, act, logp, values, rewards, term, trunc, valid, last_value)


def trained(result: tuple, task: str = "CartPole-v1") -> str:
    """The checker's summary of a `check_training` result (History, seed, seconds)."""
    hist, seed, secs = result
    return (f"trained {task} to {hist.final_return:.0f} in {hist.solved_at_steps:,} steps ({secs:.1f} s, "
            f"seed {seed})")


def train_with(algo, env_id: str, cfg, run, fn, **seam):
    """`algo.train(env_id, cfg, run, update=fn, **seam)`: the student's function through the algorithm's seam."""
    return algo.train(env_id, cfg, run, update=fn, **seam)
