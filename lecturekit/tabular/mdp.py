"""A small tabular MDP with exact answers: J(theta), its gradient, Q, V, advantages, visitation, the optimum.

Lecture: "Derivation of policy gradient theorem". The policy is a tabular softmax, pi_theta(a|s) = softmax(theta[s])_a,
with logits ``theta`` of shape (S, A) (a torch tensor). Everything exact is computed from the known model (P, R) by
a linear solve, so it is differentiable: ``exact_gradient`` is autograd through the solve. ``sample_episodes`` is the
only place that turns the model into data; estimators built on its output never see P.

Absorbing ``terminal`` states end an episode (their value is 0 and their logits are ignored). Every non-terminal
state reaches a terminal state with positive probability under every policy, so episodes end in finite time and the
discounted return of a sampled episode, sum_t gamma^t r_t, is an exact (unbiased) sample of J(theta) = mu0 . V.

Shapes: P (S, A, S) with P[s, a, s'] = P(s'|s, a); R (S, A) expected reward of taking a in s; mu0 (S,); terminal (S,).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

Episode = tuple[np.ndarray, np.ndarray, np.ndarray]  # (states (T,), actions (T,), rewards (T,))


@dataclass
class TabularMDP:
    """A finite MDP with known dynamics. See the module docstring for shapes and conventions."""

    P: np.ndarray  # (S, A, S) transition probabilities P(s'|s, a); rows of terminal states are ignored
    R: np.ndarray  # (S, A) expected reward r(s, a); 0 in terminal states
    gamma: float  # discount factor
    mu0: np.ndarray  # (S,) start-state distribution (no mass on terminal states)
    terminal: np.ndarray = field(default=None)  # (S,) bool, absorbing states that end an episode

    def __post_init__(self) -> None:
        self.P = np.asarray(self.P, dtype=np.float64)
        self.R = np.asarray(self.R, dtype=np.float64)
        self.mu0 = np.asarray(self.mu0, dtype=np.float64)
        S, A = self.R.shape
        if self.terminal is None:
            self.terminal = np.zeros(S, dtype=bool)
        self.terminal = np.asarray(self.terminal, dtype=bool)
        if self.P.shape != (S, A, S):
            raise ValueError(f"P must have shape (S, A, S) = {(S, A, S)}, got {self.P.shape}")
        if self.mu0.shape != (S,) or self.terminal.shape != (S,):
            raise ValueError(f"mu0 and terminal must have shape ({S},), got {self.mu0.shape} and {self.terminal.shape}")
        if not np.allclose(self.P.sum(-1), 1.0):
            raise ValueError("each P[s, a, :] must sum to 1")
        if not np.isclose(self.mu0.sum(), 1.0) or (self.mu0[self.terminal] > 0).any():
            raise ValueError("mu0 must sum to 1 and put no mass on terminal states")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")

    # ------------------------------------------------------------------ sizes and torch views of the model
    @property
    def n_states(self) -> int:
        return self.R.shape[0]

    @property
    def n_actions(self) -> int:
        return self.R.shape[1]

    def _model(self) -> tuple[Tensor, Tensor, Tensor]:
        """P, R with terminal rows zeroed (absorbing, worth 0), and the non-terminal mask, as float64 tensors."""
        live = torch.as_tensor(~self.terminal, dtype=torch.float64)
        P = torch.as_tensor(self.P) * live[:, None, None]
        R = torch.as_tensor(self.R) * live[:, None]
        return P, R, live

    @staticmethod
    def _theta(theta) -> Tensor:
        return torch.as_tensor(theta, dtype=torch.float64) if not isinstance(theta, Tensor) else theta.double()

    # ------------------------------------------------------------------ exact quantities for a softmax policy
    def policy(self, theta) -> Tensor:
        """pi_theta(a|s) = softmax(theta[s])_a.  Shape (S, A)."""
        theta = self._theta(theta)
        if theta.shape != self.R.shape:
            raise ValueError(f"theta must have shape (S, A) = {tuple(self.R.shape)}, got {tuple(theta.shape)}")
        return torch.softmax(theta, dim=-1)

    def transition_matrix(self, theta) -> Tensor:
        """P_pi[s, s'] = sum_a pi(a|s) P(s'|s, a), with terminal rows zero.  Shape (S, S)."""
        P, _, _ = self._model()
        return torch.einsum("sa,sat->st", self.policy(theta), P)

    def value(self, theta) -> Tensor:
        """V_pi solves the Bellman equation V = r_pi + gamma P_pi V, i.e. V = (I - gamma P_pi)^{-1} r_pi.  Shape (S,)."""
        _, R, _ = self._model()
        pi = self.policy(theta)
        r_pi = (pi * R).sum(-1)
        eye = torch.eye(self.n_states, dtype=torch.float64)
        return torch.linalg.solve(eye - self.gamma * self.transition_matrix(theta), r_pi)

    def q_values(self, theta) -> Tensor:
        """Q(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V(s'); 0 in terminal states.  Shape (S, A)."""
        P, R, _ = self._model()
        return R + self.gamma * torch.einsum("sat,t->sa", P, self.value(theta))

    def advantages(self, theta) -> Tensor:
        """A(s, a) = Q(s, a) - V(s).  Shape (S, A); sum_a pi(a|s) A(s, a) = 0 for every s."""
        return self.q_values(theta) - self.value(theta)[:, None]

    def J(self, theta) -> Tensor:
        """J(theta) = E[sum_t gamma^t r_t] = sum_s mu0(s) V(s).  A differentiable scalar tensor."""
        return torch.as_tensor(self.mu0) @ self.value(theta)

    def exact_gradient(self, theta) -> Tensor:
        """grad_theta J(theta) by autograd through the linear solve.  Shape (S, A); terminal rows are 0."""
        theta = self._theta(theta).detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.J(theta), theta)
        return grad

    def discounted_state_visitation(self, theta, normalize: bool = False) -> Tensor:
        """d(s) = sum_t gamma^t Pr(s_t = s), i.e. d^T = mu0^T (I - gamma P_pi)^{-1}.  Shape (S,); 0 on terminal states.

        With this (unnormalised) d the policy gradient theorem reads
        grad J = sum_s d(s) sum_a pi(a|s) grad log pi(a|s) Q(s, a).  ``normalize=True`` divides by sum_s d(s).
        """
        eye = torch.eye(self.n_states, dtype=torch.float64)
        A = (eye - self.gamma * self.transition_matrix(theta)).T
        d = torch.linalg.solve(A, torch.as_tensor(self.mu0)) * self._model()[2]  # arriving in a terminal state is not a visit
        return d / d.sum() if normalize else d

    def log_prob_terms(self, theta, states: np.ndarray, actions: np.ndarray, final_state: int | None = None) -> dict:
        """log P(tau; theta) of one episode, split into its three parts (lecture: "Only the Policy Depends on theta"):

            log P(tau) = log mu0(s_0) + sum_t log pi_theta(a_t|s_t) + sum_t log P(s_{t+1}|s_t, a_t)

        Returns {'initial': float, 'policy': tensor (differentiable in theta), 'dynamics': float}. The last
        transition goes into `final_state` (default: the only terminal state).
        """
        if final_state is None:
            (term,) = np.flatnonzero(self.terminal)  # only unambiguous with a single terminal state
            final_state = int(term)
        states, actions = np.asarray(states, dtype=int), np.asarray(actions, dtype=int)
        nxt = np.r_[states[1:], final_state]
        logpi = torch.log_softmax(self._theta(theta), dim=-1)
        return {"initial": float(np.log(self.mu0[states[0]])),
                "policy": logpi[states, actions].sum(),
                "dynamics": float(np.log(self.P[states, actions, nxt]).sum())}

    # ------------------------------------------------------------------ the optimum (value iteration)
    def optimal_values(self, tol: float = 1e-12, max_iter: int = 100_000) -> np.ndarray:
        """V* by value iteration, V <- max_a [r(s, a) + gamma sum_s' P(s'|s, a) V(s')].  Shape (S,)."""
        P, R, _ = (x.numpy() for x in self._model())
        V = np.zeros(self.n_states)
        for _ in range(max_iter):
            V_new = (R + self.gamma * P @ V).max(-1)
            if np.max(np.abs(V_new - V)) < tol:
                return V_new
            V = V_new
        raise RuntimeError("value iteration did not converge")

    def optimal_J(self) -> float:
        """J* = sum_s mu0(s) V*(s), the best return any policy can reach."""
        return float(self.mu0 @ self.optimal_values())

    def optimal_q_values(self) -> np.ndarray:
        """Q*(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V*(s'); 0 in terminal states.  Shape (S, A)."""
        P, R, _ = (x.numpy() for x in self._model())
        return R + self.gamma * P @ self.optimal_values()

    # ------------------------------------------------------------------ entropy-regularised (soft) optimum
    def soft_J(self, theta, alpha: float) -> Tensor:
        """J_alpha(theta) = E[sum_t gamma^t (r_t + alpha H(pi(.|s_t)))] = mu0 . (I - gamma P_pi)^{-1} (r_pi + alpha H_pi),
        exact and differentiable in theta.  Lecture: "Entropy regularisation" (SAC)."""
        _, R, live = self._model()
        pi = self.policy(theta)
        entropy = -(pi * torch.log_softmax(self._theta(theta), -1)).sum(-1)
        r_soft = ((pi * R).sum(-1) + alpha * entropy) * live
        eye = torch.eye(self.n_states, dtype=torch.float64)
        return torch.as_tensor(self.mu0) @ torch.linalg.solve(eye - self.gamma * self.transition_matrix(theta), r_soft)

    def soft_q_values(self, alpha: float, tol: float = 1e-12, max_iter: int = 100_000) -> np.ndarray:
        """Q*_alpha by soft value iteration: V(s) <- alpha log sum_a exp(Q(s, a) / alpha) with
        Q(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V(s') (terminal states worth 0).  Shape (S, A).

        The optimal policy of J_alpha is softmax(Q*_alpha(s, .) / alpha); as alpha -> 0 the backup becomes the max of
        value iteration (`optimal_values`).  Computed with a shifted log-sum-exp, so small alphas do not overflow.
        """
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0 (alpha = 0 is `optimal_q_values`), got {alpha}")
        P, R, live = (x.numpy() for x in self._model())
        V = np.zeros(self.n_states)
        for _ in range(max_iter):
            Q = R + self.gamma * P @ V
            m = Q.max(-1)
            V_new = (m + alpha * np.log(np.exp((Q - m[:, None]) / alpha).sum(-1))) * live
            if np.max(np.abs(V_new - V)) < tol:
                return R + self.gamma * P @ V_new
            V = V_new
        raise RuntimeError("soft value iteration did not converge")

    # ------------------------------------------------------------------ sampling: the only door from the model to data
    def sample_episodes(self, theta, n: int, rng: np.random.Generator, max_steps: int = 10_000) -> list[Episode]:
        """Run n episodes of pi_theta from s0 ~ mu0 until a terminal state; rewards are r(s_t, a_t).

        Returns a list of n tuples (states (T,), actions (T,), rewards (T,)) with integer states/actions and float
        rewards; the terminal state reached at the end is not included. All episodes advance together (vectorised).
        """
        pi = self.policy(theta).detach().numpy()
        cum_pi, cum_P = np.cumsum(pi, -1), np.cumsum(self.P, -1)
        s = _sample_rows(np.cumsum(self.mu0)[None].repeat(n, 0), rng)
        alive = ~self.terminal[s]
        S, A, Rw = [], [], []
        for _ in range(max_steps):
            a = _sample_rows(cum_pi[s], rng)
            S.append(np.where(alive, s, -1))
            A.append(np.where(alive, a, -1))
            Rw.append(np.where(alive, self.R[s, a], 0.0))
            s = np.where(alive, _sample_rows(cum_P[s, a], rng), s)
            alive = alive & ~self.terminal[s]
            if not alive.any():
                break
        if alive.any():
            raise RuntimeError(f"episodes did not end within max_steps={max_steps}")
        S, A, Rw = np.array(S).T, np.array(A).T, np.array(Rw).T  # (n, T_max)
        lengths = (S >= 0).sum(1) if S.size else np.zeros(n, dtype=int)
        return [(S[i, : lengths[i]], A[i, : lengths[i]], Rw[i, : lengths[i]]) for i in range(n)]


def _sample_rows(cum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical sample per row of cumulative probabilities cum (n, K) (inverse-CDF)."""
    u = rng.random((cum.shape[0], 1))
    return np.minimum((u > cum).sum(-1), cum.shape[-1] - 1)


def discounted_return(rewards: np.ndarray, gamma: float) -> float:
    """sum_t gamma^t r_t of one episode."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return float(rewards @ gamma ** np.arange(len(rewards)))


def random_mdp(n_states: int, n_actions: int, gamma: float = 0.9, p_end: float = 0.1, seed: int = 0) -> TabularMDP:
    """A random MDP: n_states non-terminal states plus one terminal state (the last index).

    From every (s, a) the episode ends with probability at least ``p_end``; other next states come from a Dirichlet
    draw; rewards are drawn uniformly from [-1, 1]; the start state is uniform over the non-terminal states.
    """
    rng = np.random.default_rng(seed)
    S = n_states + 1
    P = np.zeros((S, n_actions, S))
    end = p_end + (1 - p_end) * rng.uniform(0.0, 0.2, size=(n_states, n_actions))
    P[:n_states, :, :n_states] = rng.dirichlet(np.full(n_states, 0.5), size=(n_states, n_actions)) * (1 - end[..., None])
    P[:n_states, :, n_states] = end
    P[n_states, :, n_states] = 1.0
    R = np.zeros((S, n_actions))
    R[:n_states] = rng.uniform(-1.0, 1.0, size=(n_states, n_actions))
    mu0 = np.r_[np.full(n_states, 1.0 / n_states), 0.0]
    terminal = np.r_[np.zeros(n_states, dtype=bool), True]
    return TabularMDP(P=P, R=R, gamma=gamma, mu0=mu0, terminal=terminal)


def small_mdp(seed: int = 0) -> TabularMDP:
    """The course's fixed example: 4 non-terminal states + 1 terminal state, 3 actions, gamma = 0.9.

    Episodes end with probability 0.1-0.28 per step (mean length about 6 steps). Used by the policy gradient theorem
    notebook and later for baselines, the natural gradient, GAE and the entropy-regularised optimum.
    """
    return random_mdp(n_states=4, n_actions=3, gamma=0.9, p_end=0.1, seed=seed)
