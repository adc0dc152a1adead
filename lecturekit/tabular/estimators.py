"""The score-function (likelihood-ratio, REINFORCE) gradient estimator.  Lecture: "Apply the Log-Derivative
Identity", "Only the Policy Depends on theta", "From Objective to Sample-Based Learning".

    grad J(theta) = E_tau[ grad log P(tau; theta) R(tau) ] = E_tau[ (sum_t grad log pi_theta(a_t|s_t)) R(tau) ]

estimated by the average over n sampled episodes. It uses the states, actions and rewards of the episodes and the
policy, never the transition probabilities. With discounting, R(tau) = sum_t gamma^t r_t (the quantity whose
expectation is J); the reward-to-go form weights grad log pi(a_t|s_t) by sum_{k >= t} gamma^k r_k only (dropping
the past rewards, which have zero mean against later scores: still unbiased, less variance).

Episodes are (states (T,), actions (T,), rewards (T,)) tuples as returned by `TabularMDP.sample_episodes`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

Episode = tuple[np.ndarray, np.ndarray, np.ndarray]


def _weights(rewards: np.ndarray, gamma: float, reward_to_go: bool) -> np.ndarray:
    """Per-step weights: R(tau) for every t, or sum_{k >= t} gamma^k r_k with reward_to_go.  Shape (T,)."""
    disc = np.asarray(rewards, dtype=np.float64) * gamma ** np.arange(len(rewards))
    if reward_to_go:
        return np.cumsum(disc[::-1])[::-1]
    return np.full(len(rewards), disc.sum())


def tabular_softmax_score(theta, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """grad_theta log pi_theta(a_t|s_t) for a tabular softmax policy: e_{a_t} - pi(.|s_t) in row s_t, 0 elsewhere.

    Shapes: theta (S, A), states, actions (T,) -> (T, S, A).
    """
    theta = theta.detach().double().numpy() if isinstance(theta, Tensor) else np.asarray(theta, dtype=np.float64)
    pi = np.exp(theta - theta.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    states, actions = np.asarray(states), np.asarray(actions)
    score = np.zeros((len(states), *theta.shape))
    t = np.arange(len(states))
    score[t, states] = -pi[states]
    score[t, states, actions] += 1.0
    return score


def per_episode_gradients(theta, episodes: Sequence[Episode], gamma: float, reward_to_go: bool = False) -> np.ndarray:
    """One score-function gradient sample per episode, g_i = sum_t grad log pi(a_t|s_t) w_t, for a tabular softmax.

    Their mean is the estimate; their spread gives its standard error.  Shape (n, S, A).
    """
    theta = theta.detach().double().numpy() if isinstance(theta, Tensor) else np.asarray(theta, dtype=np.float64)
    out = np.zeros((len(episodes), *theta.shape))
    if not episodes:
        return out
    # all steps of all episodes at once: scatter w_t (e_a - pi(s)) into episode i's (S, A) slot
    lengths = np.array([len(s) for s, _, _ in episodes])
    ep = np.repeat(np.arange(len(episodes)), lengths)
    s = np.concatenate([e[0] for e in episodes]).astype(int)
    a = np.concatenate([e[1] for e in episodes]).astype(int)
    w = np.concatenate([_weights(e[2], gamma, reward_to_go) for e in episodes])
    pi = np.exp(theta - theta.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    np.add.at(out, (ep, s), -w[:, None] * pi[s])
    np.add.at(out, (ep, s, a), w)
    return out


def score_function_gradient(theta, episodes: Sequence[Episode], gamma: float, reward_to_go: bool = False) -> np.ndarray:
    """The Monte Carlo estimate (1/n) sum_i (sum_t grad log pi(a_t^i|s_t^i)) R(tau_i) for a tabular softmax policy.

    Shape (S, A), like theta.
    """
    if len(episodes) == 0:
        raise ValueError("need at least one episode")
    return per_episode_gradients(theta, episodes, gamma, reward_to_go).mean(0)


def surrogate_gradient(log_prob: Callable[[Tensor, Tensor], Tensor], params: Sequence[Tensor],
                       episodes: Sequence[Episode], gamma: float, reward_to_go: bool = False) -> list[Tensor]:
    """The same estimator for any differentiable policy, by autograd on the surrogate
    L = (1/n) sum_i sum_t log pi(a_t|s_t) w_t  (weights are constants): grad L is the estimate.

    log_prob(states, actions) -> (T,) log pi(a_t|s_t) must depend on `params`. Returns one gradient per parameter.
    """
    total = 0.0
    for states, actions, rewards in episodes:
        w = torch.as_tensor(_weights(rewards, gamma, reward_to_go))
        logp = log_prob(torch.as_tensor(states), torch.as_tensor(actions))
        total = total + (logp.double() * w).sum()
    return list(torch.autograd.grad(total / len(episodes), list(params)))
