"""Returns, GAE and the on-policy rollout (lecturekit.returns, lecturekit.rollout) against hand-worked numbers and a
brute-force walk through the episodes of a real rollout."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from lecturekit.envs import make_vec
from lecturekit.nets import ActorCritic
from lecturekit.returns import bootstrapped_returns, discounted_returns, gae
from lecturekit.rollout import Rollout, collect, start

torch.set_num_threads(1)


# --- bootstrapped_returns ---------------------------------------------------------------------------------------
def test_bootstrapped_returns_hand_worked():
    # gamma 0.5, V(s_T) = 10:  R2 = 1 + 0.5 * 10 = 6,  R1 = 1 + 0.5 * 6 = 4,  R0 = 1 + 0.5 * 4 = 3
    r = bootstrapped_returns(np.ones((3, 1)), np.zeros((3, 1), bool), np.array([10.0]), 0.5)
    assert r.shape == (3, 1)
    np.testing.assert_allclose(r[:, 0], [3.0, 4.0, 6.0])


def test_bootstrapped_returns_termination_cuts_the_sum():
    # env 0 terminates at t = 1:  R2 = 3 + 0.5 * 8 = 7,  R1 = 2 (nothing after a terminal step),  R0 = 1 + 0.5 * 2 = 2
    # env 1 never terminates:     R2 = 0 + 0.5 * 4 = 2,  R1 = 0 + 0.5 * 2 = 1,  R0 = 4 + 0.5 * 1 = 4.5
    rewards = np.array([[1.0, 4.0], [2.0, 0.0], [3.0, 0.0]])
    term = np.array([[0, 0], [1, 0], [0, 0]], bool)
    r = bootstrapped_returns(rewards, term, np.array([8.0, 4.0]), 0.5)
    np.testing.assert_allclose(r, [[2.0, 4.5], [2.0, 1.0], [7.0, 2.0]])


def test_bootstrapped_returns_terminal_last_step_ignores_last_value():
    r = bootstrapped_returns(np.array([[1.0]]), np.array([[True]]), np.array([100.0]), 0.9)
    assert r.tolist() == [[1.0]]


def test_bootstrapped_returns_gamma_one_and_zero():
    rewards = np.arange(1.0, 5.0).reshape(4, 1)
    no_term = np.zeros((4, 1), bool)
    # gamma 1: plain sums plus V(s_T) = 5
    np.testing.assert_allclose(bootstrapped_returns(rewards, no_term, np.array([5.0]), 1.0)[:, 0], [15, 14, 12, 9])
    # gamma 0: the reward alone
    np.testing.assert_allclose(bootstrapped_returns(rewards, no_term, np.array([5.0]), 0.0)[:, 0], [1, 2, 3, 4])


def test_bootstrapped_returns_zero_last_value_equals_discounted_returns():
    rng = np.random.default_rng(0)
    rew = rng.normal(size=7)
    r = bootstrapped_returns(rew[:, None], np.zeros((7, 1), bool), np.zeros(1), 0.9)
    np.testing.assert_allclose(r[:, 0], discounted_returns(rew, 0.9))


def test_bootstrapped_returns_does_not_modify_inputs_and_checks_shapes():
    rewards, term, last = np.ones((2, 3)), np.zeros((2, 3), bool), np.ones(3)
    bootstrapped_returns(rewards, term, last, 0.9)
    assert rewards.tolist() == np.ones((2, 3)).tolist() and last.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="2-D"):
        bootstrapped_returns(np.ones(3), np.zeros(3, bool), np.ones(1), 0.9)
    with pytest.raises(ValueError, match="last_value"):
        bootstrapped_returns(rewards, term, np.ones(2), 0.9)


# --- GAE --------------------------------------------------------------------------------------------------------
def test_gae_hand_worked():
    # gamma 0.5, lam 0.5, V = [1, 2], V(s_T) = 4, r = [0, 1]
    # delta1 = 1 + 0.5 * 4 - 2 = 1;  delta0 = 0 + 0.5 * 2 - 1 = 0
    # A1 = 1;  A0 = delta0 + 0.25 * A1 = 0.25
    a = gae(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]), np.zeros((2, 1), bool), np.array([4.0]), 0.5, 0.5)
    np.testing.assert_allclose(a[:, 0], [0.25, 1.0])


def test_gae_limits_td_error_and_nstep_return():
    rng = np.random.default_rng(1)
    T, N, gamma = 6, 3, 0.9
    rew, val, last = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=N)
    term = rng.random((T, N)) < 0.3
    # lam = 1: bootstrapped return minus V
    np.testing.assert_allclose(gae(rew, val, term, last, gamma, 1.0),
                               bootstrapped_returns(rew, term, last, gamma) - val, atol=1e-12)
    # lam = 0: the one-step TD error r_t + gamma (1 - d_t) V_{t+1} - V_t
    next_v = np.vstack([val[1:], last[None]])
    np.testing.assert_allclose(gae(rew, val, term, last, gamma, 0.0), rew + gamma * (1 - term) * next_v - val)


# --- Rollout targets: truncation and autoreset steps, by hand -----------------------------------------------------
def hand_rollout(terminated_at_1: bool) -> Rollout:
    """T = 4, N = 1: the episode ends at t = 1 (terminated or truncated); t = 2 is the autoreset step whose stored
    value is V(final obs) = 5; a new episode runs at t = 3; V(s_T) = 2."""
    T = 4
    values = torch.tensor([[0.3], [0.7], [5.0], [0.1]])
    rewards = np.array([[1.0], [1.0], [0.0], [1.0]])
    term = np.zeros((T, 1), bool)
    trunc = np.zeros((T, 1), bool)
    (term if terminated_at_1 else trunc)[1, 0] = True
    valid = np.array([[True], [True], [False], [True]])
    return Rollout(torch.zeros(T, 1, 3), torch.zeros(T, 1, dtype=torch.long), torch.zeros(T, 1), values, rewards,
                   term, trunc, valid, np.array([2.0]))


def test_rollout_returns_truncation_bootstraps_from_final_observation():
    # R3 = 1 + 0.5 * 2 = 2;  R1 = 1 + 0.5 * V(final obs) = 1 + 2.5 = 3.5;  R0 = 1 + 0.5 * 3.5 = 2.75
    ret = hand_rollout(terminated_at_1=False).returns(0.5)
    assert ret.dtype == torch.float32 and ret.shape == (4, 1)
    np.testing.assert_allclose(ret[[0, 1, 3], 0].numpy(), [2.75, 3.5, 2.0])


def test_rollout_returns_termination_does_not_bootstrap():
    # R1 = 1;  R0 = 1 + 0.5 * 1 = 1.5;  R3 = 2 as before
    ret = hand_rollout(terminated_at_1=True).returns(0.5)
    np.testing.assert_allclose(ret[[0, 1, 3], 0].numpy(), [1.5, 1.0, 2.0])


def test_rollout_advantages_lambda_one_match_returns_minus_values_and_vanish_on_autoreset_steps():
    for terminated in (False, True):
        ro = hand_rollout(terminated)
        adv, ret = ro.advantages(0.5, 1.0)
        np.testing.assert_allclose(adv.numpy(), (ro.returns(0.5) - ro.values).numpy(), atol=1e-6)
        np.testing.assert_allclose(ret.numpy(), ro.returns(0.5).numpy(), atol=1e-6)
        assert adv[2, 0] == 0.0
    # truncated, lam = 0: A1 = r1 + gamma V(final obs) - V1 = 1 + 2.5 - 0.7
    adv, _ = hand_rollout(False).advantages(0.5, 0.0)
    assert adv[1, 0].item() == pytest.approx(2.8)


# --- collect on real environments, checked by walking through each episode ----------------------------------------
def brute_force_returns(ro: Rollout, gamma: float) -> np.ndarray:
    """For every valid (t, i): discounted rewards until the episode ends; then + gamma^k V(final obs) if it was
    truncated (the final obs is stored at the next, invalid, step), nothing if it terminated (termination wins when
    both flags are set), + gamma^k V(s_T) if the rollout ended first."""
    T, N = ro.rewards.shape
    v = ro.values.numpy()
    out = np.full((T, N), np.nan)
    for i in range(N):
        for t in range(T):
            if not ro.valid[t, i]:
                continue
            g, k = 0.0, 0
            for u in range(t, T):
                g += gamma ** k * ro.rewards[u, i]
                k += 1
                if ro.terminated[u, i]:
                    break
                if ro.truncated[u, i]:
                    g += gamma ** k * (v[u + 1, i] if u + 1 < T else ro.last_value[i])
                    break
            else:
                g += gamma ** k * ro.last_value[i]
            out[t, i] = g
    return out


@pytest.mark.parametrize("env_id,kwargs", [("CartPole-v1", {"max_episode_steps": 12}),
                                           ("Pendulum-v1", {"max_episode_steps": 7})])
def test_collect_returns_match_brute_force(env_id, kwargs):
    torch.manual_seed(0)
    envs = make_vec(env_id, 4, **kwargs)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space, hidden=(8,))
    with torch.no_grad():  # a critic that is far from zero, so a missing bootstrap shows
        model.v[-1].bias.fill_(3.0)
    state = start(envs, seed=0)
    ro = collect(envs, model, state, T=40)
    envs.close()
    T, N = 40, 4
    assert ro.obs.shape == (T, N, envs.single_observation_space.shape[0])
    assert ro.rewards.shape == ro.valid.shape == ro.terminated.shape == (T, N) and ro.last_value.shape == (N,)
    assert ro.truncated.any(), "the short time limit must truncate some episodes"
    if env_id == "CartPole-v1":
        assert ro.terminated.any()
    # an autoreset step follows every episode end and only there
    ended = ro.terminated | ro.truncated
    np.testing.assert_array_equal(ro.valid[1:], ~ended[:-1])
    assert (ro.rewards[~ro.valid] == 0).all()
    ret = ro.returns(0.9).numpy()
    expected = brute_force_returns(ro, 0.9)
    np.testing.assert_allclose(ret[ro.valid], expected[ro.valid], rtol=1e-5, atol=1e-4)
    # the stored log-probs are those of the stored actions under the policy
    with torch.no_grad():
        np.testing.assert_allclose(model.log_prob(ro.obs, ro.actions).numpy(), ro.logp.numpy(), rtol=1e-5, atol=1e-5)


def test_collect_continues_where_it_stopped():
    envs = make_vec("CartPole-v1", 2, max_episode_steps=5)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space, hidden=(8,))
    state = start(envs, seed=3)
    a = collect(envs, model, state, T=5)  # both episodes are truncated at the last step
    b = collect(envs, model, state, T=3)
    envs.close()
    assert a.truncated[-1].all() or a.terminated[-1].any()
    # the first step of the next rollout is the autoreset step of the episodes that ended
    np.testing.assert_array_equal(b.valid[0], ~(a.terminated[-1] | a.truncated[-1]))


def test_rollout_returns_termination_wins_when_both_flags_are_set():
    # the pole falls on the time limit's last step: the episode really ended, so no bootstrap: R1 = 1, R0 = 1.5
    ro = hand_rollout(terminated_at_1=True)
    ro.truncated[1, 0] = True
    np.testing.assert_allclose(ro.returns(0.5)[[0, 1], 0].numpy(), [1.5, 1.0])
