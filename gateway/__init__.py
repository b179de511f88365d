"""The Hermes gateway process: configuration, sessions, delivery, scheduler, CLI and web surfaces.

This package wires `agent/`, `skills/` and `adapters/` together. Nothing here imports a model
or platform library at import time: those are loaded when a command needs them.
"""

__version__ = "0.1.0"
