"""One submission in a bubblewrap sandbox; its functions called from the grader as if they were local.

The grader (`lecturekit.course.grade`) never runs a student's code in its own process.  For each notebook it starts

    bwrap ... python -c "from lecturekit.course.sandbox import main; ..." REQ RESP INTR

with the Python installation, its environment and the `lecturekit` package mounted read-only, a private size-capped
tmpfs as the only writable place (the notebook is copied there), no network, its own PID, IPC, UTS and user
namespaces, `--die-with-parent`, and limits on memory, processes, CPU time, file size and (read by the grader, which
kills the sandbox past it) output.  The server inside runs the notebook's cells in an IPython shell, one at a time,
when the grader asks; every `check_*` is a no-op there.  After a check cell the grader runs the course's checker in
its own process on a `Proxy` of the student's function.

The proxy contract (what a checker may rely on when it calls `fn(*args, **kwargs)`):

- Arguments go down pickled.  Tensors, NumPy arrays, numbers, strings, lists/tuples/dicts, dataclasses, `nn.Module`s,
  `torch.optim` optimizers, `torch.Generator`s and NumPy generators arrive as equal copies (shared objects stay
  shared: an optimizer steps the model's own parameters).  Lambdas, local functions and callables of the checkers
  (`lecturekit.course.checks.*`) stay in the grader: the student's code gets a stub that calls back.  The `.grad` of
  parameters and leaf tensors goes down too (an update without zero_grad meets the stale gradient it would here).
- Hooks stay in the grader and see what happened in the sandbox: each step() of an argument's optimizer that has
  step hooks is recorded there (the `.grad` of its parameters just before it), and each forward call of an
  argument's module or submodule that has forward hooks (inputs and output); after the call the grader replays the
  record in order: it sets its parameters' `.grad` to the recorded values and runs the optimizer's step pre- and
  post-hooks, and runs the modules' forward hooks on the recorded inputs (`updatecheck.run_update`, the TD3 and SAC
  recorders).
- Results come back as data only (no pickle of the sandbox's objects is ever loaded by the grader): tensors (dtype,
  shape, requires_grad), arrays, NumPy scalars, numbers, strings, containers, dataclasses of `lecturekit`, modules
  (as a plain `nn.Module` holding the parameters), functions (a `Proxy` of the function, kept alive in the sandbox
  until the next `begin`), and anything else as an opaque object of the same type name.
  A result that *is* one of the arguments comes back as the checker's own object.
- Arguments after the call come back too and are written into the checker's objects in place, so `Check.call` still
  sees an input modified in place: tensor and array values, `.grad` of leaf tensors and parameters, list and dict
  contents, dataclass and object attributes, a module's parameters (a parameter replaced by a new object is replaced
  in the checker's module too), buffers and training flag, an optimizer's `state_dict()`, a generator's state.
- Autograd: a returned tensor that depends on argument tensors (or module parameters) that require grad comes back
  connected to the checker's own tensors: value + J (x - x.detach()), with J the Jacobian measured in the sandbox
  (exact first derivatives, for outputs up to `JACOBIAN_MAX` elements; beyond that only the gradient of its sum).
  Second derivatives through a student's result are not available.
- An exception in the student's function comes back as an exception of the same name (NotImplementedError stays
  NotImplementedError) whose message ends with the student's line.  A reference implementation the checker blocks
  (`REFERENCES`) raises `ReferenceBlocked` inside the sandbox and `UsesReference` in the grader.
  `SandboxTimeout` and `SandboxDied` end the check.  All three are BaseExceptions: no checker turns them into a
  verdict of its own.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

JACOBIAN_MAX = 4096          # outputs with more elements come back with the gradient of their sum only
MESSAGE_MAX = 64 << 20       # the largest message the grader accepts from a sandbox (bounds its memory)
NODES_MAX = 2_000_000        # the most values the grader decodes from one message

# What each checker blocks while the student's function runs: the function's own reference and what computes the
# same thing.  A checker without an entry blocks nothing (tests/test_grade_sandbox.py asks for one per checker).
REFERENCES: dict[str, list[str]] = {
    # ex00
    "discounted_returns": ["lecturekit.returns.discounted_returns", "lecturekit.returns.bootstrapped_returns",
                           "lecturekit.returns.gae", "lecturekit.returns.nstep_returns",
                           "lecturekit.tabular.mdp.discounted_return"],
    # ex01
    "softmax_score": ["lecturekit.policies.softmax_score", "lecturekit.tabular.estimators.tabular_softmax_score"],
    "gaussian_log_prob": ["lecturekit.distributions.gaussian_log_prob"],
    "finite_difference_gradient": ["lecturekit.algos.gradient_free.finite_difference_gradient"],
    "cem_update": ["lecturekit.algos.gradient_free.cem_update"],
    "log_derivative_gradient": ["lecturekit.policies.softmax_score"],
    # ex02
    "reinforce_loss": ["lecturekit.algos.reinforce.reinforce_loss"],
    "gaussian_policy_gradient": ["lecturekit.policies.gaussian_score"],
    "score_estimator_moments": ["lecturekit.policies.softmax_score"],
    "score_gradient_samples": ["lecturekit.tabular.estimators.per_episode_gradients",
                               "lecturekit.tabular.estimators.score_function_gradient"],
    "collect_episodes": ["lecturekit.algos.reinforce.collect_episodes"],
    "reinforce_update": ["lecturekit.algos.reinforce.update"],
    # ex03
    "bootstrapped_returns": ["lecturekit.returns.bootstrapped_returns", "lecturekit.returns.gae",
                             "lecturekit.returns.nstep_returns"],
    "a2c_loss": ["lecturekit.algos.a2c.a2c_loss"],
    "a2c_update": ["lecturekit.algos.a2c.update"],
    # ex04
    "kl_categorical": ["lecturekit.optim.kl_categorical"],
    "conjugate_gradient": ["lecturekit.optim.conjugate_gradient"],
    "trpo_line_search": ["lecturekit.optim.trpo_line_search", "lecturekit.optim.line_search"],
    "tabular_fisher": ["lecturekit.optim.fisher_matrix_categorical"],
    "natural_gradient_step": ["lecturekit.optim.max_step_scale", "lecturekit.optim.fisher_matrix_categorical"],
    "fisher_vector_product": ["lecturekit.optim.fisher_vector_product", "lecturekit.optim.hessian_vector_product"],
    "trpo_update": ["lecturekit.algos.trpo.update"],
    # ex05
    "gae": ["lecturekit.returns.gae"],
    "ppo_clip_loss": ["lecturekit.algos.ppo.ppo_clip_loss"],
    "clipping_case": ["lecturekit.algos.ppo.clipping_case", "lecturekit.algos.ppo.clipping_table"],
    "n_step_advantage": ["lecturekit.returns.gae", "lecturekit.returns.nstep_returns"],
    "ppo_update": ["lecturekit.algos.ppo.update"],
    # ex06
    "td3_target": ["lecturekit.algos.td3.clipped_double_q_target"],
    "polyak_update": ["lecturekit.offpolicy.polyak_update"],
    "dpg_actor_loss": ["lecturekit.algos.td3.dpg_actor_loss"],
    "td3_update": ["lecturekit.algos.td3.update"],
    # ex07
    "squashed_gaussian_log_prob": ["lecturekit.distributions.squashed_gaussian_log_prob"],
    "sac_critic_target": ["lecturekit.algos.sac.sac_critic_target"],
    "sac_actor_loss": ["lecturekit.algos.sac.sac_actor_loss"],
    "temperature_loss": ["lecturekit.algos.sac.temperature_loss"],
    "reparameterized_sample": ["lecturekit.distributions.squashed_gaussian_sample"],
    "tanh_density": ["lecturekit.distributions.tanh_log_abs_det_jacobian",
                     "lecturekit.distributions.squashed_gaussian_log_prob"],
    "sac_update": ["lecturekit.algos.sac.update"],
    # ex08
    "fixed_reward_to_go": ["lecturekit.returns.discounted_returns", "lecturekit.returns.bootstrapped_returns"],
    "fixed_policy_loss": ["lecturekit.algos.reinforce.reinforce_loss"],
    "fixed_critic_loss": ["lecturekit.offpolicy.td_target", "lecturekit.algos.td3.clipped_double_q_target"],
}


@dataclasses.dataclass
class Limits:
    """What one sandbox may use."""
    memory_mb: int = 2048         # address space per process (RLIMIT_AS) and, with cgroups, the whole sandbox
    processes: int = 64           # processes and threads (RLIMIT_NPROC in its user namespace, cgroup pids.max)
    cpu_seconds: int = 600        # CPU time per process (RLIMIT_CPU)
    output_mb: int = 16           # stdout + stderr; the grader kills the sandbox past it
    disk_mb: int = 256            # its private tmpfs, and the largest file it may write (RLIMIT_FSIZE)


class SandboxTimeout(BaseException):
    """The student's code ran past its time limit."""


