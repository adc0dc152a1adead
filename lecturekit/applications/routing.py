"""Policy gradients for a combinatorial action: building a travelling-salesman tour city by city.

Lecture: "Policy Gradients for Combinatorial Actions" (the action is a whole tour, one of (n-1)! / 2; a Q-function
over all of them is hopeless, but a policy can *sample* a tour step by step) and "REINFORCE Algorithm".

- `random_instances`: random Euclidean instances (cities uniform in the unit square).
- `held_karp`: the exact optimum by the Held-Karp dynamic program, O(2^n n^2), batched over instances.
- `PointerPolicy`: a small attention encoder and a pointer decoder. The tour starts at city 0; at every step the
  decoder scores the unvisited cities and samples the next one:

      pi_theta(tour | cities) = prod_t pi_theta(c_t | cities, c_0 .. c_{t-1})

- `train`: REINFORCE on the tour length L (to minimise), K sampled tours per instance, each compared with a
  baseline b: the mean length of the other K - 1 tours of the same instance ('loo'), the greedy tour of the current
  policy ('greedy', self-critical), or the batch mean ('mean'):

      loss = mean_{i,k} [ (L_ik - b_ik) * log pi_theta(tour_ik | instance_i) ]
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.evaluation import EVAL_SEED_OFFSET, History, Monitor, Run, generators
from lecturekit.losses import clip_grads

BASELINES = ("loo", "greedy", "mean")


# ---------------------------------------------------------------------------------------------------------------
# Instances, tour lengths, exact optimum
# ---------------------------------------------------------------------------------------------------------------

def random_instances(n_instances: int, n_cities: int, seed: int | None = None,
                     generator: np.random.Generator | None = None) -> np.ndarray:
    """Cities uniform in the unit square: (n_instances, n_cities, 2) float32."""
    rng = generator if generator is not None else np.random.default_rng(seed)
    return rng.random((n_instances, n_cities, 2)).astype(np.float32)


def tour_length(coords, tours):
    """Length of the closed tours (back to the first city).

    Shapes: coords (B, n, 2), tours (B, n) permutations (or (B, K, n) for K tours per instance) -> (B,) or (B, K).
    Works on NumPy arrays and on torch tensors.
    """
    if isinstance(coords, Tensor):
        if tours.dim() == 3:
            return tour_length(coords.unsqueeze(1).expand(-1, tours.shape[1], -1, -1).reshape(-1, *coords.shape[1:]),
                               tours.reshape(-1, tours.shape[-1])).view(tours.shape[:2])
        pts = coords.gather(1, tours.long().unsqueeze(-1).expand(-1, -1, 2))
        return (pts - pts.roll(-1, dims=1)).norm(dim=-1).sum(-1)
    coords, tours = np.asarray(coords), np.asarray(tours)
    if tours.ndim == 3:
        return np.stack([tour_length(coords, tours[:, k]) for k in range(tours.shape[1])], axis=1)
    pts = np.take_along_axis(coords, tours[..., None].astype(np.int64), axis=1)
    return np.linalg.norm(pts - np.roll(pts, -1, axis=1), axis=-1).sum(-1)


def held_karp(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact shortest closed tours by the Held-Karp dynamic program, for a batch of instances of n cities.

    D[S, j] = length of the shortest path that starts at city 0, visits exactly the cities of S (a subset of
    {1..n-1}) and ends at j in S:  D[{j}, j] = d(0, j),  D[S, j] = min_{k in S - {j}} D[S - {j}, k] + d(k, j);
    the optimum is min_j D[{1..n-1}, j] + d(j, 0). Time O(2^n n^2) per instance (n = 10: 2^9 * 9 * 9, about 4e4 additions).

    Shapes: coords (B, n, 2) (or (n, 2)). Returns (lengths (B,), tours (B, n) starting at city 0).
    """
    coords = np.asarray(coords, dtype=np.float64)
    single = coords.ndim == 2
    if single:
        coords = coords[None]
    B, n, _ = coords.shape
    if n < 2:
        raise ValueError(f"need at least 2 cities, got {n}")
    if n > 16:
        raise ValueError(f"held_karp is exponential: n={n} is too large (use n <= 16)")
    dist = np.linalg.norm(coords[:, :, None] - coords[:, None, :], axis=-1)   # (B, n, n)
    m = n - 1                                   # cities 1..n-1 are bits 0..m-1
    full = (1 << m) - 1
    D = np.full((1 << m, m, B), np.inf)
    parent = np.full((1 << m, m, B), -1, dtype=np.int64)
    for j in range(m):
        D[1 << j, j] = dist[:, 0, j + 1]
    d_sub = dist[:, 1:, 1:].transpose(1, 2, 0)  # (m, m, B): d_sub[k, j] = d(k+1, j+1)
    for S in range(1, full + 1):
        members = [j for j in range(m) if S >> j & 1]
        if len(members) < 2:
            continue
        for j in members:
            prev = S & ~(1 << j)
            cand = D[prev] + d_sub[:, j]         # (m, B): come from k (inf where k is not in prev)
            k = cand.argmin(0)
            D[S, j] = cand[k, np.arange(B)]
            parent[S, j] = k
    closing = D[full] + dist[:, 1:, 0].T          # (m, B)
    last = closing.argmin(0)
    lengths = closing[last, np.arange(B)]
    tours = np.zeros((B, n), dtype=np.int64)
    for b in range(B):
        S, j = full, int(last[b])
        for pos in range(n - 1, 0, -1):
            tours[b, pos] = j + 1
            S, j = S & ~(1 << j), int(parent[S, j, b])
    return (lengths[0], tours[0]) if single else (lengths, tours)


