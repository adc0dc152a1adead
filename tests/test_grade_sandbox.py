"""The sandbox's proxy as the checkers see it (one sandbox for the module): every checker passes the course's
solutions and fails the silent mistakes through it exactly as it would locally (gradients, in-place updates,
modified inputs, exceptions); a build-it `update(model, opt, batch, cfg)` mutates the checker's own model and
optimizer; and the command line refuses nonsense before grading anything."""
from __future__ import annotations

import ast
import copy
import csv
import importlib
import inspect
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import pytest
import torch

from lecturekit.course import authoring, checks, grade
from lecturekit.course import sandbox as sb
from lecturekit.course.checking import CheckFailed

ROOT = authoring.ROOT
CHECKERS = [n[len("check_"):] for n in checks.__all__ if n.startswith("check_")]


def test_every_checker_says_what_it_blocks():
    assert set(CHECKERS) <= set(sb.REFERENCES), set(CHECKERS) - set(sb.REFERENCES)
    for exercise, names in sb.REFERENCES.items():
        assert names, exercise
        for q in names:
            module, attr = q.rsplit(".", 1)
            assert callable(getattr(importlib.import_module(module), attr)), q


def _solution_definitions() -> list[str]:
    """The imports, functions and classes of the solution notebooks' cells (their other statements left out: checks,
    training runs, plots), after the imports that the notebooks' set-up cells would have made."""
    out = ["import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
           "from lecturekit import optim\n"]
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    cells = [cell for p in sorted((ROOT / "solutions").glob("ex*.py"))
             for cell in re.split(r"^# %%.*$", p.read_text(), flags=re.M)]
    defined = set()  # a later notebook's import of a reference must not shadow an earlier notebook's solution
    for cell in cells:
        try:
            defined |= {n.name for n in ast.parse(cell).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        except SyntaxError:
            pass
    for cell in cells:
        try:
            nodes = [n for n in ast.parse(cell).body if isinstance(n, keep) or (  # and constants like LOG_2PI
                isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in n.targets)
                and {m.id for m in ast.walk(n.value) if isinstance(m, ast.Name)} <= {"math", "np", "torch"})]
        except SyntaxError:  # a Markdown cell
            continue
        for n in nodes:
            if isinstance(n, ast.ImportFrom):
                n.names = [a for a in n.names if (a.asname or a.name) not in defined] or n.names
        nodes = [n for n in nodes if not (isinstance(n, ast.ImportFrom)
                                          and all((a.asname or a.name) in defined for a in n.names))]
        if any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Assign)) for n in nodes):
            out.append(ast.unparse(ast.Module(body=nodes, type_ignores=[])) + "\n")
    return out


WRONG = {
    "reinforce_loss_detached": "def reinforce_loss_detached(log_probs, returns, baseline=None):\n"
                               "    b = 0.0 if baseline is None else baseline\n"
                               "    return -(log_probs.detach() * (returns - b)).mean()\n",
    "td3_target_attached": "def td3_target_attached(reward, terminated, next_q1, next_q2, gamma):\n"
                           "    return reward + gamma * (1 - terminated) * torch.min(next_q1, next_q2)\n",
    "polyak_new_params": "def polyak_new_params(target, source, tau):\n"
                         "    for (name, p), q in zip(list(target.named_parameters()), source.parameters()):\n"
                         "        owner = target.get_submodule(name.rpartition('.')[0]) if '.' in name else target\n"
                         "        setattr(owner, name.rpartition('.')[2], torch.nn.Parameter("
                         "(tau * q + (1 - tau) * p).detach()))\n",
    "polyak_on_source": "def polyak_on_source(target, source, tau):\n"
                        "    with torch.no_grad():\n"
                        "        for p, q in zip(target.parameters(), source.parameters()):\n"
                        "            q.mul_(tau).add_((1 - tau) * p)\n"
                        "            p.copy_(q)\n",
    "kl_in_place": "def kl_in_place(logits_p, logits_q):\n"
                   "    logits_p -= logits_p.max(-1, keepdim=True).values\n"
                   "    return kl_categorical(logits_p, logits_q)\n",
    "gae_raises": "def gae_raises(rewards, values, terminated, last_value, gamma, lam):\n"
                  "    x = 1\n"
                  "    raise ValueError('no luck')\n",
    "update": "def update(model, opt, batch, cfg, gen):\n"
              "    idx = torch.randperm(batch.obs.shape[0], generator=gen)[: cfg.batch]\n"
              "    loss = ((model(batch.obs[idx]).squeeze(-1) - batch.target[idx]) ** 2).mean()\n"
              "    opt.zero_grad()\n    loss.backward()\n    opt.step()\n"
              "    batch.seen.append(int(idx[0]))\n"
              "    return {'loss': loss.item(), 'first': idx[:3]}\n",
    "td3_online_critic_target": "from lecturekit.course.checks.td3 import _td3_reference\n"
                                "def td3_online_critic_target(agent, batch, step, noise):\n"
                                "    return _td3_reference(agent, batch, step, noise, bugs=('online_critic_target',))\n",
    "forward_and_step": "def forward_and_step(net, x, opt):\n"
                        "    opt.zero_grad()\n    net(x).sum().backward()\n    opt.step()\n"
                        "    return net(2 * x), lambda y: net(y).sum().item()\n",
}