class SandboxDied(BaseException):
    """The sandbox ended (killed, crashed, out of memory, too much output) or sent something unreadable."""


class UsesReference(BaseException):
    """The student's function called a reference implementation the checker blocks."""


class ReferenceBlocked(BaseException):
    """Raised inside the sandbox by a blocked reference implementation."""


# ================================================================ wire format: length-prefixed messages, two kinds
def _write_msg(fd: int, payload: bytes) -> None:
    data = struct.pack("!Q", len(payload)) + payload
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            raise EOFError("the other side closed the channel")
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def _read_msg(fd: int, limit: int = MESSAGE_MAX) -> bytes:
    (n,) = struct.unpack("!Q", _read_exact(fd, 8))
    if n > limit:
        raise ValueError(f"a message of {n} bytes (limit {limit})")
    return _read_exact(fd, n)


class _DataOnly(pickle.Unpickler):
    """Loads only what pickle builds without any global: None, bools, numbers, str, bytes, lists, tuples, dicts."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused {module}.{name}: the sandbox may send data only")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused a persistent id")


def loads_data(payload: bytes):
    import io

    return _DataOnly(io.BytesIO(payload)).load()


# ================================================================ the sandbox side: values -> data
def _torch():
    return sys.modules.get("torch")


_ND_KINDS = "biufcUS"
_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
                 "complex64", "complex128")


def _walk_args(args, kwargs, visit) -> None:
    """Depth first over the arguments and what they hold, each object once, at most 4 levels and 10,000 objects:
    `visit(x, path)` returns the (step, child) pairs to go on into, or None to stop at x.  `_children(x)` gives the
    usual ones.  Paths are lists of steps: ("arg", i), ("kw", name), ("item", i or key), ("attr", name), ..."""
    seen = set()

    def walk(x, path, depth):
        if id(x) in seen or depth > 4 or len(seen) > 10_000:
            return
        seen.add(id(x))
        for step, child in visit(x, path) or ():
            walk(child, path + [step], depth + 1)

    for i, a in enumerate(args):
        walk(a, [("arg", i)], 0)
    for k, a in kwargs.items():
        walk(a, [("kw", k)], 0)


def _children(x):
    """The items of a list, tuple or dict (str or int keys), or the attributes of a plain object (not a class, not
    callable): the (step, child) pairs `_walk_args` follows by default."""
    if isinstance(x, (list, tuple)):
        return [(("item", i), v) for i, v in enumerate(x)]
    if isinstance(x, dict):
        return [(("item", k), v) for k, v in x.items() if isinstance(k, (str, int))]
    if dataclasses.is_dataclass(x) and not isinstance(x, type) and not hasattr(x, "__dict__"):  # slots
        return [(("attr", f.name), getattr(x, f.name, None)) for f in dataclasses.fields(x)]
    if hasattr(x, "__dict__") and not isinstance(x, type) and not callable(x):
        return [(("attr", k), v) for k, v in list(vars(x).items())[:200]
                if isinstance(k, str) and k.isidentifier() and not k.startswith("__")]
    return None


_SCALARS = (int, float, str, bytes, bool, type(None), complex)


def _path_index(args, kwargs) -> tuple[dict, list]:
    """{id(object): path} for the arguments and what they hold (a few levels deep), and the tensors that require
    grad with their paths (the sources of the Jacobians)."""
    torch = _torch()
    ids, sources = {}, []

    def visit(x, path):
        if isinstance(x, _SCALARS):
            return None
        ids.setdefault(id(x), (path, x))  # x kept alive: its id cannot be reused by a new result
        if torch is not None and isinstance(x, torch.Tensor):
            if x.requires_grad:
                sources.append((path, x))
            return None
        if torch is not None and isinstance(x, torch.nn.Module):
            return [(("param", name), p) for name, p in x.named_parameters()]
        return None if _is_optimizer(x) else _children(x)

    _walk_args(args, kwargs, visit)
    return ids, sources


def _is_optimizer(x) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.optim.Optimizer)


class _Encoder:
    """Turns the student's objects into data (tagged tuples of builtins)."""

    def __init__(self, ids: dict, sources: list, param_ids: dict | None = None, functions: dict | None = None):
        self.ids, self.sources, self.param_ids = ids, sources, param_ids or {}
        self.functions = functions  # handle -> function kept alive here (a returned function is called back)
        self.count = 0

    def tensor(self, t, with_grad_info=True):
        torch = _torch()
        name = str(t.dtype).replace("torch.", "")
        if name not in _TORCH_DTYPES:
            return ("opaque", f"tensor of dtype {name}", "")
        d = t.detach().cpu().contiguous()
        raw = (d.view(torch.int16) if name == "bfloat16" else d).numpy().tobytes()
        info = None
        if with_grad_info and t.requires_grad and t.grad_fn is not None:
            info = self.jacobian(t)
        grad = None
        if t.is_leaf and t.grad is not None:
            grad = self.tensor(t.grad, with_grad_info=False)
        return ("tensor", name, list(d.shape), raw, bool(t.requires_grad), info, grad)

    def jacobian(self, out):
        torch = _torch()
        srcs = [(p, s) for p, s in self.sources if s is not out]
        if not srcs:
            return ("none", [])
        try:
            flat = out.reshape(-1)
            if flat.numel() <= JACOBIAN_MAX and flat.numel() * sum(s.numel() for _, s in srcs) <= 4_000_000:
                rows = [torch.autograd.grad(flat[k], [s for _, s in srcs], retain_graph=True, allow_unused=True)
                        for k in range(flat.numel())]
                parts = []
                for j, (path, s) in enumerate(srcs):
                    if all(r[j] is None for r in rows):
                        continue
                    J = torch.stack([(r[j] if r[j] is not None else torch.zeros_like(s)).reshape(-1) for r in rows])
                    parts.append((path, self.tensor(J.to(torch.float64), with_grad_info=False)))
                return ("jac", parts)
            grads = torch.autograd.grad(out.sum(), [s for _, s in srcs], retain_graph=True, allow_unused=True)
            return ("sum", [(path, self.tensor(g.to(torch.float64), with_grad_info=False))
                            for (path, _), g in zip(srcs, grads) if g is not None])
        except Exception as e:  # e.g. a graph broken by an in-place operation: backward() must fail in the grader
            return ("error", f"{type(e).__name__}: {e}"[:2000])

    def __call__(self, x, depth=0, top=False):
        self.count += 1
        if self.count > 200_000 or depth > 40:
            return ("opaque", "too deep or too large", "")
        torch, np = _torch(), sys.modules.get("numpy")
        if x is None or isinstance(x, (bool, str, bytes)):
            return x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        if isinstance(x, complex):
            return ("complex", x.real, x.imag)
        if not top and id(x) in self.ids:
            return ("ref", self.ids[id(x)][0])
        if torch is not None and isinstance(x, torch.Tensor):
            return self.tensor(x)
        if np is not None and isinstance(x, np.ndarray):
            if x.dtype.kind not in _ND_KINDS:
                return ("list", [self(v, depth + 1) for v in x.tolist()]) if x.size <= 10_000 else \
                    ("opaque", "ndarray", "")
            return ("nd", x.dtype.str, list(x.shape), np.ascontiguousarray(x).tobytes())
        if np is not None and isinstance(x, np.generic):
            if x.dtype.kind not in _ND_KINDS:
                return ("opaque", type(x).__name__, "")
            return ("npscalar", x.dtype.str, x.tobytes())
        if isinstance(x, list):
            return ("list", [self(v, depth + 1) for v in x])
        if isinstance(x, tuple):
            return ("tuple", [self(v, depth + 1) for v in x])
        if isinstance(x, dict):
            return ("dict", [[self(k, depth + 1), self(v, depth + 1)] for k, v in x.items()])
        if torch is not None and isinstance(x, torch.nn.Module):
            params = [(n, self.tensor(p, with_grad_info=False), self.param_ids.get((id(x), n)) == id(p))
                      for n, p in x.named_parameters()]
            buffers = [(n, self.tensor(b, with_grad_info=False)) for n, b in x.named_buffers()]
            return ("module", type(x).__name__, params, buffers, bool(x.training))
        if _is_optimizer(x):
            return ("optimizer", self(x.state_dict(), depth + 1))
        if torch is not None and isinstance(x, torch.Generator):
            return ("generator", self.tensor(x.get_state(), with_grad_info=False))
        if np is not None and isinstance(x, np.random.Generator):
            return ("npgen", self(x.bit_generator.state, depth + 1))
        if self.functions is not None and callable(x) and not isinstance(x, (type, types.ModuleType)):
            handle = len(self.functions)
            self.functions[handle] = x
            return ("function", handle, str(getattr(x, "__name__", type(x).__name__))[:100])
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            cls = type(x)
            return ("dataclass", f"{cls.__module__}:{cls.__qualname__}",
                    [(f.name, self(getattr(x, f.name, None), depth + 1)) for f in dataclasses.fields(x)])
        if hasattr(x, "__dict__") and not isinstance(x, (type, types.ModuleType)) and not callable(x):
            return ("object", type(x).__name__,
                    [(k, self(v, depth + 1)) for k, v in list(vars(x).items())[:200] if isinstance(k, str)])
        try:
            text = repr(x)[:200]
        except Exception:
            text = ""
        return ("opaque", type(x).__name__, text)


