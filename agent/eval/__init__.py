"""Verifiable tasks: the `tasks.jsonl` format, laying out a task's workspace, and its verifier.

Shared by `hermes eval learning` (gateway/eval_learning.py) and the Atropos environment.
"""
