"""The skills guard on its corpus: caught and false alarms per class, and scan time.
Usage: python bench/guard_corpus.py [--verbose] [--hostile] [--collections DIR [DIR ...]]

`--collections DIR...` runs the guard over checked-out public skill collections instead (every
folder with a SKILL.md, as `hermes skills install` finds them) and prints, per collection and in
all, how many skills would install (safe or caution), the caution and dangerous counts, every
finding that is not safe with its explanation, and the median and p95 scan time per skill. The
benchmark is the three collections below at these commits; they are not committed here (some
of the document skills are not under an open licence), check them out beside the project:

    git clone https://github.com/anthropics/skills && git -C skills checkout <commit>

Targets (issue 26): all 35 install, 0 dangerous, at most 3 caution.

`--hostile` also times hostile inputs: a YAML alias bomb (refused before it expands) and files
built to make pattern matching slow (long lines, unclosed comments, many lines).

Malicious samples are named `<rule>--<name>`: one is caught when the verdict is `dangerous` (the
hub quarantines it and the agent's writes refuse it; `caution` would install with --yes), and
caught by its class when a dangerous finding has that rule. A benign sample is refused when its
verdict is `dangerous`; `caution` (the hub asks) is counted separately, by the rules that raised it.
Targets: every malicious sample refused; at most 1 in 60 benign refused; no benign `dangerous`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skills.guard import GuardReport, scan_folder

CORPUS = ROOT / "tests" / "guard_corpus"
PINNED = {
    "anthropics/skills": "9d2f1ae187231d8199c64b5b762e1bdf2244733d",
    "openai/skills": "f6b8344b4e519f964d8884d6f60b57991f3f4993",
    "vercel-labs/agent-skills": "b9c8ee0643d87d3c5a953d1e22382ff2ead39229",
}
"""The public collections the guard is measured on, pinned by commit."""
MAX_CAUTION = 3


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))] if ordered else 0.0


def evaluate(corpus: Path = CORPUS) -> dict[str, object]:
    """Scan every sample once; the figures `main` prints (also used by the test)."""
    malicious = sorted(p for p in (corpus / "malicious").iterdir() if p.is_dir())
    benign = sorted(p for p in (corpus / "benign").iterdir() if p.is_dir())
    times: list[float] = []

    def timed(folder: Path) -> GuardReport:
        started = time.perf_counter()
        report = scan_folder(folder)
        times.append(time.perf_counter() - started)
        return report

    bad_reports: dict[str, GuardReport] = {p.name: timed(p) for p in malicious}
    good_reports: dict[str, GuardReport] = {p.name: timed(p) for p in benign}
    elapsed = sum(times)
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
        "median_ms": statistics.median(times) * 1000, "p95_ms": percentile(times, 0.95) * 1000,
    }


@dataclass
class Scanned:
    """One skill of a collection: where it is, the guard's report and how long the scan took."""

    collection: str
    folder: Path
    report: GuardReport
    seconds: float


def collection_name(top: Path) -> str:
    """owner/name of a checkout: from its git remote, else from its folder's name (owner+name or a pinned name)."""
    try:
        url = subprocess.run(["git", "-C", str(top), "remote", "get-url", "origin"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        url = ""
    if url:
        return url.removesuffix(".git").replace(":", "/").split("/", url.count("/") - 1)[-1]
    name = top.resolve().name
    for sep in ("+", "__"):
        if sep in name:
            return name.replace(sep, "/", 1)
    return next((pinned for pinned in PINNED if pinned.endswith("/" + name) and pinned.split("/")[1] != "skills"), name)


def checkout_commit(top: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(top), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def scan_collections(tops: list[Path]) -> list[Scanned]:
    """Every skill folder of every collection, scanned once and timed."""
    from skills.hub.sources import skill_folders

    found: list[Scanned] = []
    for top in tops:
        name = collection_name(top)
        folders = ([top] if (top / "SKILL.md").is_file() else []) + skill_folders(top, max_depth=8)
        for folder in folders:
            started = time.perf_counter()
            report = scan_folder(folder)
            found.append(Scanned(name, folder, report, time.perf_counter() - started))
    return found


def collections_main(tops: list[Path]) -> int:
    missing = [str(t) for t in tops if not t.is_dir()]
    if missing:
        print(f"--collections: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    scanned = scan_collections(tops)
    if not scanned:
        print("--collections: no SKILL.md found in " + ", ".join(map(str, tops)), file=sys.stderr)
        return 2
    for top in tops:
        name = collection_name(top)
        mine = [s for s in scanned if s.collection == name]
        counts = Counter(s.report.verdict for s in mine)
        commit = checkout_commit(top)
        pinned = PINNED.get(name, "")
        pin = f" @{commit[:12]}" + ("" if not pinned or commit == pinned else f" (benchmark pins {pinned[:12]})") \
            if commit else (f" (benchmark pins {pinned[:12]})" if pinned else "")
        print(f"{name}{pin}: {len(mine)} skills, safe {counts['safe']}, caution {counts['caution']}, "
              f"dangerous {counts['dangerous']}")
    counts = Counter(s.report.verdict for s in scanned)
    installable = counts["safe"] + counts["caution"]
    times = [s.seconds * 1000 for s in scanned]
    print(f"skills scanned:    {len(scanned)}")
    print(f"installable:       {installable}/{len(scanned)} (safe {counts['safe']}, caution {counts['caution']}, "
          f"dangerous {counts['dangerous']})")
    print(f"scan time:         median {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms, "
          f"max {max(times):.1f} ms per skill")
    for item in scanned:
        if item.report.verdict == "safe":
            continue
        print(f"{item.report.verdict.upper()} {item.collection}/{item.folder.name}:")
        for finding in sorted(item.report.findings, key=lambda f: (f.severity != "dangerous", f.file, f.line)):
            print("  " + finding.explain().replace("\n", "\n  "))
    ok = counts["dangerous"] == 0 and counts["caution"] <= MAX_CAUTION
    print("targets met" if ok else "TARGETS NOT MET")
    return 0


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
    if "--collections" in sys.argv:
        tops = [Path(a) for a in sys.argv[sys.argv.index("--collections") + 1:] if not a.startswith("--")]
        if not tops:
            print("--collections needs one or more checked-out collection folders", file=sys.stderr)
            raise SystemExit(2)
        raise SystemExit(collections_main(tops))
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
    print(f"scan time:         median {float(r['median_ms']):.1f} ms, p95 {float(r['p95_ms']):.1f} ms, "
          f"mean {float(r['seconds']) * 1000 / (malicious + benign):.1f} ms per skill")
    ok = not r["missed"] and not false_dangerous
    print("targets met" if ok else "TARGETS NOT MET")
    if "--hostile" in sys.argv:
        print("hostile inputs (CPU seconds):")
        for case, seconds, verdict in hostile():
            print(f"  {case:<42} {seconds:7.2f} s  {verdict}")


if __name__ == "__main__":
    main()
