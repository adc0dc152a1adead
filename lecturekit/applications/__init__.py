"""The lecture's applications built on the library: routing (attention pointer policy + REINFORCE) and Cliff
Walking (a REINFORCE preset).  Pricing and inventory are environments (`lecturekit.envs`) trained by the algorithms."""
