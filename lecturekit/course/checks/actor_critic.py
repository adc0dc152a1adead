"""Checkers of part 3 (actor-critic, A2C): `bootstrapped_returns` and `a2c_loss`."""
from __future__ import annotations

import numpy as np
import torch

from lecturekit.algos.a2c import a2c_loss as _a2c_loss
from lecturekit.course.checking import Check, checker
from lecturekit.returns import bootstrapped_returns as _bootstrapped_returns


# --- bootstrapped_returns -----------------------------------------------------------------------------------------
def _backward(rewards, cont, last_value, gamma, cont_on_reward=False):
    """R_t = r_t + gamma cont_t R_{t+1} with R_T = last_value, for the variants the mistakes need."""
    r = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(r)
    running = np.asarray(last_value, dtype=np.float64).copy()
    for t in range(r.shape[0] - 1, -1, -1):
        running = cont[t] * (r[t] + gamma * running) if cont_on_reward else r[t] + gamma * cont[t] * running
        out[t] = running
    return out


def _returns_mistakes(rewards, terminated, last_value, gamma) -> dict:
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(terminated, dtype=np.float64)
    T, N = r.shape
    ones = np.ones_like(d)
    d_next = np.vstack([d[1:], np.zeros((1, N))])  # the mask of step t + 1 used at step t
    right = _bootstrapped_returns(r, d, last_value, gamma)
    return {
        "no_cut": (_backward(r, ones, last_value, gamma),
                   "the returns run across episode boundaries: a terminated step must cut the sum, "
                   "R_t = r_t + gamma * (1 - terminated_t) * R_{t+1}."),
        "off_by_one": (_backward(r, 1.0 - d_next, last_value, gamma),
                       "the cut is one step late: use terminated_t (of the same step t) to cut R_{t+1} out of R_t; "
                       "the terminal step itself keeps its reward."),
        "reward_masked": (_backward(r, 1.0 - d, last_value, gamma, cont_on_reward=True),
                          "the reward of the terminal step is lost: (1 - terminated_t) multiplies only "
                          "gamma * R_{t+1}, not r_t."),
        "no_bootstrap": (_backward(r, 1.0 - d, np.zeros(N), gamma),
                         "last_value is not used: the returns must start from R_T = last_value (the critic's "
                         "estimate of what comes after the rollout), not from 0."),
        "undiscounted_bootstrap": (_backward(r, 1.0 - d, np.asarray(last_value) / max(gamma, 1e-12), gamma),
                                   "last_value is not discounted: R_{T-1} = r_{T-1} + gamma * last_value."),
        "reversed": (right[::-1].copy(), "your returns are in reverse time order: R_0 belongs at row 0. If you "
                     "loop backwards and append, reverse at the end."),
        "undiscounted": (_backward(r, 1.0 - d, last_value, 1.0), "no discount: multiply R_{t+1} by gamma."),
        "whole_episode": (_segment_starts(right, d),
                          "every step got the return of the first step of its episode (in the rollout): R_t adds only "
                          "the rewards from step t on, R_t = r_t + gamma * (1 - terminated_t) * R_{t+1}."),
    }


