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
    ### BEGIN SOLUTION
    r = np.asarray(rewards, dtype=float)
    G = np.zeros_like(r)
    running = 0.0
    for t in reversed(range(len(r))):
        running = r[t] + gamma * running
        G[t] = running
    return G
    ### END SOLUTION


# %%
check_discounted_returns(discounted_returns)

# %% [markdown]
# **Think about it.** For CartPole (reward 1 per step), what is $G_0$ of a 500-step episode with $\gamma = 0.99$?
# Why does the discount make late rewards count so little for the first action?

# %% tags=["uses-answer"]
print(discounted_returns(np.ones(500), 0.99)[0])

# %% [markdown] tags=["answer"]
# **Answer.** $G_0 = \sum_{k=0}^{499} 0.99^k = (1 - 0.99^{500}) / (1 - 0.99) \approx 99.3$, not 500. The reward at
# step $k$ is weighted by $0.99^k$: the last one by $0.99^{499} \approx 0.0066$. A discount $\gamma$ makes the
# first action "see" roughly $1/(1-\gamma) = 100$ steps ahead; what happens later is almost invisible to it, which
# is also why a smaller $\gamma$ gives lower-variance but more short-sighted returns.
