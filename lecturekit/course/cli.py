"""Command line: `python -m lecturekit train|bench|grade ...`.  See `python -m lecturekit --help`.

`train ALGO` takes every field of ALGO's Config as an option (`--clip-eps 0.1`, `--hidden 32 32`,
`--no-normalize-adv`; `--set clip_eps=0.1` is the same) and the run options of `evaluation.Run` (`--steps`, `--seed`,
`--target`, `--eval-every`, `--eval-episodes`); `train ALGO --help` lists them all with their defaults and the
one-line comment each has in the source.  The algorithm list, the run options and most mistakes are handled before
torch or Gymnasium is imported, so they answer at once; the Config (and with it torch) is imported only when needed.

At the edges: a mistake in the command line is one line on stderr and exit status 2; Ctrl-C during `train` prints
the JSON line of the run so far (`"stopped": "user"`) and exits with 130; a closed pipe (`| head -1`) ends quietly.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import inspect
import io
import json
import math
import os
import platform
import signal
import statistics
import sys
import textwrap
import threading
import time
import tokenize
import typing

from lecturekit.algos import CATALOG, CONFIRM_EVALS, Algo, call_train, check_name, get, names

PROG = "python -m lecturekit"


class UsageError(Exception):
    """A mistake in the command line: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake raises UsageError (one line) instead of printing the usage block."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # generated options: --lr must not silently mean --lr-decay
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