def _segment_starts(R: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Each step's entry replaced by that of the first step of its episode within the rollout (the mistake of putting
    the whole episode's return at every step)."""
    out = R.copy()
    for n in range(R.shape[1]):
        start = 0
        for t in range(R.shape[0]):
            out[t, n] = R[start, n]
            if d[t, n]:
                start = t + 1
    return out


def _returns_cases():
    rng = np.random.default_rng(3)
    f, t = False, True
    cases = [
        ("one step, one environment", np.array([[1.0]]), np.array([[0.0]]), np.array([2.0]), 0.5),
        ("three steps, no episode end", np.array([[1.0], [1.0], [1.0]]), np.zeros((3, 1)), np.array([10.0]), 0.5),
        ("an episode ends at t = 1", np.array([[1.0], [2.0], [3.0]]), np.array([[0.0], [1.0], [0.0]]),
         np.array([8.0]), 0.5),
        ("the episode ends at the last step", np.array([[1.0], [1.0]]), np.array([[0.0], [1.0]]),
         np.array([100.0]), 0.9),
        ("two environments (columns), T = 3", np.array([[1.0, 4.0], [2.0, 0.0], [3.0, 0.0]]),
         np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), np.array([8.0, 4.0]), 0.5),
        ("terminated as a bool array (what a rollout stores)", np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
         np.array([[f, t], [t, f], [f, f]]), np.array([1.0, -1.0]), 0.9),
        ("integer rewards", np.array([[1, 0, 2], [0, 3, 1]]), np.array([[f, f, t], [f, t, f]]),
         np.array([0.5, 0.5, 0.5]), 0.99),
        ("gamma = 1", rng.normal(size=(5, 3)), rng.random((5, 3)) < 0.3, rng.normal(size=3), 1.0),
        ("T = 16 steps of N = 8 environments", rng.normal(size=(16, 8)), rng.random((16, 8)) < 0.1,
         rng.normal(size=8), 0.99),
        ("T = 200 steps of N = 4 environments", rng.normal(size=(200, 4)), rng.random((200, 4)) < 0.02,
         10 * rng.normal(size=4), 0.99),
    ]
    return cases


@checker("bootstrapped_returns")
def check_bootstrapped_returns(fn) -> None:
    """Check `fn(rewards, terminated, last_value, gamma)` against R_t = r_t + gamma (1 - terminated_t) R_{t+1},
    R_T = last_value, on (T, N) cases from one step to 200 steps of 4 environments."""
    c = Check("bootstrapped_returns")
    cases = _returns_cases()
    for name, rewards, term, last, gamma in cases:
        T, N = rewards.shape
        case = (f"{name}: rewards={rewards.tolist()}, terminated={term.tolist()}, last_value={last.tolist()}, "
                f"gamma={gamma}" if rewards.size <= 6 else f"{name} (shape ({T}, {N})), gamma={gamma}")
        got = c.call(fn, rewards, term, last, gamma, case=case)
        c.expect_close(got, _bootstrapped_returns(rewards, term, last, gamma), case=case,
                       mistakes=_returns_mistakes(rewards, term, last, gamma),
                       hint="the result has shape (T, N) like rewards: one column per environment.")
    c.passed(f"{len(cases)} cases: episode ends, bool masks, int rewards, up to 200 x 4")


# --- a2c_loss -----------------------------------------------------------------------------------------------------
def _loss_cases():
    g = torch.Generator().manual_seed(7)

    def rand(b):
        logp = -torch.rand(b, generator=g) * 2.0
        values = torch.randn(b, generator=g)
        returns = values + torch.randn(b, generator=g)
        entropy = torch.rand(b, generator=g)
        return logp, values, returns, entropy

    return [
        ("B = 1", (torch.tensor([-0.5]), torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([0.7])), 0.5, 0.01),
        ("B = 3, by hand", (torch.tensor([-1.0, -0.5, -2.0]), torch.tensor([1.0, 2.0, 0.0]),
                            torch.tensor([2.0, 1.0, 0.5]), torch.tensor([0.6, 0.6, 0.3])), 0.5, 0.1),
        ("B = 8, no entropy bonus", rand(8), 0.5, 0.0),
        ("B = 8, value_coef = 1, entropy_coef = 0.5", rand(8), 1.0, 0.5),
        ("B = 256 (a rollout of 16 x 16)", rand(256), 0.25, 0.01),
    ]