@pytest.fixture(scope="module")
def box():
    references = sorted({q for v in sb.REFERENCES.values() for q in v})
    b = sb.Sandbox(references)
    for cell in _solution_definitions() + list(WRONG.values()):
        assert b.run_cell(cell, 120) is None, cell[:200]
    yield b
    b.close()


def _no_zero_grad() -> str:
    """The solution's a2c_update without its opt.zero_grad(): a build-it mistake with a message of its own."""
    src = (ROOT / "solutions" / "ex03_actor_critic.py").read_text()
    fn = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == "a2c_update")
    text = ast.get_source_segment(src, fn)
    assert "    opt.zero_grad()\n" in text
    return text.replace("def a2c_update(", "def a2c_no_zero_grad(").replace("    opt.zero_grad()\n", "")


WRONG["a2c_no_zero_grad"] = _no_zero_grad()


def _check(box, exercise: str, name: str | None = None):
    """The checker on the proxy.  A build-it checker's training layer (`train=True`, thousands of updates, one round
    trip each: about 55 ms per TD3 update, 250 s for check_td3_update) is left out: its one-update layers are what
    the proxy has to get right."""
    assert box.begin(name or exercise)
    check = getattr(checks, f"check_{exercise}")
    kw = {"train": False} if "train" in inspect.signature(check).parameters else {}
    check(box.proxy(name or exercise, sb.REFERENCES[exercise], time.monotonic() + 60), **kw)


@pytest.mark.sandbox
@pytest.mark.parametrize("exercise", CHECKERS)
def test_the_solutions_pass_through_the_proxy(box, exercise):
    _check(box, exercise)


@pytest.mark.sandbox
@pytest.mark.parametrize("exercise, name, says", [
    ("reinforce_loss", "reinforce_loss_detached", "depends on log_probs"),          # autograd reaches the sandbox
    ("td3_target", "td3_target_attached", "carries a gradient"),                    # requires_grad comes back
    ("polyak_update", "polyak_new_params", "new Parameter object"),                 # replaced parameters come back
    ("polyak_update", "polyak_on_source", "changed the SOURCE"),                    # every argument's state comes back
    ("kl_categorical", "kl_in_place", "modified its input"),                        # ... so Check.call sees mutation
    ("gae", "gae_raises", "ValueError: no luck (line 3: raise ValueError('no luck'))"),
    ("a2c_update", "a2c_no_zero_grad", "zero_grad"),  # the optimizer's steps are replayed on the checker's hooks
    ("td3_update", "td3_online_critic_target", "uses the online critics"),  # ... and the networks' forward calls
])
def test_silent_mistakes_fail_through_the_proxy(box, exercise, name, says):
    with pytest.raises(CheckFailed) as e:
        _check(box, exercise, name)
    assert says in str(e.value), str(e.value)


@pytest.mark.sandbox
def test_a_build_it_update_changes_the_checkers_model_and_optimizer(box):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    batch = types.SimpleNamespace(obs=torch.randn(16, 3), target=torch.randn(16), seen=[])
    cfg = types.SimpleNamespace(batch=8)
    gen = torch.Generator().manual_seed(3)
    here = (copy.deepcopy(model), None, copy.deepcopy(batch), cfg, torch.Generator().manual_seed(3))
    here = (here[0], torch.optim.Adam(here[0].parameters(), lr=0.1), *here[2:])
    ids = [id(p) for p in model.parameters()]
    assert box.begin("update")
    proxy = box.proxy("update", [], time.monotonic() + 60)
    for _ in range(3):
        got = proxy(model, opt, batch, cfg, gen)
        ns: dict = {"torch": torch}
        exec(WRONG["update"], ns)
        want = ns["update"](*here)
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-6) and torch.equal(got["first"], want["first"])
    assert [id(p) for p in model.parameters()] == ids  # the checker's own parameters, updated in place
    for p, q in zip(model.parameters(), here[0].parameters()):
        assert torch.allclose(p, q, atol=1e-6) and torch.allclose(p.grad, q.grad, atol=1e-6)
    s, t = opt.state_dict(), here[1].state_dict()
    for k in s["state"]:
        assert torch.allclose(s["state"][k]["exp_avg"], t["state"][k]["exp_avg"], atol=1e-6)
    assert batch.seen == here[2].seen and torch.equal(gen.get_state(), here[4].get_state())