def brute_force_tsp(coords: np.ndarray) -> tuple[float, np.ndarray]:
    """Shortest closed tour of one instance by trying every permutation of cities 1..n-1 (n <= 9)."""
    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords)
    if n > 9:
        raise ValueError(f"brute force over {n - 1}! tours is too slow; use held_karp")
    perms = np.array([(0, *p) for p in itertools.permutations(range(1, n))])
    lengths = tour_length(np.broadcast_to(coords, (len(perms), n, 2)), perms)
    i = int(np.argmin(lengths))
    return float(lengths[i]), perms[i]


def nearest_neighbour_tours(coords: np.ndarray) -> np.ndarray:
    """The greedy heuristic: from city 0, always go to the closest unvisited city. (B, n, 2) -> tours (B, n)."""
    coords = np.asarray(coords, dtype=np.float64)
    B, n, _ = coords.shape
    dist = np.linalg.norm(coords[:, :, None] - coords[:, None, :], axis=-1)
    tours = np.zeros((B, n), dtype=np.int64)
    visited = np.zeros((B, n), dtype=bool)
    visited[:, 0] = True
    for t in range(1, n):
        d = np.where(visited, np.inf, dist[np.arange(B), tours[:, t - 1]])
        tours[:, t] = d.argmin(1)
        visited[np.arange(B), tours[:, t]] = True
    return tours


def optimality_gap(lengths, optimal) -> float:
    """Mean relative excess over the optimum, in percent: 100 * mean(L / L* - 1)."""
    return float(100.0 * np.mean(np.asarray(lengths, dtype=np.float64) / np.asarray(optimal, dtype=np.float64) - 1))


# ---------------------------------------------------------------------------------------------------------------
# The policy: attention encoder + pointer decoder
# ---------------------------------------------------------------------------------------------------------------