# ================================================================ the grader side: data -> values
class _Decoder:
    """Builds values from a sandbox's data, resolving references and autograd sources against the checker's own
    arguments."""

    def __init__(self, args, kwargs, proxy: "Proxy | None" = None):
        self.args, self.kwargs, self.count = args, kwargs, 0
        self.proxy = proxy  # the call's proxy: a returned function becomes a proxy of the same sandbox

    def resolve(self, path):
        torch = _torch()
        obj = None
        for step in path:
            kind, key = step
            if kind == "arg":
                obj = self.args[key]
            elif kind == "kw":
                obj = self.kwargs[key]
            elif kind == "item":
                obj = obj[key]
            elif kind == "param":
                obj = obj.get_parameter(key) if torch is not None and isinstance(obj, torch.nn.Module) else None
            elif kind == "attr":
                if not (isinstance(key, str) and key.isidentifier() and not key.startswith("__")):
                    raise ValueError("bad attribute path")
                obj = getattr(obj, key)
            elif kind == "submodule":
                obj = obj.get_submodule(str(key)) if torch is not None and isinstance(obj, torch.nn.Module) else None
            else:
                raise ValueError("bad path")
        return obj

    def tensor(self, d):
        import numpy as np
        torch = _torch() or __import__("torch")
        _, name, shape, raw, requires_grad, info, grad = d
        if name not in _TORCH_DTYPES or not isinstance(raw, bytes):
            raise ValueError("bad tensor")
        shape = [int(s) for s in shape]
        np_name = {"bfloat16": "int16"}.get(name, name)
        arr = np.frombuffer(raw, dtype=np.dtype(np_name)).reshape(shape).copy()
        t = torch.from_numpy(arr)
        if name == "bfloat16":
            t = t.view(torch.bfloat16)
        if requires_grad and t.dtype.is_floating_point:
            t = self.connect(t, info)
        if grad is not None and t.is_leaf:
            g = self.tensor(grad)
            if g.shape == t.shape:
                t.grad = g.to(t.dtype)
        return t

    def connect(self, value, info):
        """value, as a tensor that requires grad and depends on the checker's tensors as the sandbox measured."""
        torch = _torch()
        if not info or info[0] == "none":
            return value.requires_grad_(True)
        kind, parts = info
        if kind == "error":
            return _BrokenGraph.apply(value.requires_grad_(True), str(parts))
        out = value
        n = value.numel()
        terms = []
        for path, jd in parts:
            x = self.resolve(path)
            if not (isinstance(x, torch.Tensor) and x.requires_grad):
                continue
            J = self.tensor(jd)
            dx = (x - x.detach()).reshape(-1).to(torch.float64)
            if kind == "jac" and J.shape == (n, dx.numel()):
                terms.append((J @ dx).reshape(value.shape))
            elif kind == "sum" and J.numel() == dx.numel():
                terms.append((J.reshape(-1) @ dx) / max(n, 1) * torch.ones_like(value, dtype=torch.float64))
        if not terms:
            return value.requires_grad_(True)
        return out + sum(terms).to(value.dtype)

    def __call__(self, d, depth=0):
        self.count += 1
        if self.count > NODES_MAX or depth > 60:
            raise ValueError("the answer is too large or too deeply nested")
        if d is None or isinstance(d, (bool, int, float, str, bytes)):
            return d
        if not (isinstance(d, tuple) and d and isinstance(d[0], str)):
            raise ValueError("malformed data")
        tag = d[0]
        if tag == "complex":
            return complex(float(d[1]), float(d[2]))
        if tag == "ref":
            return self.resolve(d[1])
        if tag == "tensor":
            return self.tensor(d)
        if tag in ("nd", "npscalar"):
            import numpy as np
            dt = np.dtype(d[1])
            if dt.kind not in _ND_KINDS:
                raise ValueError("bad dtype")
            if tag == "npscalar":
                return np.frombuffer(d[2], dtype=dt)[0]
            return np.frombuffer(d[3], dtype=dt).reshape([int(s) for s in d[2]]).copy()
        if tag == "list":
            return [self(v, depth + 1) for v in d[1]]
        if tag == "tuple":
            return tuple(self(v, depth + 1) for v in d[1])
        if tag == "dict":
            out = {}
            for k, v in d[1]:
                k = self(k, depth + 1)
                try:
                    out[k] = self(v, depth + 1)
                except TypeError:  # an unhashable key
                    raise ValueError("unhashable key") from None
            return out
        if tag == "module":
            return _remote_module(self, d)
        if tag == "dataclass":
            return self.dataclass(d, depth)
        if tag == "object":
            cls = _opaque_class(d[1])
            obj = cls.__new__(cls)
            for k, v in d[2]:
                if isinstance(k, str) and k.isidentifier():
                    obj.__dict__[k] = self(v, depth + 1)
            return obj
        if tag == "optimizer":
            return _opaque_class("Optimizer")()
        if tag == "function" and self.proxy is not None and isinstance(d[1], int):
            p = self.proxy
            name = str(d[2]) if str(d[2]).isidentifier() else "function"
            return Proxy(p.box, name, p.blocked, p.deadline, handle=d[1])
        if tag == "generator":
            import torch
            g = torch.Generator()
            g.set_state(self.tensor(d[1]))
            return g
        if tag == "npgen":
            import numpy as np
            g = np.random.default_rng()
            try:
                g.bit_generator.state = self(d[1], depth + 1)
            except Exception:
                pass
            return g
        if tag == "opaque":
            cls = _opaque_class(str(d[1]))
            obj = cls()
            obj.text = str(d[2])[:200]
            return obj
        raise ValueError(f"unknown tag {tag!r}")

    def dataclass(self, d, depth):
        where = str(d[1])
        mod_name, _, qual = where.partition(":")
        fields = {k: self(v, depth + 1) for k, v in d[2] if isinstance(k, str)}
        mod = sys.modules.get(mod_name) if mod_name.split(".")[0] == "lecturekit" else None
        cls = mod
        for part in qual.split(".") if mod is not None else []:
            cls = getattr(cls, part, None)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            try:
                return cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls) if f.init and f.name in fields})
            except Exception:
                pass
        obj = _opaque_class(qual.split(".")[-1] or "object").__new__(_opaque_class(qual.split(".")[-1] or "object"))
        obj.__dict__.update({k: v for k, v in fields.items() if k.isidentifier()})
        return obj