# -- the command line -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, says", [
    (["--timeout", "0"], "--timeout must be a positive number"),
    (["--timeout", "nan"], "--timeout must be a positive number"),
    (["--cell-timeout", "-5"], "--cell-timeout must be a positive number"),
    (["--jobs", "0"], "--jobs must be between 1 and 256"),
    (["--csv", "/proc/no/such/grades.csv"], "cannot write the results"),
])
def test_nonsense_is_a_usage_error(tmp_path, capsys, flags, says, monkeypatch):
    started = []
    monkeypatch.setattr(sb.Sandbox, "__init__", lambda *a, **k: started.append(1) or (_ for _ in ()).throw(
        AssertionError("no sandbox may start")))
    (tmp_path / "a_ex00.ipynb").write_text("{}")
    assert grade.main([str(tmp_path), *flags]) == 2
    assert says in capsys.readouterr().err and not started


def test_without_bubblewrap_grade_refuses_unless_unsafe(tmp_path, capsys, monkeypatch):
    nb = ROOT / "solutions" / "ex00_discounted_returns.ipynb"
    (tmp_path / "alice_ex00.ipynb").write_bytes(nb.read_bytes())
    monkeypatch.setattr(sb, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    assert grade.main([str(tmp_path), "--csv", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert "bubblewrap (bwrap) is not installed" in err and "--unsafe" in err and "make grade-deps" in err
    assert grade.main([str(tmp_path), "--csv", str(tmp_path / "g.csv"), "--unsafe", "--quiet"]) == 0
    with open(tmp_path / "g.csv") as f:
        assert [(r["student"], r["result"]) for r in csv.DictReader(f)] == [("alice", "passed")]


@pytest.mark.sandbox
def test_ctrl_c_keeps_every_row_so_far(tmp_path):
    sol = nbformat.read(ROOT / "solutions" / "ex00_discounted_returns.ipynb", as_version=4)
    nbformat.write(sol, tmp_path / "a_ex00.ipynb")
    stuck = copy.deepcopy(sol)
    stuck.cells.insert(1, nbformat.v4.new_code_cell(
        "import subprocess\nsubprocess.Popen(['/bin/sh', '-c', 'sleep 600', 'lk-ctrl-c-9d2'])\nwhile True:\n    pass"))
    nbformat.write(stuck, tmp_path / "b_ex00.ipynb")
    out = tmp_path / "g.csv"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "lecturekit", "grade", str(tmp_path), "--csv", str(out),
                          "--cell-timeout", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and "a," in out.read_text()):
        time.sleep(0.3)
    time.sleep(2)  # b is looping now
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    with open(out) as f:
        assert [(r["student"], r["result"]) for r in csv.DictReader(f)][:1] == [("a", "passed")]
    assert b"interrupted" in stderr and b"a: 1/1 passed" in stdout
    time.sleep(1)
    alive = [d for d in Path("/proc").iterdir() if d.name.isdigit() and _has(d, b"lk-ctrl-c-9d2")]
    assert not alive


def _has(d: Path, mark: bytes) -> bool:
    try:
        return mark in (d / "cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.sandbox
def test_the_checkers_hooks_see_the_sandboxs_forward_calls_and_steps_and_returned_functions_call_back(box):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(5, 3)
    here = copy.deepcopy(net)
    here(x).sum().backward()
    calls, seen = [], []
    net[2].register_forward_hook(lambda m, a, out: calls.append(a[0].shape))
    net.register_forward_hook(lambda m, a, k, out: calls.append(a[0].clone()), with_kwargs=True)
    opt.register_step_pre_hook(lambda o, a, k: seen.append([p.grad.clone() for p in net.parameters()]))
    assert box.begin("forward_and_step")
    out, fn = box.proxy("forward_and_step", [], time.monotonic() + 60)(net, x, opt)
    assert [c if isinstance(c, torch.Size) else None for c in calls] == [torch.Size([5, 4]), None] * 2  # in order
    assert torch.equal(calls[1], x) and torch.equal(calls[3], 2 * x)
    assert len(seen) == 1 and all(torch.allclose(g, p.grad) for g, p in zip(seen[0], here.parameters()))
    assert fn(x) == pytest.approx(net(x).sum().item(), rel=1e-6)  # a returned function runs in the sandbox