class EncoderLayer(nn.Module):
    """Self-attention over the cities, then a per-city feed-forward layer; both residual, with LayerNorm."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, h: Tensor) -> Tensor:
        h = self.norm1(h + self.attn(h, h, h, need_weights=False)[0])
        return self.norm2(h + self.ff(h))


class PointerPolicy(nn.Module):
    """pi_theta(next city | cities, partial tour): attention encoder, pointer decoder with masking.

    The decoder's query is built from the mean city embedding (the whole instance), the first city and the
    current city; it attends to the unvisited cities once (a multi-head "glimpse") and then scores every city by
    ``clip * tanh(q . k / sqrt(d))``; visited cities get -inf, so the policy can only produce valid tours.
    Everything that does not change during decoding (keys, values, the instance and first-city part of the query)
    is computed once per instance, so each of the n - 1 decoding steps is a few small products.
    Shapes: coords (B, n, 2) -> tours (B, n) starting at city 0, log pi(tour) (B,).
    """

    def __init__(self, d: int = 64, layers: int = 1, heads: int = 4, clip: float = 10.0):
        super().__init__()
        if d % heads:
            raise ValueError(f"d={d} must be a multiple of heads={heads}")
        self.d, self.heads, self.clip = d, heads, clip
        self.embed = nn.Linear(2, d)
        self.encoder = nn.Sequential(*[EncoderLayer(d, heads) for _ in range(layers)])
        self.q_fixed = nn.Linear(2 * d, d)           # query part from (mean embedding, first city)
        self.q_current = nn.Linear(d, d, bias=False)  # query part from the current city
        self.kvl = nn.Linear(d, 3 * d, bias=False)    # glimpse keys, glimpse values, pointer keys
        self.out = nn.Linear(d, d, bias=False)        # merges the glimpse heads

    def forward(self, coords: Tensor, n_samples: int = 1, greedy: bool = False,
                generator: torch.Generator | None = None, tours: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Build tours city by city: sampled (or arg-max if greedy), `n_samples` per instance.

        If `tours` (B * n_samples, n) is given, they are followed instead (teacher forcing) to get their log-probs.

        Returns tours (B * n_samples, n) and the log-probability of each whole tour (B * n_samples,), ordered
        instance-major (the samples of instance i are rows i * n_samples ... (i + 1) * n_samples - 1).
        """
        h = self.encoder(self.embed(coords))                                # (B, n, d)
        B, n, d = h.shape
        H, dh = self.heads, d // self.heads
        kg, vg, kl = self.kvl(h).split(d, dim=-1)
        kg = kg.view(B, n, H, dh).transpose(1, 2)                           # (B, H, n, dh)
        vg = vg.view(B, n, H, dh).transpose(1, 2)
        q0 = self.q_fixed(torch.cat([h.mean(1), h[:, 0]], -1))              # (B, d)
        qc = self.q_current(h)                                              # (B, n, d)
        if n_samples > 1:
            kg, vg, kl, q0, qc = (x.repeat_interleave(n_samples, dim=0) for x in (kg, vg, kl, q0, qc))
        R = B * n_samples
        rows = torch.arange(R)
        visited = torch.zeros(R, n, dtype=torch.bool)
        visited[:, 0] = True
        current = torch.zeros(R, dtype=torch.long)
        forced, tours, logps = tours, [current], []
        for t in range(n - 1):
            q = (q0 + qc[rows, current]).view(R, H, 1, dh)
            att = (q @ kg.transpose(-1, -2)) / math.sqrt(dh)                 # (R, H, 1, n)
            att = torch.softmax(att.masked_fill(visited[:, None, None, :], float("-inf")), dim=-1)
            glimpse = self.out((att @ vg).reshape(R, d))                     # (R, d)
            scores = self.clip * torch.tanh((kl @ glimpse.unsqueeze(-1)).squeeze(-1) / math.sqrt(d))
            logp_all = torch.log_softmax(scores.masked_fill(visited, float("-inf")), dim=-1)
            if forced is not None:
                nxt = forced[:, t + 1].long()
            elif greedy:
                nxt = logp_all.argmax(-1)
            else:
                nxt = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
            logps.append(logp_all[rows, nxt])
            visited = visited.clone()
            visited[rows, nxt] = True
            current = nxt
            tours.append(nxt)
        return torch.stack(tours, 1), torch.stack(logps, 1).sum(1)

    @torch.no_grad()
    def greedy_tours(self, coords) -> np.ndarray:
        """Arg-max decoding for a batch of instances (NumPy or torch (B, n, 2)) -> tours (B, n) NumPy."""
        coords = torch.as_tensor(np.asarray(coords, dtype=np.float32))
        return self(coords, greedy=True)[0].numpy()

    @torch.no_grad()
    def best_of_samples(self, coords, k: int, seed: int = 0) -> np.ndarray:
        """Sample k tours per instance and keep the shortest: (B, n) NumPy."""
        c = torch.as_tensor(np.asarray(coords, dtype=np.float32))
        g = torch.Generator().manual_seed(seed)
        tours, _ = self(c, n_samples=k, generator=g)
        lengths = tour_length(c, tours.view(len(c), k, -1))
        return tours.view(len(c), k, -1)[torch.arange(len(c)), lengths.argmin(1)].numpy()


# ---------------------------------------------------------------------------------------------------------------
# REINFORCE training
# ---------------------------------------------------------------------------------------------------------------

def tour_reinforce_loss(logp: Tensor, length: Tensor, baseline: Tensor) -> Tensor:
    """loss = mean[(L - b) * log pi(tour)]: its gradient is minus the REINFORCE estimate of grad E[-L].

    Shapes: logp, length, baseline (B, K) -> scalar. Lengths and baselines are constants (detached).
    """
    return ((length - baseline).detach() * logp).mean()


def leave_one_out_baseline(length: Tensor) -> Tensor:
    """b_ik = mean of the other K - 1 tour lengths of instance i.  Shapes: (B, K) -> (B, K); needs K >= 2."""
    K = length.shape[1]
    if K < 2:
        raise ValueError("the leave-one-out baseline needs at least 2 samples per instance")
    return (length.sum(1, keepdim=True) - length) / (K - 1)