class _Opaque:
    """Something the student's function returned that does not travel as data (shown by its type name)."""
    text = ""

    def __repr__(self):
        return self.text or f"<{type(self).__name__} from the submission>"


@functools.lru_cache(maxsize=256)
def _opaque_class(name: str) -> type:
    safe = name if name.isidentifier() else "Returned"
    return type(safe[:60], (_Opaque,), {"__module__": "submission"})


def _remote_module(dec: _Decoder, d):
    import torch
    m = torch.nn.Module()
    for name, td, _same in d[2]:
        if isinstance(name, str):
            m.register_parameter(name.replace(".", "_"), torch.nn.Parameter(dec.tensor(td).detach()))
    m.train(bool(d[4]))
    return m


def _make_broken_graph():
    try:
        import torch
    except ImportError:
        return None

    class BrokenGraph(torch.autograd.Function):
        """A result whose backward fails the way it failed in the sandbox."""

        @staticmethod
        def forward(ctx, x, message):
            ctx.message = message
            return x.detach().clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError(ctx.message)

    return BrokenGraph


class _LazyBroken:
    def apply(self, *a):
        global _BrokenGraph
        _BrokenGraph = _make_broken_graph()
        return _BrokenGraph.apply(*a)


_BrokenGraph = _LazyBroken()


# ---------------------------------------------------------------- writing the arguments back into the checker's objects
def apply_state(obj, d, dec: _Decoder, depth=0):
    """Make the checker's `obj` look like the sandbox's copy after the call (in place where the type allows)."""
    torch, np = _torch(), sys.modules.get("numpy")
    if depth > 30 or not isinstance(d, tuple) or not d:
        return
    tag = d[0]
    if torch is not None and isinstance(obj, torch.Tensor) and tag == "tensor":
        new = dec.tensor(d[:5] + (None, None))
        with torch.no_grad():
            if new.shape == obj.shape and new.dtype == obj.dtype:
                if not torch.equal(new, obj.detach()):
                    obj.copy_(new)
            elif obj.is_leaf:
                obj.data = new.to(obj.dtype) if new.is_floating_point() == obj.is_floating_point() else obj.data
        if obj.is_leaf:
            if bool(d[4]) != obj.requires_grad and obj.dtype.is_floating_point:
                obj.requires_grad_(bool(d[4]))
            grad = d[6]
            obj.grad = None if grad is None else dec.tensor(grad).to(obj.dtype)
    elif np is not None and isinstance(obj, np.ndarray) and tag == "nd":
        new = dec(d)
        if new.shape == obj.shape and obj.flags.writeable:
            if not np.array_equal(new, obj, equal_nan=obj.dtype.kind in "fc"):
                obj[...] = new.astype(obj.dtype, copy=False)
    elif isinstance(obj, list) and tag == "list":
        items = d[1]
        if len(items) == len(obj):
            for i, v in enumerate(items):
                if _mutable(obj[i]):
                    apply_state(obj[i], v, dec, depth + 1)
                else:
                    new = dec(v)
                    if not _equal(new, obj[i]):
                        obj[i] = new
        else:
            obj[:] = [dec(v) for v in items]
    elif isinstance(obj, tuple) and tag == "tuple":
        for o, v in zip(obj, d[1]):
            if _mutable(o):
                apply_state(o, v, dec, depth + 1)
    elif isinstance(obj, dict) and tag == "dict":
        pairs = [(dec(k), v) for k, v in d[1]]
        if [k for k, _ in pairs] == list(obj.keys()):
            for k, v in pairs:
                if _mutable(obj[k]):
                    apply_state(obj[k], v, dec, depth + 1)
                else:
                    new = dec(v)
                    if not _equal(new, obj[k]):
                        obj[k] = new
        else:
            obj.clear()
            obj.update({k: dec(v) for k, v in pairs})
    elif torch is not None and isinstance(obj, torch.nn.Module) and tag == "module":
        _apply_module(obj, d, dec)
    elif _is_optimizer(obj) and tag == "optimizer":
        obj.load_state_dict(dec(d[1]))
    elif torch is not None and isinstance(obj, torch.Generator) and tag == "generator":
        obj.set_state(dec.tensor(d[1]))
    elif np is not None and isinstance(obj, np.random.Generator) and tag == "npgen":
        obj.bit_generator.state = dec(d[1])
    elif tag in ("dataclass", "object") and hasattr(obj, "__dict__"):
        fields = d[2]
        for k, v in fields:
            if not (isinstance(k, str) and k.isidentifier() and not k.startswith("__")):
                continue
            if not hasattr(obj, k):
                continue
            cur = getattr(obj, k)
            if _mutable(cur):
                apply_state(cur, v, dec, depth + 1)
            else:
                new = dec(v)
                if not _equal(new, cur):
                    try:
                        setattr(obj, k, new)
                    except Exception:  # a frozen dataclass: the student could not change it either
                        pass


def _mutable(x) -> bool:
    return not isinstance(x, (int, float, str, bytes, bool, complex, type(None), type, types.FunctionType))


