"""Find-the-bug exercises (exercise notebook ex08): three implementations that run, learn badly, and each hide one
realistic bug, plus the small training runs that show the symptom.

    reward_to_go   a return computation (REINFORCE's weights on a batch of concatenated episodes)
    policy_loss    an on-policy loss (REINFORCE's surrogate from the logits of a batch)
    critic_loss    an off-policy loss (DDPG's critic regression on the target y = r + gamma (1 - d) Q'(s', mu'(s')))

The buggy functions are deliberately wrong: never import them into the library.  `train_reinforce` and `fit_critic`
take the function under test as an argument, so the student's fixed version runs in exactly the same loop; both are
short (a few seconds) and seeded.  Checkers: `lecturekit.course.checks.find_the_bug`.
"""
from __future__ import annotations

import copy
import inspect
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn


def show(fn: Callable) -> None:
    """Print the source of a function (what the student reads and copies)."""
    print(inspect.getsource(fn))


# ------------------------------------------------------------------------------------ bug 1: a return computation
def reward_to_go(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted returns-to-go of a batch of episodes laid end to end.

    rewards: (n,) floats; dones: (n,) 1.0 at the last step of each episode (or of each piece of an episode cut by
    the end of the batch), else 0.0.  Returns G (n,) with G_t = r_t + gamma * G_{t+1} inside an episode and
    G_t = r_t at its last step.
    """
    G = np.zeros(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        G[t] = running
    return G


# ------------------------------------------------------------------------------------- bug 2: an on-policy loss
def policy_loss(logits: Tensor, actions: Tensor, weights: Tensor) -> Tensor:
    """REINFORCE surrogate -mean_b log pi(a_b | s_b) w_b for a categorical policy.

    logits: (B, A) with gradient; actions: (B, 1) int64, as the rollout buffer stores them; weights: (B,) constants
    (normalised returns-to-go).  Returns a scalar whose gradient is minus the policy-gradient estimate.
    """
    logp = torch.distributions.Categorical(logits=logits).log_prob(actions)
    return -(logp * weights).mean()


# ------------------------------------------------------------------------------------ bug 3: an off-policy loss
def critic_loss(critic: nn.Module, critic_targ: nn.Module, actor_targ: nn.Module, batch: dict, gamma: float) -> Tensor:
    """DDPG critic loss mean_b (Q(s_b, a_b) - y_b)^2 with y = r + gamma (1 - terminated) Q'(s', mu'(s')).

    critic(obs, act) and critic_targ(obs, act) return (B, 1), as a network with one output unit does;
    actor_targ(obs) returns (B, act_dim).  batch: 'obs' (B, obs_dim), 'action' (B, act_dim), 'reward' (B,),
    'next_obs' (B, obs_dim), 'terminated' (B,) 0.0/1.0.  No gradient may flow through y.  Returns a scalar.
    """
    with torch.no_grad():
        next_q = critic_targ(batch["next_obs"], actor_targ(batch["next_obs"]))
        y = batch["reward"] + gamma * (1.0 - batch["terminated"]) * next_q
    q = critic(batch["obs"], batch["action"])
    return ((q - y) ** 2).mean()


# ------------------------------------------------------------------------------ the symptom: REINFORCE on CartPole
def train_reinforce(reward_to_go: Callable = None, policy_loss: Callable = None, iterations: int = 25,
                    seed: int = 0, n_envs: int = 8, T: int = 128, gamma: float = 0.99, lr: float = 1e-2) -> list:
    """REINFORCE on CartPole-v1 with the given `reward_to_go` and `policy_loss` (the correct ones by default).

    Each iteration collects T steps of n_envs environments, lays every environment's steps end to end (episode ends
    and the cut at the end of the batch marked in `dones`), weights each step by its normalised return-to-go and
    takes one Adam step on `policy_loss`.  Returns the mean return of the episodes finished in each iteration.
    """
    reward_to_go = reward_to_go or _reward_to_go_ref
    policy_loss = policy_loss or _policy_loss_ref
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    envs = gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="vector_entry_point")
    with torch.random.fork_rng():  # PyTorch's default initialisation, seeded without touching the global generator
        torch.manual_seed(seed)
        pi = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = torch.optim.Adam(pi.parameters(), lr=lr)
    obs, _ = envs.reset(seed=seed)
    prev_done, ep_ret, curve = np.zeros(n_envs, dtype=bool), np.zeros(n_envs), []
    for _ in range(iterations):
        O, A = np.zeros((T, n_envs, 4), np.float32), np.zeros((T, n_envs), np.int64)
        R, D, valid, finished = np.zeros((T, n_envs)), np.zeros((T, n_envs)), np.zeros((T, n_envs), bool), []
        for t in range(T):
            with torch.no_grad():
                p1 = torch.softmax(pi(torch.as_tensor(obs)), -1)[:, 1].numpy()
            a = (rng.random(n_envs) < p1).astype(np.int64)
            nxt, r, term, trunc, _ = envs.step(a)
            # the step after an episode's end only resets that copy (next-step autoreset): not part of any episode
            O[t], A[t], R[t], valid[t] = obs, a, r, ~prev_done
            done = (term | trunc) & ~prev_done
            D[t] = done
            ep_ret += np.where(prev_done, 0.0, r)
            for i in np.flatnonzero(done):
                finished.append(ep_ret[i])
                ep_ret[i] = 0.0
            prev_done, obs = term | trunc, nxt
        cols = [np.flatnonzero(valid[:, i]) for i in range(n_envs)]
        o, a, r, d = (np.concatenate([X[c, i] for i, c in enumerate(cols)]) for X in (O, A, R, D))
        d[np.cumsum([len(c) for c in cols]) - 1] = 1.0  # the batch cuts each environment's running episode
        G = np.asarray(reward_to_go(r, d, gamma), dtype=np.float64)
        w = torch.as_tensor((G - G.mean()) / (G.std() + 1e-8), dtype=torch.float32)
        loss = policy_loss(pi(torch.as_tensor(o)), torch.as_tensor(a)[:, None], w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(float(np.mean(finished)) if finished else float("nan"))
    envs.close()
    return curve


def _reward_to_go_ref(rewards, dones, gamma) -> np.ndarray:
    G, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * (1.0 - dones[t]) * running
        G[t] = running
    return G


def _policy_loss_ref(logits: Tensor, actions: Tensor, weights: Tensor) -> Tensor:
    logp = torch.log_softmax(logits, -1).gather(-1, actions.reshape(-1, 1)).squeeze(-1)
    return -(logp * weights.detach()).mean()


# -------------------------------------------------------------------- the symptom: a DDPG critic on Pendulum data
class Actor(nn.Module):
    """mu(s) = 2 tanh(MLP(s)): Pendulum's torque range [-2, 2].  (B, 3) -> (B, 1)."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, obs: Tensor) -> Tensor:
        return 2.0 * torch.tanh(self.net(obs))