def _loss_mistakes(logp, v, ret, ent, vc, ec) -> dict:
    adv = ret - v
    pi, vl, h = -(logp * adv).mean(), (ret - v).pow(2).mean(), ent.mean()
    mistakes = {
        "pi_sign": ((logp * adv).mean() + vc * vl - ec * h,
                    "the policy term has the wrong sign: the loss is -mean(log_probs * advantage) with advantage = "
                    "returns - values (minimising it performs gradient ascent on J). Check both the minus in front "
                    "and the order returns - values."),
        "ent_sign": (pi + vc * vl + ec * h,
                     "the entropy bonus has the wrong sign: subtract entropy_coef * mean(entropy) so that "
                     "minimising the loss raises the entropy."),
        "no_value_coef": (pi + vl - ec * h, "multiply the critic's squared error by value_coef."),
        "no_entropy": (pi + vc * vl, "the entropy term is missing: - entropy_coef * mean(entropy)."),
        "no_value": (pi - ec * h, "the critic's term value_coef * mean((returns - values)^2) is missing."),
        "half_mse": (pi + 0.5 * vc * vl - ec * h, "the critic term is value_coef * mean((returns - values)^2), "
                     "without an extra factor 1/2."),
        "abs_error": (pi + vc * (ret - v).abs().mean() - ec * h,
                      "the critic term squares the error: mean((returns - values)^2), not the absolute value."),
        "sum": (-(logp * adv).sum() + vc * (ret - v).pow(2).sum() - ec * ent.sum(),
                "use means over the batch, not sums (the step size would grow with the batch size)."),
    }
    if len(adv) > 1:
        mistakes["normalized"] = (
            -(logp * (adv - adv.mean()) / (adv.std() + 1e-8)).mean() + vc * vl - ec * h,
            "this loss uses the raw advantage returns - values; normalising the advantages is an option of the "
            "training loop, not part of a2c_loss.")
    return mistakes


@checker("a2c_loss")
def check_a2c_loss(fn) -> None:
    """Check `fn(log_probs, values, returns, entropy, value_coef, entropy_coef)`: the value of the loss, and its
    gradients (the advantage must be a constant: no gradient may reach `values` through the policy term)."""
    c = Check("a2c_loss")
    cases = _loss_cases()
    for name, (logp, v, ret, ent), vc, ec in cases:
        b = len(logp)
        case = (f"{name}: log_probs={logp.tolist()}, values={v.tolist()}, returns={ret.tolist()}, "
                f"entropy={ent.tolist()}, value_coef={vc}, entropy_coef={ec}" if b <= 3 else
                f"{name} (random tensors of shape ({b},)), value_coef={vc}, entropy_coef={ec}")
        leaves = [x.clone().requires_grad_(True) for x in (logp, v, ent)]
        lp, vv, en = leaves
        got = c.call(fn, lp, vv, ret.clone(), en, vc, ec, case=case)
        expected = _a2c_loss(logp, v, ret, ent, vc, ec)
        c.expect_tensor(got, expected, case=case, mistakes=_loss_mistakes(logp, v, ret, ent, vc, ec))
        _check_gradients(c, got, leaves, (logp, v, ret, ent), vc, ec, case)
    c.passed(f"{len(cases)} batches from 1 to 256: loss value and gradients, advantage held constant")


def _check_gradients(c: Check, got, leaves, data, vc, ec, case) -> None:
    logp, v, ret, ent = data
    b = len(logp)
    if not got.requires_grad:
        c.fail(case, "a loss that gradients flow through", "a tensor with requires_grad=False",
               hint="the result is cut off from the inputs: build it from the tensors with torch operations "
                    "(no .item(), .numpy() or .detach() on log_probs, values or entropy).")
    for x in leaves:
        x.grad = None
    got.backward()
    names = ("log_probs", "values", "entropy")
    expected = (-(ret - v) / b, 2 * vc * (v - ret) / b, torch.full((b,), -ec / b))
    for name, x, e in zip(names, leaves, expected):
        g = x.grad if x.grad is not None else torch.zeros_like(x)
        if torch.allclose(g, e.to(g.dtype), rtol=1e-4, atol=1e-6):
            continue
        hint = f"the gradient of your loss with respect to `{name}` is wrong."
        if name == "values" and torch.allclose(g, (e + logp / b).to(g.dtype), rtol=1e-4, atol=1e-6):
            hint = ("gradient flows from the policy term into `values`: the advantage must be a constant there. "
                    "Use advantage = (returns - values).detach().")
        elif x.grad is None:
            hint = f"no gradient reaches `{name}`: did you .detach() it (only the advantage is detached)?"
        c.fail(f"{case} (gradient with respect to {name})", e, g, hint=hint)


