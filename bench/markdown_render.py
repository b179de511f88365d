"""What rendering an answer's Markdown costs the gateway (gateway/markdown_html.py: markdown-it-py,
then the nh3 sanitizer), and what a streamed answer costs in all.

While an answer streams to the web chat (`X-Hermes-Events: html`) the gateway renders the whole
answer so far on the event loop, at most every 0.25 s and at most 5% of the time (HTML_EVERY,
HTML_SHARE in gateway/api/openai_compat.py), and once at the end. This prints the median time of
one rendering for answers of 1, 5, 20 and 100 KB (prose, lists, a table and code blocks, as models
write them), and for an answer of each size streamed at 50 tokens/s (about 200 characters/s) how
many renderings that schedule makes, their CPU time in all and its share of the stream's time.

    .venv/bin/python bench/markdown_render.py [--sizes 1,5,20,100] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.api.openai_compat import HTML_EVERY, HTML_SHARE  # noqa: E402
from gateway.markdown_html import to_html  # noqa: E402

BLOCK = """## Step {n}

Run the **checks** first, then `make release`; see [the guide](https://example.org/guide#{n}).

- one item with `code`
- another with *emphasis* and <b>raw html</b> shown as text

```python
def step_{n}(path: str) -> int:
    return len(open(path).read())  # {n}
```

| name | value |
| --- | ---: |
| a | {n} |

"""
CHARS_PER_SECOND = 200  # about 50 tokens a second


def answer(size: int) -> str:
    parts: list[str] = []
    n = 0
    while sum(map(len, parts)) < size:
        parts.append(BLOCK.format(n=n))
        n += 1
    return "".join(parts)[:size]


def median_ms(text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        to_html(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20,100", help="answer sizes in KB")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    to_html(answer(1000))  # warm up
    print(f"{'answer':>8} {'one render':>11} {'renders':>8} {'all renders':>12} {'share of stream time':>21}")
    for kb in (int(s) for s in args.sizes.split(",")):
        text = answer(kb * 1000)
        one = median_ms(text, args.repeat)
        seconds = len(text) / CHARS_PER_SECOND
        # replay the stream on a simulated clock: the renderings the gateway's schedule would make
        clock, render_next, renders, total = 0.0, 0.0, 0, 0.0
        while clock < seconds:
            if clock >= render_next:
                start = time.process_time()
                to_html(text[: int(clock * CHARS_PER_SECOND)])
                took = time.process_time() - start
                render_next = clock + max(HTML_EVERY, took / HTML_SHARE)
                renders += 1
                total += took * 1000
            clock += 0.05  # a delta every 50 ms
        start = time.process_time()
        to_html(text)  # the last one, when the answer is complete
        total += (time.process_time() - start) * 1000
        renders += 1
        print(f"{kb:>6} KB {one:>8.2f} ms {renders:>8} {total:>9.0f} ms {100 * total / (seconds * 1000):>20.2f}%")


if __name__ == "__main__":
    main()