class Critic(nn.Module):
    """Q(s, a): an MLP on [s, a] with ONE output unit, so it returns shape (B, 1), not (B,)."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        return self.net(torch.cat([obs, act], -1))


def pendulum_transitions(n: int = 2000, seed: int = 0) -> dict:
    """n transitions of Pendulum-v1 under uniformly random torques, as a dict of float32 tensors (a replay batch)."""
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    O, A, R, O2, D = (np.zeros((n, k), np.float32) for k in (3, 1, 1, 3, 1))
    o, _ = env.reset(seed=seed)
    for t in range(n):
        a = rng.uniform(-2.0, 2.0, 1).astype(np.float32)
        o2, r, term, trunc, _ = env.step(a)
        O[t], A[t], R[t], O2[t], D[t] = o, a, r, o2, term
        o = o2
        if term or trunc:
            o, _ = env.reset()
    env.close()
    t = torch.as_tensor
    return {"obs": t(O), "action": t(A), "reward": t(R[:, 0]), "next_obs": t(O2), "terminated": t(D[:, 0])}


def fit_critic(critic_loss: Callable = None, data: dict | None = None, updates: int = 400, seed: int = 0,
               gamma: float = 0.9, batch: int = 128, tau: float = 0.01) -> dict:
    """Train a critic with `critic_loss` on fixed Pendulum transitions (policy evaluation of a fixed random actor,
    with a Polyak-averaged target critic), then measure what it learned.

    Returns {'corr': correlation of Q(s, a) with the reward r(s, a) over the data, 'q_std': spread of Q over the
    data}.  A critic that learns the rewards correlates strongly (about 0.9 here); Pendulum's rewards vary a lot
    from state to state, so a flat Q means the critic learned almost nothing.
    """
    critic_loss = critic_loss or _critic_loss_ref
    data = data if data is not None else pendulum_transitions(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the initial weights come from `gen` below, not from the global generator
        critic, actor_targ = Critic(), Actor()
    for net in (critic, actor_targ):
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / max(1, p.shape[-1]) ** 0.5))
    critic_targ = copy.deepcopy(critic)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    n = len(data["reward"])
    for _ in range(updates):
        idx = torch.randint(0, n, (batch,), generator=gen)
        loss = critic_loss(critic, critic_targ, actor_targ, {k: v[idx] for k, v in data.items()}, gamma)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p, p_targ in zip(critic.parameters(), critic_targ.parameters()):
                p_targ.lerp_(p, tau)
    with torch.no_grad():
        q = critic(data["obs"], data["action"]).reshape(-1)
    return {"corr": float(np.corrcoef(q.numpy(), data["reward"].numpy())[0, 1]), "q_std": float(q.std())}


def _critic_loss_ref(critic, critic_targ, actor_targ, batch, gamma) -> Tensor:
    with torch.no_grad():
        next_q = critic_targ(batch["next_obs"], actor_targ(batch["next_obs"])).reshape(-1)
        y = batch["reward"] + gamma * (1.0 - batch["terminated"]) * next_q
    return ((critic(batch["obs"], batch["action"]).reshape(-1) - y) ** 2).mean()