# -- reading a Config dataclass -----------------------------------------------------------------------------------
def field_comments(cls: type) -> dict[str, str]:
    """The comment after each field of a dataclass (`lr: float = 3e-3  # Adam step size`), read from its source and
    its base classes' (a field's `metadata["help"]` wins).  {} where the source cannot be found."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            out.update(_source_comments(klass))
    out.update({f.name: f.metadata["help"] for f in dataclasses.fields(cls) if "help" in f.metadata})
    return out


def _source_comments(klass: type) -> dict[str, str]:
    try:
        src = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    tokens = list(tokenize.generate_tokens(io.StringIO(src).readline))
    out, depth, field, line_start = {}, 0, None, True
    for tok, nxt in zip(tokens, tokens[1:]):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.NEWLINE:
            field, line_start = None, True
        elif tok.type == tokenize.COMMENT:
            if field is not None and not line_start:
                out.setdefault(field, tok.string.lstrip("#").strip())
        elif tok.type != tokenize.NL:
            # a field is a line of the class body (depth 1) that starts with `name :`
            if line_start and depth == 1 and tok.type == tokenize.NAME and nxt.string == ":":
                field = tok.string
            line_start = False
    return out


@dataclasses.dataclass
class FieldOption:
    """How one Config field is read from the command line."""

    name: str
    kind: str                  # "bool", "tuple", "value" (int, float, str, optionally None) or "json"
    convert: typing.Callable   # one command-line word -> a value (for "tuple": one element)
    default: typing.Any
    comment: str
    metavar: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def from_string(self, raw: str):
        """The value of `--set name=raw`."""
        if self.kind == "bool":
            return parse_bool(raw)
        if self.kind == "tuple":
            return tuple(self.convert(x) for x in raw.replace(",", " ").split())
        return self.convert(raw)


def parse_bool(raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError(raw)


def number(kind: type) -> typing.Callable[[str], typing.Any]:
    """int or float from a word; ints may be written 1e5 or 100_000, floats inf or 3e-4."""

    def convert(raw: str):
        if kind is float:
            return float(raw)
        try:
            return int(raw)
        except ValueError:
            x = float(raw)
            if not x.is_integer():
                raise
            return int(x)

    convert.__name__ = kind.__name__  # argparse says "invalid int value: '0.5'"
    return convert


def optional(convert: typing.Callable) -> typing.Callable:
    def convert_or_none(raw: str):
        return None if raw.lower() in ("none", "null") else convert(raw)

    convert_or_none.__name__ = convert.__name__
    return convert_or_none


def field_options(config_cls: type) -> list[FieldOption]:
    """One FieldOption per init field of a Config dataclass, typed from its annotation (or its default)."""
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # an annotation that does not evaluate: fall back on the defaults' types
        hints = {}
    comments = field_comments(config_cls)
    options = []
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        hint = hints.get(f.name, type(default))
        args = typing.get_args(hint)
        can_be_none = type(None) in args
        if can_be_none:
            hint = next((a for a in args if a is not type(None)), type(None))
        origin = typing.get_origin(hint) or hint
        comment = comments.get(f.name, "")
        if origin is bool:
            options.append(FieldOption(f.name, "bool", parse_bool, default, comment))
        elif origin is tuple:
            elems = [a for a in typing.get_args(hint) if a is not Ellipsis]
            elem = elems[0] if elems else (type(default[0]) if default else int)
            conv = number(elem) if elem in (int, float) else elem
            options.append(FieldOption(f.name, "tuple", conv, default, comment, elem.__name__.upper()))
        elif origin in (int, float, str):
            conv = number(origin) if origin in (int, float) else str
            conv = optional(conv) if can_be_none else conv
            metavar = origin.__name__.upper() + ("|none" if can_be_none else "")
            options.append(FieldOption(f.name, "value", conv, default, comment, metavar))
        else:
            options.append(FieldOption(f.name, "json", json.loads, default, comment, "JSON"))
    return options


class _TupleAction(argparse.Action):
    """`--hidden 32 32` or `--hidden 32,32` -> (32, 32); `--hidden` alone -> ()."""

    def __init__(self, *args, convert=None, **kwargs):
        self.convert = convert
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        words = " ".join(values).replace(",", " ").split()
        try:
            setattr(namespace, self.dest, tuple(self.convert(w) for w in words))
        except ValueError:
            parser.error(f"argument {option_string}: cannot read '{' '.join(values)}' as {self.metavar} values")


def _help(text: str, default) -> str:
    shown = "none" if default is None else " ".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})".replace("%", "%%").strip()


def add_config_options(parser: argparse.ArgumentParser, config_cls: type, title: str) -> list[FieldOption]:
    """An option for every field of `config_cls`; unset options stay out of the namespace (the Config's defaults)."""
    group = parser.add_argument_group(title)
    options = field_options(config_cls)
    for o in options:
        common = {"dest": f"cfg.{o.name}", "default": argparse.SUPPRESS, "help": _help(o.comment, o.default)}
        if o.kind == "bool":
            group.add_argument(o.flag, action=argparse.BooleanOptionalAction, **common)
        elif o.kind == "tuple":
            group.add_argument(o.flag, nargs="*", action=_TupleAction, convert=o.convert, metavar=o.metavar,
                               **common)
        else:
            group.add_argument(o.flag, type=o.convert, metavar=o.metavar, **common)
    return options


def make_config(config_cls: type, options: dict | None = None, pairs: list[str] = (), label: str = ""):
    """The Config with the given options (field -> value) and `--set field=value` pairs over its defaults."""
    label = label or config_cls.__qualname__
    by_name = {o.name: o for o in field_options(config_cls)}
    changes = dict(options or {})
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects field=value, got '{pair}'")
        key, raw = pair.split("=", 1)
        if key not in by_name:
            raise UsageError(f"{label} has no field '{key}'. Fields: {', '.join(by_name)}")
        try:
            changes[key] = by_name[key].from_string(raw)
        except ValueError:
            raise UsageError(f"cannot read '{raw}' as a value for {key} (default {by_name[key].default!r})") from None
    try:
        return config_cls(**changes)
    except (ValueError, TypeError) as e:  # a Config's own validation (__post_init__)
        raise UsageError(f"{label}: {e}") from None


def parse_overrides(config_cls: type, pairs: list[str]):
    """Config from `field=value` strings (`--set`), each value read as the field's type."""
    return make_config(config_cls, pairs=pairs)


# -- run options ----------------------------------------------------------------------------------------------
def positive_int(raw: str) -> int:
    try:
        value = number(int)(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{raw}'")
    return value


def non_negative_int(raw: str) -> int:
    try:
        value = number(int)(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got '{raw}'")
    return value


def finite_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got '{raw}'")
    return value


# The options of `evaluation.Run`, typed here so that a mistake is reported before torch is imported; the defaults
# and descriptions are Run's own (shown by `train ALGO --help`).
RUN_OPTIONS = {"steps": (positive_int, "N"), "seed": (number(int), "N"), "target": (finite_float, "RETURN"),
               "eval_every": (positive_int, "N"), "eval_episodes": (positive_int, "N"),
               "confirm_evals": (non_negative_int, "K")}


def add_train_arguments(p: argparse.ArgumentParser, algo: Algo | None = None) -> None:
    """The `train` command's arguments; with `algo`, also its Config's fields and the defaults of the run options."""
    p.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    p.add_argument("algo", nargs="?", metavar="ALGO",
                   help=argparse.SUPPRESS if algo else f"the algorithm ({PROG} --help lists them)")
    env_default = f" (default: {algo.bench_env}, its benchmark task)" if algo else " (default: ALGO's benchmark task)"
    p.add_argument("--env", help="Gymnasium environment id" + env_default)
    run_fields, run_comments = {}, {}
    if algo is not None:  # only now is torch imported anyway
        from lecturekit.evaluation import Run

        run_fields = {f.name: f.default for f in dataclasses.fields(Run)}
        run_comments = field_comments(Run)
    group = p.add_argument_group("run options (lecturekit.evaluation.Run)")
    for name, (convert, metavar) in RUN_OPTIONS.items():
        text = run_comments.get(name, "")
        group.add_argument("--" + name.replace("_", "-"), type=convert, default=argparse.SUPPRESS, dest=f"run.{name}",
                           metavar=metavar, help=_help(text, run_fields[name]) if algo is not None else None)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="set a Config field (the same as --field value)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


# -- training -----------------------------------------------------------------------------------------------------
def stderr_progress(event: dict) -> None:
    """One line of progress per evaluation, on stderr."""
    print(
        f"  step {event['env_steps']:>8d}/{event['total_steps']}  eval {event['eval_mean']:9.2f} "
        f"± {event['eval_std']:7.2f}  {event['wall_s']:7.2f}s",
        file=sys.stderr,
        flush=True,
    )


def train_one(algo: Algo, env: str, cfg, run):
    """One training run of `algo` on one torch thread (LECTUREKIT_THREADS to change it)."""
    import torch

    torch.set_num_threads(int(os.environ.get("LECTUREKIT_THREADS", "1")))
    return call_train(algo.train, env, cfg, run)


# What to install for the Gymnasium environments whose packages are optional, by the module of their entry point.
INSTALL = {"gymnasium.envs.box2d": "pip install box2d==2.3.10", "gymnasium.envs.mujoco": "pip install mujoco",
           "ale_py": "pip install ale-py"}


def check_env(env_id: str) -> None:
    """UsageError (one line) for an unknown environment id, or one whose package is not installed."""
    import gymnasium as gym

    from lecturekit.envs import check_env_id

    try:
        check_env_id(env_id)
    except ValueError as e:
        raise UsageError(str(e)) from None
    entry = gym.spec(env_id).entry_point
    try:
        if isinstance(entry, str):  # importing the environment's module is what fails when its package is missing
            gym.envs.registration.load_env_creator(entry)
    except (gym.error.DependencyNotInstalled, ImportError) as e:
        raise UsageError(missing_dependency(env_id, str(entry), e)) from None


def missing_dependency(env_id: str, entry_point: str, error: Exception) -> str:
    """One line: which package `env_id` lacks and, where known, the command that installs it."""
    what = (str(error).splitlines() or [type(error).__name__])[0]
    hint = next((cmd for module, cmd in INSTALL.items() if entry_point.startswith(module)), None)
    if hint:  # Gymnasium's own advice (pip install swig, gymnasium[box2d]) builds from source; this wheel does not
        return f"{env_id} needs a package that is not installed ({what.split(',')[0]}): {hint}"
    return f"{env_id} needs a package that is not installed: {what}"


def history_so_far(algo: str, env: str, cfg, run, events: list[dict], wall_s: float):
    """The History of a run stopped by Ctrl-C, from the evaluations its callback saw (the Monitor's own History
    stays inside `train`, which the interrupt left)."""
    from lecturekit.evaluation import History, solved_marks

    evals = [(int(e["env_steps"]), float(e["wall_s"]), float(e["eval_mean"]), float(e["eval_std"])) for e in events]
    return History(algo=algo, env=env, seed=run.seed, config=dataclasses.asdict(cfg), evals=evals, target=run.target,
                   env_steps=evals[-1][0] if evals else 0, wall_s=wall_s, stopped="user",
                   confirm_evals=run.confirm_evals, **solved_marks(evals, run.target, run.confirm_evals))


@contextlib.contextmanager
def ctrl_c_for_this_process_only():
    """While inside, Ctrl-C raises KeyboardInterrupt in this process only: worker processes forked during training
    (A3C) inherit the handler and keep going until this process stops them (a terminal sends Ctrl-C to every
    process of the job).  The previous handler is restored on the way out."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    me, previous = os.getpid(), signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if os.getpid() == me:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_train(args, options: dict) -> int:
    from lecturekit.evaluation import Run, TrainingDiverged

    algo = get_algo(args.algo)
    cfg = make_config(algo.config, options["cfg"], args.set, label=f"{algo.name}'s {algo.config.__qualname__}")
    env = args.env or algo.bench_env
    check_env(env)
    events: list[dict] = []

    def progress(event: dict) -> None:
        events.append(event)
        if not args.quiet:
            stderr_progress(event)

    try:
        run = Run(**options["run"], callback=progress)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"training {algo.name} on {env}, seed {run.seed}, up to {run.steps} steps", file=sys.stderr)
    start = time.perf_counter()
    try:
        hist = train_one(algo, env, cfg, run)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the summary short
        hist = history_so_far(algo.name, env, cfg, run, events, time.perf_counter() - start)
        print(f"stopped by Ctrl-C after {hist.env_steps} env steps", file=sys.stderr)
        print(json.dumps(hist.summary()), flush=True)
        return 130
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # e.g. an algorithm that does not support this action space
        raise UsageError(str(e)) from None
    print(json.dumps(hist.summary()))
    return 0


# -- benchmark ------------------------------------------------------------------------------------------------------
def bench_rows(results: list[dict]) -> list[dict]:
    """Aggregate per-seed results (`History.summary()`s) into one row per algorithm: seeds solved and still solved,
    median and worst steps and seconds to the first evaluation at the target and to being solved for good (the
    rule of `lecturekit.evaluation.History`).  A seed that never got there counts as infinitely slow."""
    rows = []
    inf = float("inf")
    for name in dict.fromkeys(r["algo"] for r in results):
        runs = [r for r in results if r["algo"] == name]
        row = {"algo": name, "env": runs[0]["env"], "target": runs[0]["target"],
               "solved": sum(bool(r["solved"]) for r in runs), "still_solved": sum(r.get("still_solved") is True
                                                                                   for r in runs),
               "confirm_evals": runs[0].get("confirm_evals", 0), "seeds": len(runs)}
        for prefix, key in (("", "solved_at"), ("good_", "solved_for_good_at")):
            steps = sorted(inf if r.get(f"{key}_steps") is None else r[f"{key}_steps"] for r in runs)
            secs = sorted(inf if r.get(f"{key}_s") is None else r[f"{key}_s"] for r in runs)
            row |= {f"{prefix}median_steps": statistics.median(steps), f"{prefix}worst_steps": steps[-1],
                    f"{prefix}median_s": statistics.median(secs), f"{prefix}worst_s": secs[-1]}
        rows.append(row)
    return rows


def fmt_number(x, digits: int = 0) -> str:
    """1,234 (digits=0) or 1.23 (digits=2); 'not reached' for None or infinity (an unsolved run)."""
    if x is None or (isinstance(x, (int, float)) and math.isinf(x)) or x in ("inf", "Infinity"):
        return "not reached"
    return f"{float(x):,.0f}" if digits == 0 else f"{float(x):.{digits}f}"


BENCH_COLUMNS = [
    ("algorithm", "algo"),
    ("task (target)", lambda r: f"{r['env']} ({r['target']:g})"),
    ("seeds solved", lambda r: f"{r['solved']}/{r['seeds']}"),
    ("still solved", lambda r: f"{r.get('still_solved', 0)}/{r['seeds']}"),
    ("median steps", lambda r: fmt_number(r["median_steps"])),
    ("worst steps", lambda r: fmt_number(r["worst_steps"])),
    ("median s", lambda r: fmt_number(r["median_s"], 2)),
    ("worst s", lambda r: fmt_number(r["worst_s"], 2)),
    ("for good: median steps", lambda r: fmt_number(r.get("good_median_steps"))),
    ("for good: median s", lambda r: fmt_number(r.get("good_median_s"), 2)),
]


def markdown_table(rows: list[dict], columns: list | None = None) -> str:
    """rows as a Markdown table.  columns: [(header, key or function of a row)]; default: the benchmark's."""
    columns = columns or BENCH_COLUMNS
    cell = lambda r, get: str(get(r) if callable(get) else r[get])  # noqa: E731
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, get) for _, get in columns) + " |" for r in rows]
    return "\n".join(lines)


