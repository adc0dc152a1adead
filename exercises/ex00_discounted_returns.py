# %% [markdown]
# # Exercise 00 · Discounted returns
#
# *Time: about 15 minutes for a student who followed the lecture (one function of about 7 lines and one question;
# an estimate from working it from the stub, see the course map). The check takes well under a second. Difficulty 1
# of 5.*
#
# Lecture: "REINFORCE", the return-to-go. For one episode with rewards $r_0, \dots, r_{T-1}$, the return from
# step $t$ on is
#
# $$G_t = \sum_{k=t}^{T-1} \gamma^{\,k-t} r_k = r_t + \gamma\, G_{t+1}, \qquad G_T = 0.$$
#
# Write `discounted_returns(rewards, gamma)`. Then run the check cell below it: it says either what passed or
# the smallest input on which your answer is wrong, with the expected and the returned value and a hint.

# %%
import numpy as np

from lecturekit.checks import check_discounted_returns


# %%
def discounted_returns(rewards, gamma):
    """Returns-to-go of one episode.

    rewards: a list or 1-D NumPy array of length T (the values may be ints).
    gamma:   the discount factor, 0 <= gamma <= 1.
    Returns a new float NumPy array G of shape (T,) with G[t] = sum_{k >= t} gamma**(k - t) * rewards[k].
    Must not modify `rewards`.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_discounted_returns(discounted_returns)

# %% [markdown]
# **Think about it.** For CartPole (reward 1 per step), what is $G_0$ of a 500-step episode with $\gamma = 0.99$?
# Why does the discount make late rewards count so little for the first action?

# %% tags=["uses-answer"]
print(discounted_returns(np.ones(500), 0.99)[0])
