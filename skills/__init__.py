"""The skill library: SKILL.md documents (Agent Skills format), validation, history, search,
the hub and the guard. Imports nothing from `agent/`, `gateway/` or `adapters/`."""
