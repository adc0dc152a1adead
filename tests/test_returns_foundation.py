"""discounted_returns against hand-worked numbers and the definition."""
import numpy as np
import pytest

from lecturekit.returns import discounted_returns


def test_discounted_returns_hand_worked():
    # G2 = 1, G1 = 0 + 0.5 * 1 = 0.5, G0 = 2 + 0.5 * 0.5 = 2.25
    assert discounted_returns([2, 0, 1], gamma=0.5).tolist() == [2.25, 0.5, 1.0]


def test_discounted_returns_matches_definition_and_keeps_input():
    rng = np.random.default_rng(1)
    r = rng.normal(size=30)
    before = r.copy()
    gamma = 0.9
    expected = [sum(gamma ** (k - t) * r[k] for k in range(t, 30)) for t in range(30)]
    np.testing.assert_allclose(discounted_returns(r, gamma), expected, rtol=1e-12)
    np.testing.assert_array_equal(r, before)


def test_discounted_returns_int_rewards_give_floats_and_edge_cases():
    g = discounted_returns([1, 1], 1.0)
    assert g.dtype == np.float64 and g.tolist() == [2.0, 1.0]
    assert discounted_returns([], 0.9).shape == (0,)
    assert discounted_returns([3.0, 4.0], 0.0).tolist() == [3.0, 4.0]


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), 5.0])
def test_discounted_returns_rejects_non_episodes(bad):
    with pytest.raises(ValueError, match="1-D"):
        discounted_returns(bad, 0.9)


def test_discounted_returns_rejects_bad_gamma():
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns([1.0], 1.5)
