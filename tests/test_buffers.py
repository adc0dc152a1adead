"""Replay buffer: ring wrap-around, batched adds, sampling shapes/dtypes/uniformity, terminated vs truncated."""
import numpy as np
import pytest
import torch

from lecturekit.buffers import Batch, ReplayBuffer
from lecturekit.offpolicy import td_target


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def filled(capacity, n, obs_dim=2, act_dim=1):
    """Buffer after n single adds of transition i: obs = (i, -i), action = i/10, reward = i, next_obs = obs + 1."""
    buf = ReplayBuffer(obs_dim, act_dim, capacity)
    for i in range(n):
        buf.add([i, -i], [i / 10], float(i), [i + 1, -i + 1], False)
    return buf


def test_fills_in_order_before_wrapping():
    buf = filled(5, 3)
    assert len(buf) == 3 and buf.ptr == 3
    assert buf.obs[:3, 0].tolist() == [0, 1, 2]
    assert buf.reward[:3].tolist() == [0, 1, 2]


def test_wrap_around_overwrites_the_oldest():
    # capacity 5, 7 adds: slots 0 and 1 were overwritten by transitions 5 and 6; the next add goes to slot 2
    buf = filled(5, 7)
    assert len(buf) == 5 and buf.ptr == 2
    assert buf.obs[:, 0].tolist() == [5, 6, 2, 3, 4]
    assert buf.next_obs[:, 0].tolist() == [6, 7, 3, 4, 5]
    assert buf.action[:, 0].tolist() == pytest.approx([0.5, 0.6, 0.2, 0.3, 0.4])


def test_batched_add_wraps_around():
    # capacity 5: a batch of 3 fills slots 0-2, a batch of 4 fills 3, 4 and wraps to 0, 1
    buf = ReplayBuffer(1, 1, 5)
    buf.add(np.array([[0.], [1.], [2.]]), np.zeros((3, 1)), [0, 1, 2], np.zeros((3, 1)), [0, 0, 1])
    buf.add(np.array([[3.], [4.], [5.], [6.]]), np.zeros((4, 1)), [3, 4, 5, 6], np.zeros((4, 1)), [1, 0, 0, 0])
    assert buf.obs[:, 0].tolist() == [5, 6, 2, 3, 4]
    assert buf.reward.tolist() == [5, 6, 2, 3, 4]
    assert buf.terminated.tolist() == [0, 0, 1, 1, 0]
    assert (len(buf), buf.ptr) == (5, 2)


def test_batch_larger_than_capacity_keeps_the_newest():
    buf = ReplayBuffer(1, 1, 3)
    buf.add(np.arange(7.0)[:, None], np.zeros((7, 1)), np.arange(7.0), np.zeros((7, 1)), np.zeros(7))
    assert sorted(buf.obs[:, 0].tolist()) == [4, 5, 6]
    assert len(buf) == 3


def test_sample_shapes_and_dtypes():
    buf = ReplayBuffer(3, 2, 100)
    # inputs of other dtypes (float64, int, bool) are stored as float32
    buf.add(np.ones((10, 3)), np.ones((10, 2), dtype=np.int64), np.arange(10), np.ones((10, 3)),
            np.zeros(10, dtype=bool), np.ones(10, dtype=bool))
    b = buf.sample(32, gen())
    assert isinstance(b, Batch)
    assert b.obs.shape == (32, 3) and b.next_obs.shape == (32, 3) and b.action.shape == (32, 2)
    assert b.reward.shape == (32,) and b.terminated.shape == (32,) and b.truncated.shape == (32,)
    assert all(t.dtype == torch.float32 for t in b)
    assert buf.obs.dtype == np.float32 and buf.terminated.dtype == np.float32


def test_samples_only_stored_transitions_uniformly():
    buf = filled(1000, 10)
    idx = buf.sample(20_000, gen()).reward.numpy().astype(int)  # reward i identifies transition i
    assert set(idx.tolist()) == set(range(10))  # never the empty slots
    counts = np.bincount(idx, minlength=10)
    # 2000 expected per transition, binomial std about 42: 5 std is 212
    assert np.all(np.abs(counts - 2000) < 212), counts


def test_sampling_draws_from_the_generator_it_is_handed():
    buf = filled(50, 20)
    state = torch.random.get_rng_state()
    assert torch.equal(buf.sample(8, gen(3)).obs, buf.sample(8, gen(3)).obs)
    assert not torch.equal(buf.sample(8, gen(3)).obs, buf.sample(8, gen(4)).obs)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator was not used


def test_sampled_rows_stay_consistent():
    # obs, action, reward and next_obs of a sampled row come from the same transition
    b = filled(8, 13).sample(64, gen())
    i = b.reward
    assert torch.equal(b.obs[:, 0], i) and torch.equal(b.obs[:, 1], -i)
    assert torch.allclose(b.action[:, 0], i / 10) and torch.equal(b.next_obs[:, 0], i + 1)


def test_terminated_stops_the_bootstrap_but_truncated_does_not():
    buf = ReplayBuffer(1, 1, 4)
    buf.add([0.0], [0.0], 1.0, [1.0], terminated=True, truncated=False)   # the MDP ended
    buf.add([0.0], [0.0], 1.0, [1.0], terminated=False, truncated=True)   # a time limit cut the episode
    assert buf.terminated[:2].tolist() == [1, 0] and buf.truncated[:2].tolist() == [0, 1]
    b = Batch(*(torch.from_numpy(a[:2]) for a in
                (buf.obs, buf.action, buf.reward, buf.next_obs, buf.terminated, buf.truncated)))
    # y = r + 0.9 * (1 - terminated) * Q(s') with Q(s') = 10: 1 for the terminal step, 1 + 9 = 10 for the truncated one
    y = td_target(b.reward, b.terminated, torch.full((2,), 10.0), 0.9)
    assert y.tolist() == pytest.approx([1.0, 10.0])


def test_truncated_defaults_to_false_and_empty_sample_is_an_error():
    buf = ReplayBuffer(1, 1, 4)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1, gen())
    buf.add([0.0], [0.0], 0.0, [0.0], False)
    assert buf.truncated[0] == 0.0
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(1, 1, 0)
