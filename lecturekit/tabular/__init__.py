"""Exact tabular material: a small MDP with exact J, gradient, Q, V and visitation (`mdp`), and the score-function
estimator with and without baselines measured against it (`estimators`)."""
