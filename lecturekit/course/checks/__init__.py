"""Exercise checkers: `check_<exercise>(fn)` for every exercise of the course.

One module per exercise notebook, named after it (`reinforce.py` serves `exercises/ex02_reinforce`).  The list
below is the registry: notebooks write `from lecturekit.checks import check_discounted_returns` (the short path
`lecturekit/checks.py` re-exports this package).
"""
from __future__ import annotations

from lecturekit.course.checking import CheckFailed

from lecturekit.course.checks.discounted_returns import check_discounted_returns  # ex00
from lecturekit.course.checks.scores_and_search import check_softmax_score, check_gaussian_log_prob, check_finite_difference_gradient, check_cem_update  # ex01
from lecturekit.course.checks.reinforce import check_reinforce_loss, check_gaussian_policy_gradient  # ex02
from lecturekit.course.checks.actor_critic import check_bootstrapped_returns, check_a2c_loss  # ex03
# build-it exercises (whole updates): one import line per exercise notebook, appended
from lecturekit.course.checks.reinforce import check_collect_episodes, check_reinforce_update  # ex02
from lecturekit.course.checks.actor_critic import check_a2c_update  # ex03
from lecturekit.course.checks.trpo import check_fisher_vector_product, check_trpo_update  # ex04
from lecturekit.course.checks.ppo import check_ppo_update  # ex05
from lecturekit.course.checks.td3 import check_td3_update  # ex06
from lecturekit.course.checks.sac import check_sac_update  # ex07
from lecturekit.course.checks.trpo import check_kl_categorical, check_conjugate_gradient, check_trpo_line_search  # ex04
from lecturekit.course.checks.ppo import check_gae, check_ppo_clip_loss, check_clipping_case  # ex05
from lecturekit.course.checks.td3 import check_td3_target, check_polyak_update  # ex06
from lecturekit.course.checks.sac import (  # ex07
    check_sac_actor_loss, check_sac_critic_target, check_squashed_gaussian_log_prob, check_temperature_loss)

__all__ = [
    "CheckFailed", "check_discounted_returns", "check_softmax_score", "check_gaussian_log_prob",
    "check_finite_difference_gradient", "check_cem_update", "check_reinforce_loss",
    "check_gaussian_policy_gradient", "check_bootstrapped_returns", "check_a2c_loss", "check_kl_categorical",
    "check_conjugate_gradient", "check_trpo_line_search", "check_gae", "check_ppo_clip_loss",
    "check_clipping_case", "check_td3_target", "check_polyak_update", "check_squashed_gaussian_log_prob",
    "check_sac_critic_target", "check_sac_actor_loss", "check_temperature_loss",
    # build-it exercises (whole updates)
    "check_collect_episodes", "check_reinforce_update", "check_a2c_update", "check_fisher_vector_product",
    "check_trpo_update", "check_ppo_update", "check_td3_update", "check_sac_update",
]