def bench_one(algo: Algo, seed: int) -> dict:
    """The summary of one benchmark run (a diverged run counts as not solved)."""
    from lecturekit.evaluation import TrainingDiverged

    try:
        summary = train_one(algo, algo.bench_env, algo.config(), algo.bench_run(seed)).summary()
    except TrainingDiverged as e:
        summary = {"algo": algo.name, "env": algo.bench_env, "seed": seed, "solved": False, "solved_at_steps": None,
                   "solved_at_s": None, "still_solved": False, "solved_for_good_at_steps": None,
                   "solved_for_good_at_s": None, "error": str(e)}
    summary["target"] = algo.bench_target
    return summary


def cmd_bench(args) -> int:
    for name in args.algos:  # every name checked before the first import
        _check_algo(name)
    algos = [get_algo(n) for n in (args.algos or names())]
    results = []
    try:
        if args.cluster:  # each run a task on a Dask cluster (lecturekit.course.cluster); a line as each one ends
            from lecturekit.course import cluster
            try:
                results = cluster.bench(args.cluster, algos, args.seeds, log=cluster.stderr_log)
            except cluster.ClusterError as e:
                raise UsageError(str(e)) from None
        else:
            for algo in algos:
                for seed in range(args.seeds):
                    results.append(r := bench_one(algo, seed))
                    print(f"  {algo.name} seed {seed}: solved={r['solved']} steps={r.get('solved_at_steps')} "
                          f"s={r.get('solved_at_s')}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # the finished runs are still worth a table (not written to --out: it is partial)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"stopped by Ctrl-C after {len(results)} run(s)", file=sys.stderr)
        print(markdown_table(bench_rows(results)), flush=True)
        return 130
    rows = bench_rows(results)
    table = markdown_table(rows)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                "python": platform.python_version(), "seeds": args.seeds, "confirm_evals": CONFIRM_EVALS}
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows, "runs": results}, f, indent=1, default=str)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(f"Measured {meta['date']} on {meta['machine']}, {args.seeds} seeds, one torch thread; "
                    "seconds are training time including evaluation.  Still solved: the "
                    f"{CONFIRM_EVALS} evaluations after the first one at the target reach it too; for good: from "
                    "that evaluation on, every later one of the run does.\n\n" + table + "\n")
    return 0