# --- a2c_update (build-it): the whole A2C update on a (T, N) rollout ------------------------------------------------
A2C_UPDATE_KEYS = ("policy_loss", "value_loss", "entropy", "grad_norm")
A2C_BUDGET, A2C_SEEDS = 100_000, (0, 1, 2)  # layer 3: CartPole-v1 475 within this many env steps on one of these seeds


def _a2c_returns(ro, gamma: float, bug: str | None) -> np.ndarray:
    """n-step returns R_t (T, N) read off the rollout by a loop over t, with one bug where asked."""
    r, term, trunc, valid = ro.rewards, ro.terminated, ro.truncated, ro.valid
    v = ro.values.double().numpy()
    nxt = np.zeros(r.shape[1]) if bug == "no_bootstrap" else np.asarray(ro.last_value, dtype=np.float64)
    R = np.zeros(r.shape)
    for t in reversed(range(r.shape[0])):
        if bug == "ignore_ends":
            R[t] = r[t] + gamma * nxt
        elif bug == "autoreset_as_step":
            R[t] = r[t] + gamma * (1.0 - term[t]) * nxt
        else:
            d = term[t] | trunc[t] if bug == "trunc_as_term" else term[t - 1] if bug == "shifted_done" and t else \
                np.zeros_like(term[t]) if bug == "shifted_done" else term[t]
            # an autoreset step holds V(final obs of the episode before it): what a truncated step bootstraps from
            R[t] = np.where(valid[t], r[t] + gamma * (1.0 - d) * nxt, v[t])
        nxt = R[t]
    return R


def _a2c_variant(model, opt, ro, cfg, bug: str | None = None) -> dict:
    """The A2C update written out step by step (independently of `lecturekit.algos.a2c`), with one bug if asked."""
    R = torch.as_tensor(_a2c_returns(ro, cfg.gamma, bug), dtype=torch.float32)
    m = torch.ones(ro.valid.shape, dtype=torch.bool) if bug == "no_mask" else torch.as_tensor(ro.valid)
    obs, act = ro.obs[m], ro.actions[m]
    logp, v, ent = model.log_prob(obs, act), model.value(obs), model.entropy(obs)
    ret = R[m]
    adv = ret - (v if bug == "adv_with_grad" else ro.values[m])
    if bug == "normalize_all":
        full = (R - ro.values)
        adv = ((full - full.mean()) / (full.std() + 1e-8))[m]
    elif cfg.normalize_adv and bug != "no_normalize":
        adv = (adv - adv.mean()) / (adv.std(unbiased=bug != "population_std") + 1e-8)
    if bug == "mean_over_all":  # masked sums divided by T * N instead of the number of valid steps
        n_all = ro.valid.size
        pi_l = -(logp * adv.detach()).sum() / n_all
        v_l = (v - ret).pow(2).sum() / n_all
        ent_m = ent.sum() / n_all
    else:
        pi_l = -(logp * (adv if bug == "adv_with_grad" else adv.detach())).mean()
        v_l = (v - ret).pow(2).mean()
        ent_m = ent.mean()
    if bug == "pl_sign":
        pi_l = -pi_l
    c_v = 1.0 if bug == "no_value_coef" else cfg.value_coef
    c_h = -cfg.entropy_coef if bug == "ent_sign" else 0.0 if bug == "no_entropy" else cfg.entropy_coef
    loss = pi_l + c_v * v_l - c_h * ent_m
    if bug != "no_zero_grad":
        opt.zero_grad()
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
    if cfg.max_grad_norm and bug not in ("no_clip", "clip_value", "clip_per_group"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    elif cfg.max_grad_norm and bug == "clip_value":
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.max_grad_norm)
    elif cfg.max_grad_norm and bug == "clip_per_group":
        for part in (model.pi, model.v):
            torch.nn.utils.clip_grad_norm_(part.parameters(), cfg.max_grad_norm)
    opt.step()
    return {"policy_loss": pi_l.item(), "value_loss": v_l.item(), "entropy": ent_m.item(), "grad_norm": norm}


