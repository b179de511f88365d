"""The skills guard on its corpus: caught and false alarms per class, and scan time.
Usage: python bench/guard_corpus.py [--verbose] [--hostile]

`--hostile` also times hostile inputs: a YAML alias bomb (refused before it expands) and files
built to make pattern matching slow (long lines, unclosed comments, many lines).

Malicious samples are named `<rule>--<name>`: one is caught when the verdict is `dangerous` (the
hub quarantines it and the agent's writes refuse it; `caution` would install with --yes), and
caught by its class when a dangerous finding has that rule. A benign sample is refused when its
verdict is `dangerous`; `caution` (the hub asks) is counted separately, by the rules that raised it.
Targets: every malicious sample refused; at most 1 in 60 benign refused; no benign `dangerous`.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skills.guard import GuardReport, scan_folder

CORPUS = ROOT / "tests" / "guard_corpus"


def evaluate(corpus: Path = CORPUS) -> dict[str, object]:
    """Scan every sample once; the figures `main` prints (also used by the test)."""
    malicious = sorted(p for p in (corpus / "malicious").iterdir() if p.is_dir())
    benign = sorted(p for p in (corpus / "benign").iterdir() if p.is_dir())
    started = time.perf_counter()
    bad_reports: dict[str, GuardReport] = {p.name: scan_folder(p) for p in malicious}
    good_reports: dict[str, GuardReport] = {p.name: scan_folder(p) for p in benign}
    elapsed = time.perf_counter() - started
    missed = [n for n, r in bad_reports.items() if r.verdict != "dangerous"]
    wrong_rule = [n for n, r in bad_reports.items()
                  if not any(f.rule == n.split("--")[0] and f.severity == "dangerous" for f in r.findings)]
    per_class: dict[str, list[int]] = {}
    for name, report in bad_reports.items():
        counts = per_class.setdefault(name.split("--")[0], [0, 0])
        counts[0] += report.verdict == "dangerous"
        counts[1] += 1
    alarms: Counter[str] = Counter()
    for report in good_reports.values():
        for rule in {f.rule for f in report.findings}:
            alarms[rule] += 1
    return {
        "malicious": len(malicious), "benign": len(benign),
        "detected": len(malicious) - len(missed), "missed": missed, "wrong_rule": wrong_rule,
        "false_dangerous": sorted(n for n, r in good_reports.items() if r.verdict == "dangerous"),
        "benign_caution": sorted(n for n, r in good_reports.items() if r.verdict == "caution"),
        "per_class": per_class, "benign_alarms_by_rule": dict(alarms),
        "rules_covered": sorted(per_class), "seconds": elapsed,
    }


def hostile() -> list[tuple[str, float, str]]:
    """(case, seconds, verdict) for inputs built to exhaust the guard or the front matter loader."""
    from skills.document import SkillFormatError, parse
    from skills.guard import guard_skill_text

    head = "---\nname: demo\ndescription: A demo skill.\n---\n\n"
    rows = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    rows += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    bomb = "---\nname: demo\ndescription: x\n" + "\n".join(rows) + "\n---\n\nBody.\n"
    cases = {
        f"YAML alias bomb ({len(bomb)} bytes) parse": bomb,
        "100 KB line of 'curl '": head + "curl " * 20_000,
        "100 KB of unclosed '<!-- '": head + "<!-- " * 20_000,
        "100 KB of 'rm -r -r ...'": head + "rm " + "-r " * 33_000,
        "20,000 lines of curl | grep": head + "curl https://x.example | grep y\n" * 20_000,
        "20,000 continuation lines": head + "```sh\n" + "echo \\\n" * 20_000 + "```\n",
    }
    results = []
    for case, text in cases.items():
        started = time.process_time()
        if "parse" in case:
            try:
                parse(text)
                verdict = "parsed"
            except SkillFormatError:
                verdict = "refused"
            verdict += " / guard " + guard_skill_text(text).verdict
        else:
            verdict = guard_skill_text(text).verdict
        results.append((case, time.process_time() - started, verdict))
    return results


def main() -> None:
    r = evaluate()
    malicious, benign = int(r["malicious"]), int(r["benign"])  # type: ignore[arg-type]
    print(f"malicious samples: {malicious} ({len(r['rules_covered'])} classes)")
    print(f"detection rate:    {r['detected']}/{malicious} = {int(r['detected']) / malicious:.1%} refused (dangerous)")
    for rule, (caught, total) in sorted(r["per_class"].items()):  # type: ignore[union-attr]
        print(f"  {rule:<20} caught {caught}/{total}")
    if r["missed"]:
        print(f"  missed: {', '.join(r['missed'])}")
    if r["wrong_rule"]:
        print(f"  caught by another rule than expected: {', '.join(r['wrong_rule'])}")
    false_dangerous = r["false_dangerous"]
    print(f"benign samples:    {benign}")
    print(f"false positives:   {len(false_dangerous)}/{benign} = {len(false_dangerous) / benign:.1%} refused (dangerous)"
          + (f" ({', '.join(false_dangerous)})" if false_dangerous else ""))
    print(f"benign 'caution':  {len(r['benign_caution'])}/{benign}"
          + (f" ({', '.join(r['benign_caution'])})" if "--verbose" in sys.argv else ""))
    for rule, count in sorted(r["benign_alarms_by_rule"].items()):  # type: ignore[union-attr]
        print(f"  false alarms by {rule:<20} {count} benign skill(s) (caution or worse)")
    print(f"scan time:         {float(r['seconds']) * 1000 / (malicious + benign):.1f} ms per skill")
    ok = not r["missed"] and not false_dangerous
    print("targets met" if ok else "TARGETS NOT MET")
    if "--hostile" in sys.argv:
        print("hostile inputs (CPU seconds):")
        for case, seconds, verdict in hostile():
            print(f"  {case:<42} {seconds:7.2f} s  {verdict}")


if __name__ == "__main__":
    main()