def _check_algo(name: str) -> None:
    try:
        check_name(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def get_algo(name: str) -> Algo:
    _check_algo(name)
    return get(name)


# -- the parsers ----------------------------------------------------------------------------------------------------
def algorithm_listing() -> str:
    return "algorithms:\n" + "\n".join(f"  {n:<18} {CATALOG[n][1]}" for n in names())


def build_parser() -> Parser:
    """The command line without any algorithm's Config (imports neither torch nor Gymnasium)."""
    p = Parser(prog=PROG,
               description="Train and benchmark the course's policy-gradient algorithms; grade exercise notebooks.",
               epilog=algorithm_listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,bench,grade}")
    t = sub.add_parser("train", help="train one algorithm on one environment", add_help=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=algorithm_listing() + f"\n\n`{PROG} train ALGO --help` lists ALGO's Config fields and "
                       "the run options with their defaults.")
    add_train_arguments(t)
    p.train_help = t.print_help
    b = sub.add_parser("bench", help="run algorithms on their benchmark tasks over several seeds")
    b.add_argument("algos", nargs="*", help="algorithms (default: all)")
    b.add_argument("--seeds", type=positive_int, default=5, help="seeds 0..N-1 of each algorithm (default 5)")
    b.add_argument("--out", default=None, help="folder for results.json and results.md")
    b.add_argument("--cluster", metavar="ADDRESS", default=None, help="run each (algorithm, seed) as a task on this "
                   "Dask scheduler (tcp://host:8786, or a scheduler file)")
    g = sub.add_parser("grade", help="run filled-in exercise notebooks and report every exercise's result")
    g.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, or folders of them (one sub-folder per "
                   "student, or files named like alice_ex00_discounted_returns.ipynb)")
    g.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default 300)")
    g.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default 120)")
    g.add_argument("--csv", default="grades.csv", help="write the rows here too (default grades.csv; '' for none)")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at the same time (default 1)")
    g.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def train_parser(algo: Algo) -> Parser:
    """`train ALGO` with every field of ALGO's Config as an option (imports the algorithm, and torch)."""
    cfg = algo.config
    p = Parser(prog=f"{PROG} train {algo.name}", add_help=False, usage=f"%(prog)s [options]",
               description=f"{algo.name}: {algo.summary}", formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=f"Config fields are those of {cfg.__module__}.{cfg.__qualname__}; the defaults solve "
                      f"{algo.bench_env}.  Prints one JSON line (the run's summary) on stdout.")
    add_train_arguments(p, algo)
    add_config_options(p, cfg, f"{cfg.__qualname__} fields ({cfg.__module__})")
    return p