def _equal(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _apply_module(module, d, dec):
    import torch
    _, _, params, buffers, training = d
    own = dict(module.named_parameters())
    with torch.no_grad():
        for name, td, same in params:
            p = own.get(name)
            if p is None:
                continue
            value = dec.tensor(td[:5] + (None, None))
            grad = td[6]
            if same and value.shape == p.shape:
                if not torch.equal(value, p.detach()):
                    p.copy_(value.to(p.dtype))
                target = p
            else:  # the student replaced the parameter: so does the checker's module
                owner_name, _, attr = name.rpartition(".")
                owner = module.get_submodule(owner_name) if owner_name else module
                target = torch.nn.Parameter(value.to(p.dtype), requires_grad=bool(td[4]))
                setattr(owner, attr, target)
            if target.requires_grad != bool(td[4]) and target.dtype.is_floating_point:
                target.requires_grad_(bool(td[4]))
            target.grad = None if grad is None else dec.tensor(grad).to(target.dtype)
        own_buffers = dict(module.named_buffers())
        for name, td in buffers:
            b = own_buffers.get(name)
            if b is not None:
                value = dec.tensor(td)
                if value.shape == b.shape:
                    b.copy_(value.to(b.dtype))
    module.train(bool(training))


# ================================================================ the grader side: one sandbox
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None if bubblewrap can start a sandbox here, else why not."""
    exe = bwrap_path()
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    cmd = [exe, *_mounts(), "--unshare-all", "--die-with-parent", "--", sys.executable, "-c", "pass"]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=60, env=_sandbox_env())
    except Exception as e:
        return f"bwrap could not run ({type(e).__name__}: {e})"
    if r.returncode != 0:
        return f"bwrap could not start a sandbox: {r.stderr.decode(errors='replace').strip()[:300]}"
    return None


def _mounts() -> list[str]:
    """Read-only: the system's /usr (and /bin, /lib... as they are), a few files of /etc, the Python installation,
    its environment and the lecturekit package.  Nothing else of the machine is visible."""
    import lecturekit

    out = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            out += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            out += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts", "/etc/localtime",
              "/etc/alternatives", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/mime.types"):
        out += ["--ro-bind-try", f, f]
    seen = ["/usr"]
    pkg = str(Path(lecturekit.__file__).resolve().parent)
    for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)), pkg):
        p = os.path.realpath(p) if p != pkg else p
        if os.path.isdir(p) and not any(p == s or p.startswith(s + "/") for s in seen):
            out += ["--ro-bind", p, p]
            seen.append(p)
        q = os.path.abspath(p if p == pkg else (sys.prefix if p == os.path.realpath(sys.prefix) else p))
        if q != p and os.path.isdir(q) and not any(q == s or q.startswith(s + "/") for s in seen):
            out += ["--ro-bind", q, q]
            seen.append(q)
    if os.path.abspath(sys.prefix) not in seen and not any(os.path.abspath(sys.prefix).startswith(s + "/")
                                                            for s in seen):
        out += ["--ro-bind", os.path.abspath(sys.prefix), os.path.abspath(sys.prefix)]
    return out


def _sandbox_env(tmp: str = "/tmp") -> dict:
    """A clean environment: nothing of the instructor's (tokens, paths) leaks in."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": f"{tmp}/home", "TMPDIR": tmp, "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{tmp}/home/.matplotlib", "IPYTHONDIR": f"{tmp}/home/.ipython",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "LECTUREKIT_SANDBOX": "1"}


class _Cgroup:
    """Memory and process caps for the whole sandbox with cgroups, when this process may create them (root with
    cgroup v1 or v2 mounted writable); otherwise nothing, and the per-process limits remain."""

    counter = 0
    lock = threading.Lock()

    def __init__(self, limits: Limits):
        self.dirs: list[Path] = []
        with _Cgroup.lock:
            _Cgroup.counter += 1
            name = f"lecturekit-grade-{os.getpid()}-{_Cgroup.counter}"
        root = Path("/sys/fs/cgroup")
        mem = limits.memory_mb << 20
        _Cgroup.sweep()
        try:
            if (root / "cgroup.controllers").exists():  # v2
                d = root / name
                d.mkdir()
                self.dirs.append(d)
                (d / "pids.max").write_text(str(limits.processes + 8))
                (d / "memory.max").write_text(str(mem + (limits.disk_mb << 20)))
            elif (root / "pids").is_dir() and (root / "memory").is_dir():  # v1
                for ctl, files in (("pids", {"pids.max": limits.processes + 8}),
                                   ("memory", {"memory.limit_in_bytes": mem + (limits.disk_mb << 20)})):
                    d = root / ctl / name
                    d.mkdir()
                    self.dirs.append(d)
                    for f, v in files.items():
                        (d / f).write_text(str(v))
        except OSError:
            self.remove()
            self.dirs = []

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def sweep() -> None:
        """Remove the empty cgroups of graders that no longer run (killed before they could clean up)."""
        root = Path("/sys/fs/cgroup")
        for d in [*root.glob("lecturekit-grade-*-*"), *root.glob("*/lecturekit-grade-*-*")]:
            try:
                pid = int(d.name.split("-")[2])
                if not Path(f"/proc/{pid}").exists():
                    d.rmdir()
            except (OSError, ValueError, IndexError):
                pass

    def wrap(self, cmd: list[str]) -> list[str]:
        if not self.dirs:
            return cmd
        joins = "; ".join(f"echo $$ > {d / 'cgroup.procs'}" for d in self.dirs)
        return ["/bin/sh", "-c", f"{joins} && exec \"$@\"", "sh", *cmd]

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(200):  # the kernel takes a moment to reap the killed processes
                try:
                    pids = (d / "cgroup.procs").read_text().split()
                    for pid in pids:
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except OSError:
                            pass
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


class Sandbox:
    """One submission's sandbox, driven by the grader: `run_cell`, `begin` (a function by name), `proxy`."""

    def __init__(self, references: list[str], limits: Limits | None = None, unsafe: bool = False,
                 notebook: tuple[str, bytes] | None = None, startup_timeout: float = 120):
        self.limits = limits or Limits()
        self.dead: str | None = None
        self.out_total = 0
        self.out_tail = b""
        self.timed_out = False
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        intr_r, self.intr_w = os.pipe()
        # -c, not -m: the server's module must be the one the arguments' stubs are unpickled from
        # and the grader's own lecturekit, whichever way it is installed
        parent = str(Path(__file__).resolve().parents[2])
        server = [sys.executable, "-I", "-B", "-u", "-c", f"import sys; sys.path.insert(0, {parent!r}); "
                  "from lecturekit.course.sandbox import main; main(sys.argv[1:])", str(req_r), str(resp_w),
                  str(intr_r)]
        self.cgroup = None
        self.scratch = None
        tmp = "/tmp"
        if unsafe:  # a scratch folder of our own instead of the sandbox's tmpfs, removed at the end
            import tempfile
            self.scratch = tmp = tempfile.mkdtemp(prefix="lecturekit-grade-")
            cmd = server
        else:
            cmd = [bwrap_path(), "--size", str(self.limits.disk_mb << 20), "--tmpfs", "/tmp", "--dev", "/dev",
                   "--proc", "/proc", *_mounts(), "--unshare-all", "--die-with-parent", "--new-session",
                   "--cap-drop", "ALL", "--hostname", "sandbox", "--chdir", "/tmp", "--", *server]
            self.cgroup = _Cgroup(self.limits)
            cmd = self.cgroup.wrap(cmd)
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, pass_fds=(req_r, resp_w, intr_r),
                                         env=_sandbox_env(tmp), cwd=tmp, start_new_session=True)
        finally:
            for fd in (req_r, resp_w, intr_r):
                os.close(fd)
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()
        try:
            self._send({"op": "init", "references": references, "unsafe": unsafe, "notebook": notebook,
                        "limits": dataclasses.asdict(self.limits)})
            msg = self._answer(time.monotonic() + startup_timeout)
            if msg != ("ready",):
                raise SandboxDied("the sandbox did not start")
        except BaseException as e:
            why = self.out_tail.decode(errors="replace").strip().splitlines()[-1:] if self.out_tail else []
            self.close()
            if isinstance(e, SandboxTimeout):
                raise SandboxDied(f"the sandbox did not start within {startup_timeout:g} s") from None
            if isinstance(e, SandboxDied) and why:
                raise SandboxDied(f"{e}: {why[0][:200]}") from None
            raise

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Read the sandbox's output as it comes, keep a short tail, and kill the sandbox past the output limit."""
        cap = self.limits.output_mb << 20
        fd = self.proc.stdout.fileno()
        while True:
            try:
                b = os.read(fd, 1 << 16)
            except OSError:
                break
            if not b:
                break
            self.out_total += len(b)
            self.out_tail = (self.out_tail + b)[-2000:]
            if self.out_total > cap and not self.dead:
                self.dead = f"the submission printed more than {self.limits.output_mb} MB of output"
                self.kill()

    def _send(self, msg) -> None:
        try:
            _write_msg(self.req_w, pickle.dumps(msg, protocol=5))
        except OSError:
            raise SandboxDied(self._why_dead()) from None

    def _why_dead(self) -> str:
        if self.dead:
            return self.dead
        code = self.proc.poll()
        if code is None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        if code is not None and code < 0:
            sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            why = f"the submission's process was killed ({sig}{'; out of memory?' if -code == 9 else ''})"
        elif code is not None:
            why = f"the submission's process exited (status {code})"
        else:
            why = "the submission's process stopped answering"
        self.dead = why
        return why

    def _recv(self, deadline: float | None):
        """The next message, or SandboxTimeout at the deadline (after interrupting the student's code)."""
        import select

        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise SandboxTimeout()
            r, _, _ = select.select([self.resp_r], [], [], None if wait is None else min(wait, 1.0))
            if r:
                break
            if self.dead or self.proc.poll() is not None:
                raise SandboxDied(self._why_dead())
        try:
            return loads_data(_read_msg(self.resp_r))
        except Exception as e:
            if isinstance(e, EOFError) or self.dead or self.proc.poll() is not None:
                raise SandboxDied(self._why_dead()) from None
            self.dead = f"the submission sent an unreadable message ({type(e).__name__}: {e})"
            self.kill()
            raise SandboxDied(self.dead) from None

    def _answer(self, deadline: float, handle=None):
        """The reply to the last request; callbacks are served on the way.  On a time-out the student's code is
        interrupted; if it does not stop within 10 s, the sandbox is killed."""
        try:
            while True:
                msg = self._recv(deadline)
                if isinstance(msg, tuple) and msg and msg[0] == "callback" and handle is not None:
                    self._send(handle(msg))
                    continue
                return msg
        except SandboxTimeout:
            self.timed_out = True
            try:
                os.write(self.intr_w, b"!")
                end = time.monotonic() + 10
                while True:
                    msg = self._recv(end)
                    if isinstance(msg, tuple) and msg and msg[0] == "callback":
                        self._send(("callback_error", "KeyboardInterrupt", "time is up"))
                        continue
                    break
            except (SandboxTimeout, OSError, SandboxDied):
                self.dead = "the submission's code did not stop after a time-out"
                self.kill()
            raise

    # -- what the grader asks ---------------------------------------------------------------------------------------
    def run_cell(self, source: str, timeout: float) -> tuple[str, str] | None:
        """Run one cell; None, or (error name, message) if it raised.  SandboxTimeout / SandboxDied otherwise."""
        if self.dead:
            raise SandboxDied(self.dead)
        self._send({"op": "cell", "source": source})
        msg = self._answer(time.monotonic() + timeout)
        if not (isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "cell"):
            raise SandboxDied("the submission answered out of turn")
        err = msg[1]
        if err is None:
            return None
        return str(err[0])[:100], str(err[1])[:500]

    def begin(self, name: str, timeout: float = 30) -> bool:
        """Select the function `name` of the notebook for calls; False if it is not defined (or not callable)."""
        if self.dead:
            raise SandboxDied(self.dead)
        self._send({"op": "begin", "name": name})
        msg = self._answer(time.monotonic() + timeout)
        ok = isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "begin" and msg[1] is True
        self.signature = _signature(msg[2]) if ok else None
        return ok

    def proxy(self, name: str, blocked: list[str], deadline: float) -> "Proxy":
        p = Proxy(self, name, blocked, deadline)
        if self.signature is not None:
            p.__signature__ = self.signature
        return p

    def close(self) -> None:
        if self.proc.poll() is None and not self.dead:
            try:
                self._send({"op": "exit"})
                self.proc.wait(timeout=3)
            except (SandboxDied, subprocess.TimeoutExpired, OSError):
                pass
        self.kill()
        for fd in (self.req_w, self.resp_r, self.intr_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.drainer.join(timeout=5)
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def kill(self) -> None:
        """Kill the sandbox and everything it started (its PID namespace ends with it)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.cgroup is not None:
            self.cgroup.remove()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class _CheckerPickler(pickle.Pickler):
    """Pickles a checker's arguments for the sandbox: its own callables stay here (the sandbox gets stubs that call
    back), and tensors travel as leaves (requires_grad kept)."""

    def __init__(self, file, callbacks: list):
        super().__init__(file, protocol=5)
        self.callbacks = callbacks

    def reducer_override(self, obj):
        torch = _torch()
        if isinstance(obj, type):
            return NotImplemented
        if torch is not None and isinstance(obj, torch.nn.Parameter):
            if obj.grad is not None:  # pickle leaves .grad out: a stale gradient must reach the student's code too
                return _parameter, (obj.detach().clone(), bool(obj.requires_grad), obj.grad.detach().clone())
            return NotImplemented
        if torch is not None and isinstance(obj, torch.Tensor):
            if not obj.is_leaf or type(obj) is not torch.Tensor or obj.grad is not None:
                grad = obj.grad.detach().clone() if obj.is_leaf and obj.grad is not None else None
                return _leaf_tensor, (obj.detach().clone(), bool(obj.requires_grad), grad)
            return NotImplemented
        if _stays_here(obj):
            self.callbacks.append(obj)
            return _callback_stub, (len(self.callbacks) - 1,)
        return NotImplemented


def _stays_here(obj) -> bool:
    """A checker's callable (lambda, local function, bound method, partial, or a callable object of the checkers):
    it is called back, never sent."""
    torch = _torch()
    if obj is _callback_stub or obj is _leaf_tensor or obj is _parameter or not callable(obj) or (
            torch is not None and isinstance(obj, (torch.nn.Module, torch.Tensor))):
        return False
    if isinstance(obj, (functools.partial, types.MethodType)):
        return True
    if isinstance(obj, types.FunctionType):
        return "<" in obj.__qualname__ or (obj.__module__ or "").startswith("lecturekit.course.checks")
    return (type(obj).__module__ or "").startswith("lecturekit.course.checks")


def _leaf_tensor(t, requires_grad, grad=None):
    t = t.requires_grad_(requires_grad) if t.is_floating_point() or t.is_complex() else t
    if grad is not None and grad.shape == t.shape and (t.is_floating_point() or t.is_complex()):
        t.grad = grad.to(t.dtype)
    return t


def _parameter(data, requires_grad, grad):
    import torch
    p = torch.nn.Parameter(data, requires_grad=requires_grad)
    if grad is not None and grad.shape == p.shape:
        p.grad = grad.to(p.dtype)
    return p


class Proxy:
    """What a checker gets instead of the student's function: calls it in the sandbox (see the module docstring)."""

    def __init__(self, box: Sandbox, name: str, blocked: list[str], deadline: float, handle: int | None = None):
        self.box, self.__name__, self.blocked, self.deadline = box, name, blocked, deadline
        self.__qualname__ = name
        self.handle = handle  # a function the student's function returned (kept alive in the sandbox)
        self.used_reference: str | None = None
        self.signature = None

    def __repr__(self):
        return f"<function {self.__name__} (in the sandbox)>"

    def __call__(self, *args, **kwargs):
        import io

        box = self.box
        if box.dead:
            raise SandboxDied(box.dead)
        callbacks: list = []
        buf = io.BytesIO()
        hooked = _hooked(args, kwargs)
        stashed = [(m, m._forward_hooks) for _, kind, m in hooked if kind == "module"]
        try:  # the modules' forward hooks stay here (replayed after the call), not called back from the sandbox
            for m, _ in stashed:
                m._forward_hooks = type(m._forward_hooks)()
            _CheckerPickler(buf, callbacks).dump((args, kwargs))
        finally:
            for m, hooks in stashed:
                m._forward_hooks = hooks
        box._send({"op": "call", "blocked": self.blocked, "payload": buf.getvalue(), "handle": self.handle,
                   "hooked": [(path, kind) for path, kind, _ in hooked]})
        dec = _Decoder(args, kwargs, self)

        def handle(msg):
            _, k, a, kw = msg
            try:
                fn = callbacks[int(k)]
                value = fn(*_Decoder((), {})(a), **_Decoder((), {})(kw))
                return ("callback_result", pickle.dumps(value, protocol=5))
            except BaseException as e:  # the checker's own callable refused the input: the student sees why
                return ("callback_error", type(e).__name__, str(e)[:2000])

        msg = box._answer(self.deadline, handle)
        if not (isinstance(msg, tuple) and len(msg) in (5, 6) and msg[0] == "result"):
            raise SandboxDied("the submission answered out of turn")
        _, value, states, exc, reference = msg[:5]
        if reference:
            self.used_reference = str(reference)
            raise UsesReference(self.used_reference)
        if len(msg) > 5 and isinstance(msg[5], list):
            _replay(msg[5], hooked, dec)
        if isinstance(states, tuple) and len(states) == 2:
            arg_states, kw_states = states
            for a, s in zip(args, arg_states if isinstance(arg_states, list) else []):
                if _mutable(a):
                    apply_state(a, s, dec)
            for k, s in (kw_states if isinstance(kw_states, list) else []):
                if isinstance(k, str) and k in kwargs and _mutable(kwargs[k]):
                    apply_state(kwargs[k], s, dec)
        if exc is not None:
            raise _student_exception(exc)
        return dec(value)


