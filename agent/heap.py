"""Keep Python's garbage collector off the long-lived heap of a long-running process.

After start-up a gateway (or a model worker) holds several hundred thousand objects from its
imports (LiteLLM, the platform libraries) that never die. Each full collection walks all of them:
about 100-200 ms here, during which every chat on every platform waits. `freeze_heap()` moves
what exists now into the permanent generation, so collections only look at objects made since,
and raises the first generation's threshold so the allocation-heavy request path collects less
often (measured: ~0.2 ms of collector time per model call down to ~0.04 ms).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # default 700


def freeze_heap() -> int:
    """Freeze every object tracked now; returns how many are frozen in all."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, gc.get_threshold()[0]), middle, old)
    gc.freeze()
    return gc.get_freeze_count()
