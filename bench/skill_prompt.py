"""Figures for the skills part of the system prompt (issue 4).

For 10, 100 and 1,000 synthetic skills: the tokens the skills index takes, the time to build it,
and `skill_search` latency. Then recall@5: for 50 task descriptions written for the bundled
skills, is the right skill among the first five hits, with 1,000 distractors present?

    .venv/bin/python bench/skill_prompt.py
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skills import index_prompt
from skills.bundled_install import BUNDLED_ROOT, install_bundled
from skills.library import SkillLibrary
from skills.search import estimate_tokens

BUDGET = 1500
DOMAINS = {
    "devops": ["kubernetes", "helm", "terraform", "ansible", "nginx", "haproxy", "systemd", "prometheus",
               "grafana", "docker", "jenkins", "vault", "consul", "elasticsearch", "kafka", "rabbitmq"],
    "data": ["postgres", "mysql", "sqlite", "redis", "mongodb", "parquet", "spark", "airflow", "dbt",
             "bigquery", "snowflake", "pandas", "excel", "tableau"],
    "web": ["react", "vue", "django", "flask", "fastapi", "graphql", "websocket", "oauth", "cdn", "seo",
            "wordpress", "shopify", "stripe", "webhook"],
    "home": ["sourdough", "garden", "compost", "bicycle", "aquarium", "sewing", "knitting", "espresso",
             "woodworking", "houseplants", "camping", "chess", "guitar", "photography"],
    "finance": ["invoices", "payroll", "budget", "tax-return", "expenses", "mortgage", "pension", "vat",
                "receipts", "forecast", "cashflow", "crypto-wallet"],
    "science": ["microscope", "pcr", "telescope", "spectrometer", "lab-notebook", "statistics", "r-markdown",
                "matlab", "latex", "citation-manager", "literature-search"],
}
VERBS = ["configure", "migrate", "monitor", "tune", "audit", "repair", "document", "automate", "benchmark",
         "secure", "upgrade", "plan", "clean", "schedule", "troubleshoot", "design", "summarise", "test"]
PHRASES = ["step by step", "for a small team", "on a budget", "in production", "for beginners", "safely",
           "with checklists", "across regions", "without downtime", "from scratch", "weekly", "at scale"]
BODY_LINES = ["Check the current state and write it down before changing anything.",
              "Make one change at a time and confirm the effect.", "Keep a rollback plan ready.",
              "Record the commands you ran and their output.", "Ask for confirmation before destructive steps.",
              "Compare the result with the baseline measured at the start.", "Review the logs for warnings.",
              "Share a short summary with the people affected.", "Schedule a follow-up check."]

# 50 task descriptions, as users would phrase them, each with the bundled skill that should be found.
TASKS = [
    ("Can you look over this diff before I merge it and point out bugs?", "code-review"),
    ("Please review my changes to the auth module for security problems", "code-review"),
    ("critique this Python function, is anything wrong with it?", "code-review"),
    ("Give me feedback on this patch, anything I missed in the tests?", "code-review"),
    ("Open a pull request for my branch on GitHub with a good description", "github-pr-workflow"),
    ("CI failed on my PR, help me get it green and merged", "github-pr-workflow"),
    ("push this branch and create a PR with gh", "github-pr-workflow"),
    ("How do I address reviewer comments and land the pull request?", "github-pr-workflow"),
    ("Find out what the current pricing of the major cloud GPU providers is, with sources", "web-research-citations"),
    ("Look up recent news about the EU AI Act and cite where each fact comes from", "web-research-citations"),
    ("fact-check this claim and give me links to the sources", "web-research-citations"),
    ("Research the best open source vector databases and compare them with references", "web-research-citations"),
    ("Our API started throwing 500 errors an hour ago, here are the logs", "log-triage"),
    ("What does this stack trace in journalctl mean and what caused the crash?", "log-triage"),
    ("dig through the docker logs and find why the worker keeps restarting", "log-triage"),
    ("Write my end of day status update for the team", "daily-report"),
    ("summarize what I did today for standup: commits, PRs, blockers", "daily-report"),
    ("prepare a daily progress report for my manager", "daily-report"),
    ("Check that last night's backups actually ran and can be restored", "backup-check"),
    ("are our restic snapshots recent and healthy?", "backup-check"),
    ("test restoring the database dump before the migration", "backup-check"),
    ("This test fails only in CI, can you figure out why?", "debug-failing-test"),
    ("pytest test_orders is flaky, it passes sometimes and fails other times", "debug-failing-test"),
    ("my jest tests broke after the refactor, help me fix the failing test", "debug-failing-test"),
    ("The site is down for all users, what do we do right now?", "incident-response"),
    ("we have an outage, help me run the incident and write status updates", "incident-response"),
    ("Write a blameless postmortem for yesterday's outage", "incident-response"),
    ("Bump our npm dependencies and check for breaking changes", "dependency-upgrade"),
    ("Dependabot opened a PR upgrading Django to a new major version, is it safe?", "dependency-upgrade"),
    ("pip-audit reports a CVE in requests, upgrade it", "dependency-upgrade"),
    ("Turn this call transcript into notes with decisions and action items", "meeting-notes"),
    ("who agreed to do what in this meeting? make a summary with owners", "meeting-notes"),
    ("clean up my rough notes from the planning meeting", "meeting-notes"),
    ("Write the changelog for version 2.4 from the merged PRs since the last tag", "release-notes"),
    ("draft release notes for the new version, including breaking changes", "release-notes"),
    ("prepare the CHANGELOG entry before we tag the release", "release-notes"),
    ("The server says no space left on device, what is filling the disk?", "disk-space-cleanup"),
    ("disk usage alert on /var at 95 percent, free some space safely", "disk-space-cleanup"),
    ("docker images are eating my disk, clean them up", "disk-space-cleanup"),
    ("Here is a CSV of sales, which region grew the most last quarter?", "csv-data-analysis"),
    ("analyse this spreadsheet and find outliers in the expenses column", "csv-data-analysis"),
    ("load data.tsv and compute averages per customer with pandas", "csv-data-analysis"),
    ("Write an email to the client asking them to approve the quote by Friday", "email-drafting"),
    ("help me reply politely to this email declining the invitation", "email-drafting"),
    ("rewrite this message to my landlord so it sounds firm but polite", "email-drafting"),
    ("I accidentally committed our AWS access key to GitHub, what now?", "secret-leak-response"),
    ("an API token was pasted in a public Slack channel, rotate it", "secret-leak-response"),
    ("Run this cleanup script every night at 2am and alert me if it fails", "scheduled-job-setup"),
    ("set up a cron job that sends the report every Monday morning", "scheduled-job-setup"),
    ("make a systemd timer for the hourly sync and stop runs from overlapping", "scheduled-job-setup"),
]


def make_synthetic(root: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    used: set[str] = set()
    for i in range(count):
        category = rng.choice(sorted(DOMAINS))
        topic, verb, phrase = rng.choice(DOMAINS[category]), rng.choice(VERBS), rng.choice(PHRASES)
        name = f"{verb}-{topic}"
        if name in used:
            name = f"{name}-{i}"
        used.add(name)
        other = rng.choice(DOMAINS[category])
        description = (f"{verb.capitalize()} {topic} {phrase}: prepare, act and verify, including {other} "
                       f"interactions. Use when asked to {verb} {topic} or when {topic} needs attention.")
        steps = "\n".join(f"{n}. {line}" for n, line in enumerate(rng.sample(BODY_LINES, 5), 1))
        body = (f"# {verb.capitalize()} {topic}\n\n## When to use\n- The user wants to {verb} {topic} {phrase}.\n\n"
                f"## Procedure\n{steps}\n\n## Pitfalls\n- {topic} and {other} interact in surprising ways.\n\n"
                f"## Verification\n- The {topic} works as before or better.\n")
        folder = root / category / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {json.dumps(description)}\n---\n\n{body}",
                                         encoding="utf-8")


def timed(func, repeat: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(count: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="skill-bench-"))
    try:
        make_synthetic(folder, count)
        library = SkillLibrary(folder, rescan_interval=0)
        started = time.perf_counter()
        snapshot = library.scan()
        snapshot.search("warm up")
        cold_ms = (time.perf_counter() - started) * 1000
        queries = [task for task, _ in TASKS]
        texts = [index_prompt.IndexSelector(BUDGET).text(snapshot, "s", q) for q in queries]
        tokens = max(estimate_tokens(t) for t in texts)
        all_listed = estimate_tokens(index_prompt.render(snapshot.skills, len(snapshot.skills)))

        def build_fresh() -> None:  # includes the mtime rescan of the whole library
            index_prompt.IndexSelector(BUDGET).text(library.scan(force=True), "s", queries[0])

        def build_cached() -> None:
            index_prompt.IndexSelector(BUDGET).text(library.scan(), "s", queries[1])

        library.rescan_interval = 60
        build_ms = timed(build_cached, 50)
        build_rescan_ms = timed(build_fresh, 20)
        search_ms = timed(lambda: [snapshot.search(q, 8) for q in queries], 5) / len(queries)
        return {"count": count, "tokens": tokens, "all_listed_tokens": all_listed, "build_ms": build_ms,
                "build_with_rescan_ms": build_rescan_ms, "search_ms": search_ms, "first_load_ms": cold_ms}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def recall_at_5(distractors: int = 1000) -> tuple[float, list[str]]:
    folder = Path(tempfile.mkdtemp(prefix="skill-recall-"))
    try:
        make_synthetic(folder, distractors, seed=11)
        library = SkillLibrary(folder, rescan_interval=0)
        install_bundled(library, BUNDLED_ROOT)
        snapshot = library.scan(force=True)
        misses = []
        for task, expected in TASKS:
            top = [hit.key for hit in snapshot.search(task, 5)]
            if expected not in top:
                misses.append(f"{expected!r} not in top 5 for {task!r}: {top}")
        return 1 - len(misses) / len(TASKS), misses
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    assert len(TASKS) == 50
    print(f"skills index budget: {BUDGET} tokens (estimate: ceil(chars / 4))")
    print(f"{'skills':>7} {'index tokens':>13} {'all listed':>11} {'build ms':>9} {'+rescan ms':>11} "
          f"{'search ms':>10} {'first load ms':>14}")
    for count in (10, 100, 1000):
        r = measure(count)
        print(f"{r['count']:>7} {r['tokens']:>13} {r['all_listed_tokens']:>11} {r['build_ms']:>9.2f} "
              f"{r['build_with_rescan_ms']:>11.2f} {r['search_ms']:>10.3f} {r['first_load_ms']:>14.1f}")
    recall, misses = recall_at_5()
    print(f"recall@5 over {len(TASKS)} tasks with 1000 distractors: {recall:.2f}")
    for miss in misses:
        print("  miss:", miss)


if __name__ == "__main__":
    main()