@functools.lru_cache(maxsize=256)
def _student_exception_class(name: str) -> type:
    safe = name if name.isidentifier() else "Error"
    return type(safe[:60], (Exception,), {"__module__": "submission"})


def _student_exception(exc) -> BaseException:
    name, message, line = (str(x)[:2000] for x in exc)
    text = message + line
    if name == "NotImplementedError":
        return NotImplementedError(text)
    return _student_exception_class(name)(text)


# ================================================================ the server, inside the sandbox
class _Server:
    def __init__(self, req: int, resp: int, intr: int):
        self.req, self.resp, self.intr = req, resp, intr
        self.blocked: set[str] = set()
        self.hit: str | None = None
        self.fn = None
        self.shell = None
        self.functions: dict = {}  # handle -> a function a student's function returned

    def send(self, obj) -> None:
        _write_msg(self.resp, pickle.dumps(obj, protocol=5))

    def recv(self):
        while True:
            try:
                return pickle.loads(_read_msg(self.req, limit=1 << 40))
            except KeyboardInterrupt:  # a late interrupt while idle
                continue

    # -- setup ------------------------------------------------------------------------------------------------------
    def init(self, msg) -> None:
        import tempfile

        _set_limits(msg["limits"], unsafe=msg.get("unsafe", False))
        # the private copy of the submission, and the folder its code starts in
        work = tempfile.mkdtemp(prefix="submission-")
        if msg.get("notebook"):
            name, data = msg["notebook"]
            with open(os.path.join(work, os.path.basename(name) or "submission.ipynb"), "wb") as f:
                f.write(data)
        os.makedirs(os.path.join(tempfile.gettempdir(), "home"), exist_ok=True)
        os.chdir(work)
        # the checkers do nothing in here (the grader runs them on the functions), and the references get guards;
        # both as soon as their modules are imported, so that a notebook imports only what it uses
        hooks = _PostImport()
        hooks.add("lecturekit.course.checking", _disable_checkers)
        for q in msg["references"]:
            hooks.add(q.rsplit(".", 1)[0], functools.partial(self.guard, q))
        sys.meta_path.insert(0, hooks)
        threading.Thread(target=self.watch_interrupts, daemon=True).start()
        from IPython.core.interactiveshell import InteractiveShell

        self.shell = InteractiveShell.instance()
        self.shell.showtraceback = _short_traceback(self.shell.showtraceback)

    def guard(self, qualname: str, module) -> None:
        """Replace the reference `qualname` (a function of `module`) by a guard that refuses while a checker
        blocks it."""
        holder, attr = module, qualname.rsplit(".", 1)[1]
        original = getattr(holder, attr, None)
        if original is None:
            return
        server = self

        @functools.wraps(original)
        def guarded(*a, **k):
            if qualname in server.blocked:
                server.hit = qualname
                raise ReferenceBlocked(f"{qualname} is the course's reference implementation; the grader blocks it "
                                       "while your function is checked")
            return original(*a, **k)

        setattr(holder, attr, guarded)
        for name, mod in list(sys.modules.items()):  # modules that imported it by name
            if name.startswith("lecturekit") and mod is not None:
                for k, v in list(vars(mod).items()):
                    if v is original:
                        setattr(mod, k, guarded)

    def watch_interrupts(self) -> None:
        main = threading.main_thread().ident
        while True:
            try:
                b = os.read(self.intr, 1)
            except OSError:
                return
            if not b:
                return
            signal.pthread_kill(main, signal.SIGINT)

    # -- requests ---------------------------------------------------------------------------------------------------
    def loop(self) -> None:
        while True:
            msg = self.recv()
            op = msg.get("op")
            if op == "init":
                self.init(msg)
                self.send(("ready",))
            elif op == "cell":
                self.send(("cell", self.cell(msg["source"])))
            elif op == "begin":
                fn = self.shell.user_ns.get(msg["name"]) if self.shell else None
                self.fn = fn if callable(fn) else None
                self.functions = {}
                self.send(("begin", self.fn is not None, _parameters(self.fn)))
            elif op == "call":
                self.send(self.call(msg))
            elif op == "exit":
                return

    def cell(self, source: str):
        try:
            result = self.shell.run_cell(source, store_history=True)
        except KeyboardInterrupt:
            return ("KeyboardInterrupt", "interrupted")
        err = result.error_before_exec or result.error_in_exec
        if err is None:
            return None
        return (type(err).__name__, str(err)[:500])

    def call(self, msg):
        self.blocked, self.hit = set(msg["blocked"]), None
        value = states = exc = None
        events: list = []
        try:
            args, kwargs = pickle.loads(msg["payload"])
            ids, sources = _path_index(args, kwargs)
            torch = _torch()
            param_ids = {}
            if torch is not None:
                for a in [*args, *kwargs.values()]:
                    _collect_param_ids(a, param_ids)
            fn = self.fn if msg.get("handle") is None else self.functions.get(msg["handle"])
            recorder = _EventRecorder(args, kwargs, msg.get("hooked") or [])
            try:
                out = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - everything the student's code raises is its answer
                out = None
                exc = (type(e).__name__, str(e), _student_line(e))
            finally:
                self.blocked = set()
                recorder.close()
            events = recorder.events
            enc = _Encoder(ids, sources, param_ids, functions=self.functions)
            value = enc(out)
            arg_enc = _Encoder({}, [], param_ids)
            states = ([arg_enc(a, top=True) for a in args], [(k, arg_enc(v, top=True)) for k, v in kwargs.items()])
        except KeyboardInterrupt:
            exc = ("KeyboardInterrupt", "interrupted", "")
        except BaseException as e:  # noqa: BLE001 - could not even encode the answer
            exc = (type(e).__name__, f"the answer could not be sent back to the grader: {e}", "")
        return ("result", value, states, exc, self.hit, events)


