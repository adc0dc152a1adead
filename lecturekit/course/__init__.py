"""The course's own tooling: exercise checkers and their machinery, live widgets, grading, the static site,
notebook authoring and the command line.  Nothing here is reinforcement learning; the RL library is one level up."""
