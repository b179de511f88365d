"""The agent: the LLM client, the tool-calling loop, tools, memory, checkpoint, trajectories, batch.

Imports `skills/`, never `gateway/` or `adapters/`: what happens during a turn is reported
through events (see `agent.events`) that the caller subscribes to.
"""