# ---------------------------------------------------------------- hooks of the checker's optimizers and modules
def _hooked(args, kwargs) -> list:
    """(path, kind, object) for every optimizer among the arguments with step hooks ("optimizer") and every module
    (or submodule) with forward hooks ("module"): what happens to their copies in the sandbox is replayed on them."""
    torch = _torch()
    out, mods = [], set()
    if torch is None:
        return out

    def visit(x, path):
        if isinstance(x, (*_SCALARS, torch.Tensor)):
            return None
        if isinstance(x, torch.optim.Optimizer):
            if x._optimizer_step_pre_hooks or x._optimizer_step_post_hooks:
                out.append((path, "optimizer", x))
            return None
        if isinstance(x, torch.nn.Module):
            for name, m in x.named_modules():
                if m._forward_hooks and id(m) not in mods:
                    mods.add(id(m))
                    out.append((path + ([("submodule", name)] if name else []), "module", m))
            return None
        return _children(x)

    _walk_args(args, kwargs, visit)
    return out


class _EventRecorder:
    """In the sandbox: records, in order, each step() of the hooked optimizers (the .grad of each of its parameters
    before the step, then the step's end) and each forward call of the hooked modules (inputs and output)."""

    def __init__(self, args, kwargs, hooked: list):
        self.events: list = []
        self.handles = []
        resolver = _Decoder(args, kwargs)
        enc = _Encoder({}, [])
        for i, (path, kind) in enumerate(hooked):
            try:
                obj = resolver.resolve(path)
            except Exception:
                continue
            torch = _torch()
            if kind == "optimizer" and torch is not None and isinstance(obj, torch.optim.Optimizer):
                def pre(opt, a, k, i=i):
                    grads = [None if p.grad is None else enc.tensor(p.grad, with_grad_info=False)
                             for group in opt.param_groups for p in group["params"]]
                    self.events.append(("step_pre", i, grads))

                def post(opt, a, k, i=i):
                    self.events.append(("step_post", i))
                self.handles += [obj.register_step_pre_hook(pre), obj.register_step_post_hook(post)]
            elif kind == "module" and torch is not None and isinstance(obj, torch.nn.Module):
                def fwd(module, a, k, output, i=i):
                    enc.count = 0
                    self.events.append(("forward", i, enc(tuple(a)), enc(dict(k)), enc(output)))
                self.handles.append(obj.register_forward_hook(fwd, with_kwargs=True))

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _replay(events: list, hooked: list, dec: _Decoder) -> None:
    """In the grader: run the hooks of the checker's optimizers and modules for each recorded event, in order, with
    the checker's parameters' .grad set to what the sandbox's had at each step()."""
    torch = _torch()
    for ev in events[:100_000]:
        if not (isinstance(ev, tuple) and len(ev) >= 2 and isinstance(ev[1], int) and 0 <= ev[1] < len(hooked)):
            continue
        _, kind, obj = hooked[ev[1]]
        if ev[0] == "step_pre" and kind == "optimizer" and len(ev) == 3 and isinstance(ev[2], list):
            params = [p for group in obj.param_groups for p in group["params"]]
            if len(params) == len(ev[2]):
                for p, g in zip(params, ev[2]):
                    g = None if g is None else dec.tensor(g)
                    p.grad = None if g is None or g.shape != p.shape else g.to(p.dtype)
            for hook in list(obj._optimizer_step_pre_hooks.values()):
                hook(obj, (), {})
        elif ev[0] == "step_post" and kind == "optimizer":
            for hook in list(obj._optimizer_step_post_hooks.values()):
                hook(obj, (), {})
        elif ev[0] == "forward" and kind == "module" and len(ev) == 5:
            a, k, out = dec(ev[2]), dec(ev[3]), dec(ev[4])
            if not (isinstance(a, tuple) and isinstance(k, dict)):
                continue
            with_kwargs = getattr(obj, "_forward_hooks_with_kwargs", {})
            with torch.no_grad():
                for hid, hook in list(obj._forward_hooks.items()):
                    if with_kwargs.get(hid):
                        hook(obj, a, k, out)
                    else:
                        hook(obj, a, out)