@dataclass
class RoutingConfig:
    n_cities: int = 10        # cities per instance
    d: int = 64               # embedding width
    layers: int = 1           # attention encoder layers
    heads: int = 4            # attention heads
    batch: int = 64           # instances per update
    samples: int = 8          # sampled tours per instance (K)
    baseline: str = "loo"     # 'loo' (mean of the other K-1 samples), 'greedy' (greedy tour) or 'mean' (batch mean)
    lr: float = 1e-3          # Adam step size
    max_grad_norm: float = 1.0  # gradient clipping
    eval_instances: int = 256  # held-out validation instances (solved exactly once, before training)

    def __post_init__(self):
        if self.baseline not in BASELINES:
            raise ValueError(f"Unknown baseline '{self.baseline}'. Available: {', '.join(BASELINES)}.")


def new_policy(cfg: RoutingConfig, generator: torch.Generator) -> PointerPolicy:
    """A PointerPolicy of `cfg`'s size with PyTorch's default initialisation drawn from `generator` (built on the meta
    device first, so that nothing is drawn from the global torch generator)."""
    with torch.device("meta"):
        model = PointerPolicy(cfg.d, cfg.layers, cfg.heads)
    model = model.to_empty(device="cpu")
    for m in model.modules():
        if isinstance(m, nn.Linear):  # nn.Linear.reset_parameters, from the generator
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1 / math.sqrt(m.in_features)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.MultiheadAttention):  # its _reset_parameters (out_proj is an nn.Linear, above)
            nn.init.xavier_uniform_(m.in_proj_weight, generator=generator)
            nn.init.zeros_(m.in_proj_bias)
        elif isinstance(m, nn.LayerNorm):
            m.reset_parameters()
    with torch.no_grad():  # MultiheadAttention zeroes its out_proj bias after the Linear init
        for m in model.modules():
            if isinstance(m, nn.MultiheadAttention):
                m.out_proj.bias.zero_()
    return model


def validation_evaluator(val_coords: np.ndarray, val_opt: np.ndarray) -> Callable[[PointerPolicy], tuple[float, float]]:
    """evaluate(model) -> (minus the mean gap %, std of the gap %) of the greedy tours on a validation set, so that
    "higher is better" as for returns (what `evaluation.Monitor` expects)."""

    def evaluate(model: PointerPolicy) -> tuple[float, float]:
        gaps = 100 * (tour_length(val_coords, model.greedy_tours(val_coords)) / val_opt - 1)
        return -float(gaps.mean()), float(gaps.std())

    return evaluate


def train(cfg: RoutingConfig | None = None, run: Run | None = None, *,
          val: tuple[np.ndarray, np.ndarray] | None = None) -> History:
    """Train a PointerPolicy by REINFORCE on fresh random instances, `cfg.batch` per update.

    `run` as for every algorithm, counted in instances: run.steps is the number of training instances, run.eval_every
    the instances between evaluations (default: every 25 updates), run.target minus the gap in % to stop at (e.g.
    -4.0).  Each evaluation compares the greedy tours of a validation set with their Held-Karp optimum; History.evals
    hold (instances seen, wall s, -gap %, std of the per-instance gap %).  `val` = (coords, optimal lengths) reuses a
    validation set; otherwise one is drawn from run.seed + EVAL_SEED_OFFSET.
    """
    cfg = cfg or RoutingConfig()
    run = run or Run(steps=500 * cfg.batch, eval_every=25 * cfg.batch)
    gen, rng = generators(run.seed)
    if val is None:
        val_coords = random_instances(cfg.eval_instances, cfg.n_cities, seed=run.seed + EVAL_SEED_OFFSET)
        val = (val_coords, held_karp(val_coords)[0])
    model = new_policy(cfg, gen)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    mon = Monitor("reinforce-tsp", f"tsp{cfg.n_cities}", run, config=cfg, evaluate=validation_evaluator(*val))
    K, instances = cfg.samples, 0
    while True:
        coords = torch.as_tensor(random_instances(cfg.batch, cfg.n_cities, generator=rng))
        tours, logp = model(coords, n_samples=K, generator=gen)
        length = tour_length(coords, tours.view(cfg.batch, K, -1))
        logp = logp.view(cfg.batch, K)
        if cfg.baseline == "loo":
            b = leave_one_out_baseline(length)
        elif cfg.baseline == "greedy":
            with torch.no_grad():
                b = tour_length(coords, model(coords, greedy=True)[0]).unsqueeze(1).expand(-1, K)
        else:
            b = length.mean().expand_as(length)
        loss = tour_reinforce_loss(logp, length, b)
        opt.zero_grad()
        loss.backward()
        clip_grads(model.parameters(), cfg.max_grad_norm)
        opt.step()
        instances += cfg.batch
        mon.log(instances, loss=float(loss.detach()), train_length=float(length.mean()))
        if mon.should_stop(instances, model):
            break
    return mon.finish(model)
