"""Exercise checkers: `check_<exercise>(fn)` for every exercise of the course.

One module per exercise notebook, named after it (`reinforce.py` serves `exercises/ex02_reinforce`).  The imports
below are the registry, one block per exercise notebook in course order; notebooks write
`from lecturekit.checks import check_discounted_returns` (`lecturekit/checks.py` re-exports this package).
"""
from __future__ import annotations

from lecturekit.course.checking import CheckFailed
from lecturekit.course.checks.discounted_returns import check_discounted_returns  # ex00
from lecturekit.course.checks.scores_and_search import (  # ex01
    check_softmax_score, check_gaussian_log_prob, check_finite_difference_gradient, check_cem_update,
    check_log_derivative_gradient)
from lecturekit.course.checks.reinforce import (  # ex02
    check_reinforce_loss, check_gaussian_policy_gradient, check_score_estimator_moments, check_score_gradient_samples,
    check_collect_episodes, check_reinforce_update)
from lecturekit.course.checks.actor_critic import check_bootstrapped_returns, check_a2c_loss, check_a2c_update  # ex03
from lecturekit.course.checks.trpo import (  # ex04
    check_kl_categorical, check_conjugate_gradient, check_trpo_line_search, check_tabular_fisher,
    check_natural_gradient_step, check_fisher_vector_product, check_trpo_update)
from lecturekit.course.checks.ppo import (  # ex05
    check_gae, check_ppo_clip_loss, check_clipping_case, check_n_step_advantage, check_ppo_update)
from lecturekit.course.checks.td3 import (  # ex06
    check_td3_target, check_polyak_update, check_dpg_actor_loss, check_td3_update)
from lecturekit.course.checks.sac import (  # ex07
    check_squashed_gaussian_log_prob, check_sac_critic_target, check_sac_actor_loss, check_temperature_loss,
    check_reparameterized_sample, check_tanh_density, check_sac_update)
from lecturekit.course.checks.find_the_bug import (  # ex08
    check_fixed_reward_to_go, check_fixed_policy_loss, check_fixed_critic_loss)

__all__ = [
    "CheckFailed", "check_discounted_returns", "check_softmax_score", "check_gaussian_log_prob",
    "check_finite_difference_gradient", "check_cem_update", "check_log_derivative_gradient",
    "check_reinforce_loss", "check_gaussian_policy_gradient", "check_score_estimator_moments",
    "check_score_gradient_samples", "check_collect_episodes", "check_reinforce_update",
    "check_bootstrapped_returns", "check_a2c_loss", "check_a2c_update", "check_kl_categorical",
    "check_conjugate_gradient", "check_trpo_line_search", "check_tabular_fisher", "check_natural_gradient_step",
    "check_fisher_vector_product", "check_trpo_update", "check_gae", "check_ppo_clip_loss", "check_clipping_case",
    "check_n_step_advantage", "check_ppo_update", "check_td3_target", "check_polyak_update", "check_dpg_actor_loss",
    "check_td3_update", "check_squashed_gaussian_log_prob", "check_sac_critic_target", "check_sac_actor_loss",
    "check_temperature_loss", "check_reparameterized_sample", "check_tanh_density", "check_sac_update",
    "check_fixed_reward_to_go", "check_fixed_policy_loss", "check_fixed_critic_loss",
]
