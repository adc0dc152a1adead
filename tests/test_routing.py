"""Routing: tour lengths, the exact Held-Karp optimum, the pointer policy and its REINFORCE training."""
import itertools
import math

import numpy as np
import pytest
import torch

from lecturekit.applications import routing
from lecturekit.evaluation import Run


def test_tour_length_hand_worked_numpy_and_torch():
    # unit square visited in order: 4 sides of length 1; the crossing order 0-2-1-3 adds 2 diagonals: 2 + 2 sqrt 2
    sq = np.array([[[0, 0], [1, 0], [1, 1], [0, 1]]], dtype=np.float32)
    tours = np.array([[0, 1, 2, 3], [0, 2, 1, 3]])
    lengths = routing.tour_length(np.repeat(sq, 2, 0), tours)
    np.testing.assert_allclose(lengths, [4.0, 2 + 2 * math.sqrt(2)], rtol=1e-6)
    t = routing.tour_length(torch.as_tensor(sq), torch.as_tensor(tours[None]))  # (B=1, K=2)
    np.testing.assert_allclose(t.numpy(), lengths[None], rtol=1e-6)


@pytest.mark.parametrize("n", [4, 6, 8])
def test_held_karp_equals_brute_force(n):
    coords = routing.random_instances(6, n, seed=n)
    lengths, tours = routing.held_karp(coords)
    for i in range(len(coords)):
        best, _ = routing.brute_force_tsp(coords[i])
        assert lengths[i] == pytest.approx(best, rel=1e-12)
        assert tours[i, 0] == 0 and sorted(tours[i]) == list(range(n))
        assert routing.tour_length(coords[i:i + 1].astype(np.float64), tours[i:i + 1])[0] == pytest.approx(lengths[i])


def test_held_karp_single_instance_and_limits():
    # cities on a circle: the optimum is the polygon in angular order
    ang = np.linspace(0, 2 * np.pi, 9, endpoint=False)
    perm = np.random.default_rng(0).permutation(9)
    coords = np.stack([np.cos(ang), np.sin(ang)], 1)[perm]
    length, tour = routing.held_karp(coords)
    assert length == pytest.approx(9 * 2 * math.sin(math.pi / 9))
    with pytest.raises(ValueError, match="too large"):
        routing.held_karp(np.zeros((17, 2)))


def test_nearest_neighbour_and_gap():
    coords = routing.random_instances(50, 9, seed=3)
    opt, _ = routing.held_karp(coords)
    nn_len = routing.tour_length(coords, routing.nearest_neighbour_tours(coords))
    assert np.all(nn_len >= opt - 1e-5)
    assert 2.0 < routing.optimality_gap(nn_len, opt) < 30.0
    assert routing.optimality_gap(opt, opt) == 0.0


def test_policy_builds_valid_tours_and_its_probabilities_sum_to_one():
    torch.manual_seed(0)
    model = routing.PointerPolicy(d=16, heads=2)
    coords = torch.as_tensor(routing.random_instances(1, 5, seed=0))
    tours, logp = model(coords.expand(64, -1, -1))
    for t in tours.tolist():
        assert t[0] == 0 and sorted(t) == list(range(5))   # masking: every city exactly once
    # all 4! tours that start at city 0: their probabilities sum to 1
    all_tours = torch.tensor([(0, *p) for p in itertools.permutations(range(1, 5))])
    _, logp_all = model(coords.expand(len(all_tours), -1, -1), tours=all_tours)
    assert float(logp_all.detach().exp().sum()) == pytest.approx(1.0, abs=1e-5)
    # the log-prob returned while sampling equals the one recomputed by following the same tours
    _, logp_again = model(coords.expand(64, -1, -1), tours=tours)
    torch.testing.assert_close(logp, logp_again)
    greedy = model.greedy_tours(coords)
    assert greedy.shape == (1, 5) and sorted(greedy[0]) == list(range(5))


def test_leave_one_out_baseline_hand_worked():
    # lengths 1, 2, 3: the others' means are (2+3)/2, (1+3)/2, (1+2)/2
    b = routing.leave_one_out_baseline(torch.tensor([[1.0, 2.0, 3.0]]))
    torch.testing.assert_close(b, torch.tensor([[2.5, 2.0, 1.5]]))
    with pytest.raises(ValueError):
        routing.leave_one_out_baseline(torch.ones(3, 1))


def test_reinforce_gradient_matches_exact_gradient_on_a_tiny_instance():
    # 5 cities: 24 tours, so E[L] = sum_tau pi(tau) L(tau) and its exact gradient come from enumeration
    torch.manual_seed(1)
    model = routing.PointerPolicy(d=16, heads=2, clip=3.0)
    coords = torch.as_tensor(routing.random_instances(1, 5, seed=5))
    all_tours = torch.tensor([(0, *p) for p in itertools.permutations(range(1, 5))])
    _, logp_all = model(coords.expand(len(all_tours), -1, -1), tours=all_tours)
    lengths = routing.tour_length(coords.expand(len(all_tours), -1, -1), all_tours)
    params = list(model.parameters())
    exact = torch.autograd.grad((logp_all.exp() * lengths).sum(), params)
    # REINFORCE with the leave-one-out baseline: 1 instance, K = 8192 sampled tours
    g = torch.Generator().manual_seed(0)
    tours, logp = model(coords, n_samples=8192, generator=g)
    L = routing.tour_length(coords, tours.view(1, 8192, -1))
    loss = routing.tour_reinforce_loss(logp.view(1, -1), L, routing.leave_one_out_baseline(L))
    est = torch.autograd.grad(loss, params)
    e, x = torch.cat([t.flatten() for t in exact]), torch.cat([t.flatten() for t in est])
    cos = float(e @ x / (e.norm() * x.norm()))
    assert cos > 0.95 and float(x.norm() / e.norm()) == pytest.approx(1.0, abs=0.15)


def test_training_improves_on_small_instances():
    torch.set_num_threads(1)
    cfg = routing.RoutingConfig(n_cities=6, d=32, batch=32, samples=8, eval_instances=64, lr=3e-3)
    events = []
    hist = routing.train(cfg, Run(steps=80 * 32, seed=0, eval_every=20 * 32, callback=events.append))
    assert len(hist.evals) == 4 and len(events) == 4 and hist.stopped == "budget"
    gaps = [-e[2] for e in hist.evals]
    assert gaps[-1] < 0.6 * gaps[0] and gaps[-1] < 12.0  # measured: 21.9 % -> 8.3 %
    assert isinstance(hist.model, routing.PointerPolicy)
    # the callback's False stops training (the Stop button)
    h2 = routing.train(cfg, Run(steps=60 * 32, seed=0, eval_every=20 * 32, callback=lambda e: False))
    assert h2.stopped == "user" and len(h2.evals) == 1
    with pytest.raises(ValueError, match="Available"):
        routing.RoutingConfig(baseline="median")
