"""Reinforcement learning on our own tasks: an Atropos environment over the real agent loop.

`agent.rl.tokens` needs nothing beyond the agent; `agent.rl.env` imports atroposlib (the `[rl]`
extra), so only `hermes rl` imports it, lazily.
"""
