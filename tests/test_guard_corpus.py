"""The guard against its corpus: every malicious sample (>= 60, every class the issue names) is
refused as dangerous by the rule it was written for; of >= 60 benign look-risky skills none is
dangerous (the issue allows 1 in 60 refused; no benign skill may be rated dangerous), and the
bundled skills pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.guard_corpus import CORPUS, evaluate
from skills.bundled_install import BUNDLED_ROOT, bundled_skills
from skills.guard import RULES, scan_folder

ROOT = Path(__file__).resolve().parent.parent


def test_corpus_targets() -> None:
    result = evaluate()
    assert result["malicious"] >= 60 and result["benign"] >= 60
    assert result["missed"] == [], f"malicious samples not flagged dangerous: {result['missed']}"
    assert result["wrong_rule"] == [], f"samples caught only by another rule: {result['wrong_rule']}"
    assert result["false_dangerous"] == [], f"benign samples rated dangerous: {result['false_dangerous']}"
    assert len(result["benign_caution"]) * 4 <= int(result["benign"]), result["benign_caution"]  # type: ignore[arg-type]


def test_corpus_covers_every_rule_with_several_samples() -> None:
    names = [p.name.split("--")[0] for p in (CORPUS / "malicious").iterdir()]
    for rule in RULES:
        if rule == "unscannable":
            continue
        assert names.count(rule) >= 4, f"rule {rule} has {names.count(rule)} samples"


def test_benign_corpus_is_not_trivially_clean() -> None:
    texts = "\n".join(p.read_text(encoding="utf-8") for p in (CORPUS / "benign").rglob("*") if p.is_file())
    for needle in ("curl ", "rm -rf build", "$GITHUB_TOKEN", "crontab", "~/.ssh/", ".bashrc", "base64", "soffice",
                   "os.environ.copy()", "AF_UNIX", "mktemp -d", "@reboot", "/dev/tcp/", "ignore previous instructions",
                   "<!--", "help="):
        assert needle in texts, needle


def test_bundled_skills_are_not_dangerous() -> None:
    shipped = bundled_skills(BUNDLED_ROOT)
    assert len(shipped) >= 12
    for _, folder in shipped:
        report = scan_folder(folder)
        assert report.verdict in ("safe", "caution"), report.describe()


def test_bench_prints_rates() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "guard_corpus.py")], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert "detection rate:" in out and "100.0%" in out and "targets met" in out
    assert "reverse-shell        caught" in out and "false alarms by" in out