A2C_MISTAKES = {
    "no_zero_grad": "the gradients of the previous update were still in .grad: call opt.zero_grad() before "
                    "loss.backward() (backward adds to .grad, it does not overwrite it).",
    "trunc_as_term": "a truncated episode (time limit) was treated as terminated: its return must bootstrap from "
                     "V(final observation), which is the value stored on the autoreset step after it; only "
                     "`terminated` cuts the return.",
    "ignore_ends": "the returns flow across episode ends: an episode that terminates at step t must not receive "
                   "anything from step t + 1 (R_t = r_t + gamma (1 - terminated_t) R_{t+1}), and an autoreset step "
                   "starts over from V(final observation).",
    "autoreset_as_step": "an autoreset step (valid == False) was treated as an ordinary step with reward 0, so the "
                         "next episode's return flowed into the one before it: on that step the return restarts "
                         "from V(final observation), the value stored there (a truncated step then bootstraps from "
                         "it).",
    "shifted_done": "off by one: the return of step t must be cut by terminated[t] (this step ended the episode), "
                    "not terminated[t - 1].",
    "no_bootstrap": "the last return must bootstrap from the critic: R_T = last_value (V of the observation after "
                    "the last step), not 0; the rollout stops in the middle of episodes.",
    "no_mask": "the autoreset steps (valid == False) are in your losses: they belong to no episode (their action was "
               "ignored and their reward is 0); keep only ro.valid steps.",
    "normalize_all": "normalise the advantages over the valid steps only (mean and std of the B valid entries), not "
                     "over all T x N entries including the autoreset steps.",
    "no_normalize": "cfg.normalize_adv is True: standardise the advantages, (A - mean) / (std + 1e-8), before the "
                    "policy loss.",
    "adv_with_grad": "the advantage carries gradient into the critic: in the policy loss A_t = R_t - V(s_t) must be a "
                     "constant (.detach(), or use the values stored in the rollout); the critic learns only from its "
                     "own squared error.",
    "mean_over_all": "average over the valid steps (B of them), not over all T x N entries: a masked sum divided by "
                     "T * N makes every loss smaller by B / (T N).",
    "pl_sign": "the policy loss has the wrong sign: minimising -mean(log pi(a|s) A) climbs the policy gradient.",
    "no_value_coef": "the critic's term is weighted by cfg.value_coef: loss = policy_loss + value_coef * value_loss "
                     "- entropy_coef * entropy.",
    "ent_sign": "the entropy bonus has the wrong sign: subtract entropy_coef * mean(H) from the loss (minimising it "
                "then keeps the policy exploring).",
    "no_entropy": "the entropy bonus is missing: loss = ... - cfg.entropy_coef * mean(H(pi(.|s_t))).",
    "no_clip": "the gradient was not clipped: after loss.backward() and before opt.step(), "
               "torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm) (clipping after step() does "
               "nothing for this step).",
    "clip_value": "clip the global *norm* of all gradients together (clip_grad_norm_), not each entry "
                  "(clip_grad_value_).",
    "clip_per_group": "clip the global norm of all the model's gradients together (actor and critic in one call), "
                      "not the actor's and the critic's separately.",
}

A2C_GROUP_HINTS = {
    "critic": "The critic's gradient comes from value_coef * mean((V(s_t) - R_t)^2) over the valid steps: check the "
              "n-step returns R_t (bootstrap from last_value, terminated cuts, truncated bootstraps, autoreset steps) "
              "and the value loss.",
    "actor": "The actor's gradient comes from -mean(log pi(a_t|s_t) A_t) - entropy_coef * mean(H): check the "
             "advantages A_t = R_t - V(s_t) (constants, standardised over the valid steps), the sign and the "
             "entropy term.",
    "steps": "A2C takes exactly one opt.step() per rollout.",
    "scale": "look for a factor: value_coef, a mean taken over the wrong number of steps, or the gradient clipping "
             "(the global norm of all parameters, to cfg.max_grad_norm).",
}