def _parameters(fn) -> list:
    import inspect

    try:
        return [(p.name, int(p.kind), p.default is not inspect.Parameter.empty)
                for p in inspect.signature(fn).parameters.values()]
    except Exception:
        return []


def _signature(params):
    """The student's signature, rebuilt from names and kinds (Check.call names a modified input by it)."""
    import inspect

    try:
        out = [inspect.Parameter(str(n), inspect._ParameterKind(int(k)), **({"default": None} if d else {}))
               for n, k, d in params if str(n).isidentifier()]
        return inspect.Signature(out)
    except Exception:
        return None


class _PostImport:
    """A meta-path hook that runs actions on a module right after it is first imported (or now, if it is)."""

    def __init__(self):
        self.actions: dict[str, list] = {}

    def add(self, name: str, action) -> None:
        if name in sys.modules:
            action(sys.modules[name])
        else:
            self.actions.setdefault(name, []).append(action)

    def find_spec(self, name, path, target=None):
        if name not in self.actions:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader, actions = spec.loader, self.actions.pop(name)
        run = loader.exec_module

        def exec_module(module):
            run(module)
            for action in actions:
                action(module)

        loader.exec_module = exec_module
        return spec


def _disable_checkers(checking) -> None:
    def no_check(exercise):
        def deco(fn):
            def skipped(*a, **k):
                return None
            skipped.exercise = exercise
            return skipped
        return deco

    checking.checker = no_check


def _collect_param_ids(x, out: dict, depth=0) -> None:
    torch = _torch()
    if depth > 4:
        return
    if isinstance(x, torch.nn.Module):
        for n, p in x.named_parameters():
            out[(id(x), n)] = id(p)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _collect_param_ids(v, out, depth + 1)
    elif isinstance(x, dict):
        for v in x.values():
            _collect_param_ids(v, out, depth + 1)
    elif hasattr(x, "__dict__") and not isinstance(x, type) and not callable(x):
        for v in list(vars(x).values())[:200]:
            _collect_param_ids(v, out, depth + 1)


def _student_line(exc: BaseException) -> str:
    import traceback

    try:
        frames = traceback.extract_tb(exc.__traceback__)
    except Exception:
        return ""
    here = os.path.dirname(os.path.abspath(__file__))
    for fr in reversed(frames):
        f = fr.filename
        if f.startswith(here) or "site-packages" in f or "/lib/python" in f or f.startswith(os.path.dirname(here)):
            continue
        return f" (line {fr.lineno}: {fr.line.strip()})" if fr.line else f" (line {fr.lineno})"
    return ""


def _short_traceback(show):
    def showtraceback(*a, **k):
        try:
            show(*a, **k)
        except Exception:
            pass
    return showtraceback


def _set_limits(lim: dict, unsafe: bool) -> None:
    mb = 1 << 20
    wanted = {
        resource.RLIMIT_AS: lim["memory_mb"] * mb,
        resource.RLIMIT_CPU: lim["cpu_seconds"],
        resource.RLIMIT_FSIZE: lim["disk_mb"] * mb,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 256,
    }
    if not unsafe:  # counted per user: in the sandbox's own user namespace that is the sandbox
        wanted[resource.RLIMIT_NPROC] = lim["processes"]
    for k, v in wanted.items():
        soft, hard = resource.getrlimit(k)
        v = v if hard == resource.RLIM_INFINITY else min(v, hard)
        try:
            resource.setrlimit(k, (v, v))
        except (ValueError, OSError):
            pass


_SERVER: _Server | None = None


def _callback_stub(k: int):
    """In the sandbox: a checker's callable, called back in the grader."""
    server = _SERVER

    def call_back(*a, **kw):
        enc = _Encoder({}, [])
        server.send(("callback", k, enc(a), enc(kw)))
        msg = server.recv()
        if msg[0] == "callback_result":
            return pickle.loads(msg[1])
        import builtins

        cls = getattr(builtins, str(msg[1]), None)
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            cls = RuntimeError
        raise cls(msg[2])

    return call_back


def main(argv: list[str]) -> None:
    global _SERVER
    req, resp, intr = (int(a) for a in argv[:3])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _SERVER = _Server(req, resp, intr)
    _SERVER.loop()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
