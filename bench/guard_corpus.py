"""The skills guard on its corpus: detection rate on the malicious samples, false positives on
the benign ones, and scan time. Usage: python bench/guard_corpus.py [--verbose]

A malicious sample counts as caught when the verdict is `dangerous` (it would be quarantined).
Targets: every malicious sample caught; at most 1 benign sample flagged dangerous.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skills.guard import scan_folder

CORPUS = ROOT / "tests" / "guard_corpus"


def evaluate(corpus: Path = CORPUS) -> dict[str, object]:
    """Scan every sample; the figures `main` prints (also used by the test)."""
    malicious = sorted(p for p in (corpus / "malicious").iterdir() if p.is_dir())
    benign = sorted(p for p in (corpus / "benign").iterdir() if p.is_dir())
    started = time.perf_counter()
    missed = [p.name for p in malicious if scan_folder(p).verdict != "dangerous"]
    wrong_rule = [p.name for p in malicious
                  if not any(f.rule == p.name.split("--")[0] and f.severity == "dangerous"
                             for f in scan_folder(p).findings)]
    verdicts = {p.name: scan_folder(p).verdict for p in benign}
    elapsed = time.perf_counter() - started
    rules = sorted({p.name.split("--")[0] for p in malicious})
    return {
        "malicious": len(malicious), "benign": len(benign),
        "detected": len(malicious) - len(missed), "missed": missed, "wrong_rule": wrong_rule,
        "false_dangerous": sorted(n for n, v in verdicts.items() if v == "dangerous"),
        "benign_caution": sorted(n for n, v in verdicts.items() if v == "caution"),
        "rules_covered": rules, "seconds": elapsed,
    }


def main() -> None:
    r = evaluate()
    malicious, benign = int(r["malicious"]), int(r["benign"])  # type: ignore[arg-type]
    print(f"malicious samples: {malicious} ({len(r['rules_covered'])} rules: {', '.join(r['rules_covered'])})")
    print(f"detection rate:    {r['detected']}/{malicious} = {int(r['detected']) / malicious:.1%} flagged dangerous")
    if r["missed"]:
        print(f"  missed: {', '.join(r['missed'])}")
    if r["wrong_rule"]:
        print(f"  caught by another rule than expected: {', '.join(r['wrong_rule'])}")
    false_dangerous = r["false_dangerous"]
    print(f"benign samples:    {benign}")
    print(f"false positives:   {len(false_dangerous)}/{benign} = {len(false_dangerous) / benign:.1%} flagged dangerous"
          + (f" ({', '.join(false_dangerous)})" if false_dangerous else ""))
    print(f"benign 'caution':  {len(r['benign_caution'])}/{benign}"
          + (f" ({', '.join(r['benign_caution'])})" if "--verbose" in sys.argv else ""))
    print(f"scan time:         {float(r['seconds']) * 1000 / (2 * malicious + benign):.1f} ms per skill")
    ok = not r["missed"] and len(false_dangerous) <= 1
    print("targets met" if ok else "TARGETS NOT MET")


if __name__ == "__main__":
    main()