def _grouped(ns: argparse.Namespace) -> dict:
    """Split `cfg.x` and `run.x` destinations out of a namespace."""
    out: dict = {"cfg": {}, "run": {}}
    for key, value in list(vars(ns).items()):
        if "." in key:
            group, name = key.split(".", 1)
            out[group][name] = value
            delattr(ns, key)
    return out


def _unexpected(word: str, algo_name: str) -> str:
    return f"unexpected argument '{word}' (see {PROG} train {algo_name} --help)"


def _unknown(extras: list[str], algo: Algo) -> str:
    word = extras[0]
    if not word.startswith("-"):
        return _unexpected(word, algo.name)
    field = word.lstrip("-").split("=")[0].replace("-", "_")
    fields = ", ".join(o.name for o in field_options(algo.config))
    return (f"{algo.name}'s {algo.config.__qualname__} has no field '{field}', nor is it a run option. "
            f"Fields: {fields} (see {PROG} train {algo.name} --help)")


def dispatch(argv: list[str]) -> int:
    if argv[:1] == ["grade"]:  # grade owns its options: lecturekit.course.grade.main
        from lecturekit.course import grade

        return grade.main(argv[1:])
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if args.command != "train":
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return cmd_bench(args)
    if args.algo is None:
        if args.help:
            parser.train_help()
            return 0
        raise UsageError(f"train needs an algorithm: one of {', '.join(names())} (see {PROG} train --help)")
    _check_algo(args.algo)
    if not args.help:  # the errors that need no Config, said before importing the algorithm (and torch: about 1 s)
        if extras and not extras[0].startswith("-"):  # a word no option takes: the full parser leaves it first too
            raise UsageError(_unexpected(extras[0], args.algo))
        if args.env and not extras and not args.set:  # else the full path reports those first, as before
            check_env(args.env)
    algo = get(args.algo)
    full = train_parser(algo)
    args, extras = full.parse_known_args(argv[argv.index("train") + 1:])
    if args.help:
        full.print_help()
        return 0
    if extras:
        raise UsageError(_unknown(extras, algo))
    return cmd_train(args, _grouped(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with ctrl_c_for_this_process_only():
            return dispatch(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside training (while importing, benchmarking, grading)
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not complain either
        os.dup2(devnull, sys.stderr.fileno())
        return 141  # what a shell reports for a program ended by SIGPIPE