A2C_STAT_HINTS = {
    "grad_norm": "grad_norm is the global norm of all gradients *before* clipping (clip_grad_norm_ returns it).",
    "policy_loss": "policy_loss is -mean(log pi(a|s) A) with the (standardised) advantages, without the other terms.",
    "value_loss": "value_loss is mean((V(s) - R)^2) over the valid steps, without value_coef.",
    "entropy": "entropy is the mean entropy of pi(.|s) over the valid steps.",
}


def _a2c_trial(cfg, seed: int):
    from lecturekit.course.updatecheck import Trial, cartpole_spaces, synthetic_rollout, warm_up
    from lecturekit.nets import ActorCritic

    def make():
        model = ActorCritic(*cartpole_spaces(), hidden=(32, 32), generator=torch.Generator().manual_seed(seed))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        warm_up([opt], seed)
        ro = synthetic_rollout(model, cfg.n_steps, cfg.n_envs, seed)
        return Trial(args=(model, opt, ro, cfg), groups={"actor": model.pi, "critic": model.v},
                     optimizers={"opt": opt}, inputs={"ro": ro})

    return make


@checker("a2c_update")
def check_a2c_update(fn, train: bool = True) -> None:
    """Check `fn(model, opt, ro, cfg) -> dict`, the A2C update on a (T, N) rollout, in three layers: one update on
    fixed rollouts matches the reference (`lecturekit.algos.a2c.update`) within a relative 1e-4 on every gradient,
    parameter change and Adam state; the known silent bugs are named; and with `train=True` it trains CartPole-v1 to
    475 through `a2c.train(..., update=fn)` within A2C_BUDGET steps on one of A2C_SEEDS."""
    from functools import partial

    from lecturekit.algos import a2c
    from lecturekit.course.updatecheck import Mistake, check_training, check_update, train_with, trained
    from lecturekit.evaluation import Run

    c = Check("a2c_update")
    mistakes = [Mistake(k, partial(_a2c_variant, bug=k), h) for k, h in A2C_MISTAKES.items()]
    accepted = [partial(_a2c_variant, bug="population_std")]  # std without Bessel's correction: as good
    trials = [
        ("one update on a rollout of T=16 steps in N=8 CartPole copies (terminations, truncations, autoreset steps)",
         a2c.A2CConfig(n_envs=8, n_steps=16, entropy_coef=0.01, max_grad_norm=0.5, lr=2e-3), 1),
        ("one update with normalize_adv=False, max_grad_norm=0 (no clipping), T=10, N=6",
         a2c.A2CConfig(n_envs=6, n_steps=10, entropy_coef=0.02, normalize_adv=False, max_grad_norm=0.0, lr=1e-3), 2),
    ]
    for case, cfg, seed in trials:
        check_update(c, fn, a2c.update, _a2c_trial(cfg, seed), case=case, mistakes=mistakes, accepted=accepted,
                     stats_keys=A2C_UPDATE_KEYS, group_hints=A2C_GROUP_HINTS, stat_hints=A2C_STAT_HINTS)
    summary = f"{len(trials)} one-update checks, {len(mistakes)} known mistakes ruled out"
    if train:
        run = lambda s: Run(steps=A2C_BUDGET, seed=s, target=475.0, eval_every=2048)  # noqa: E731
        result = check_training(c, lambda s: train_with(a2c, "CartPole-v1", a2c.A2CConfig(), run(s), fn),
                                seeds=A2C_SEEDS, budget=A2C_BUDGET, target=475.0, task="CartPole-v1")
        summary += "; " + trained(result)
    c.passed(summary)

