"""Stable-Baselines3 hyperparameters for `make compare`, copied from rl-baselines3-zoo.

Source: github.com/DLR-RM/rl-baselines3-zoo, commit 22e3ff2450fd92033f7f032915e1f64894a09584 (2026-04-23),
files hyperparams/ppo.yml and hyperparams/a2c.yml (entry CartPole-v1), hyperparams/sac.yml, hyperparams/td3.yml
and hyperparams/ddpg.yml (entry Pendulum-v1).  Written as the zoo writes them; `bench/compare.py` turns them into
SB3 arguments the way the zoo does ("lin_X": a learning rate or clip range falling linearly from X to 0 over
n_timesteps; noise_type "normal": NormalActionNoise with sigma noise_std on every action dimension).
policy_kwargs is the zoo's string "dict(net_arch=[400, 300])" written as the dict it means.  n_timesteps is SB3's
step budget (the zoo's) and sets the length of the linear schedules.
"""

ZOO_COMMIT = "22e3ff2450fd92033f7f032915e1f64894a09584"

HPARAMS = {
    # hyperparams/ppo.yml, CartPole-v1 ("# Tuned")
    ("ppo", "CartPole-v1"): dict(n_envs=8, n_timesteps=100_000, policy="MlpPolicy", n_steps=32, batch_size=256,
                                 gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate="lin_0.001",
                                 clip_range="lin_0.2"),
    # hyperparams/a2c.yml, CartPole-v1 (every other argument: SB3's A2C defaults)
    ("a2c", "CartPole-v1"): dict(n_envs=8, n_timesteps=500_000, policy="MlpPolicy", ent_coef=0.0),
    # hyperparams/sac.yml, Pendulum-v1
    ("sac", "Pendulum-v1"): dict(n_timesteps=20_000, policy="MlpPolicy", learning_rate=1e-3),
    # hyperparams/td3.yml, Pendulum-v1
    ("td3", "Pendulum-v1"): dict(n_timesteps=20_000, policy="MlpPolicy", gamma=0.98, buffer_size=200_000,
                                 learning_starts=10_000, noise_type="normal", noise_std=0.1, gradient_steps=1,
                                 train_freq=1, learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300])),
    # hyperparams/ddpg.yml, Pendulum-v1
    ("ddpg", "Pendulum-v1"): dict(n_timesteps=20_000, policy="MlpPolicy", gamma=0.98, buffer_size=200_000,
                                  learning_starts=10_000, noise_type="normal", noise_std=0.1, gradient_steps=1,
                                  train_freq=1, learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300])),
}
