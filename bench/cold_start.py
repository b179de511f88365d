"""Cold-start figures: wall and whole-process CPU time of `hermes --help` and `hermes chat -q`
against the fake model, and the same for the peer agent's one-shot mode when it is installed.

    python bench/cold_start.py [--runs 5] [--peer /tmp/peer-hermes/bin/hermes]

Prints the median (and min/max) over several runs, each a fresh process, and how long interactive
`hermes chat` takes to show its prompt in a pseudo-terminal (LiteLLM loads after, in the background). CPU time is user +
system time of the process and its children (what `time` reports), read from the kernel.

The peer is `hermes-agent==0.19.0` from PyPI. Install it into a separate virtualenv, never into
this project's:

    python3 -m venv /tmp/peer-hermes && /tmp/peer-hermes/bin/pip install hermes-agent==0.19.0

It is then found at /tmp/peer-hermes/bin/hermes (or pass --peer, or set HERMES_PEER). It answers
from the same fake model through its own `config.yaml` (a custom OpenAI-compatible endpoint),
with its lazy package installs turned off (no network here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pty
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.model_server import FakeModelServer

DEFAULT_PEER = Path("/tmp/peer-hermes/bin/hermes")


@dataclass
class Sample:
    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timed(args: list[str], env: dict[str, str], cwd: str) -> Sample:
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*args, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0 or (b"pong" not in out and "--help" not in args):
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}): {(out + err).decode()[-800:]}")
    return Sample(elapsed, _children_cpu() - cpu_before)


def time_to_prompt(args: list[str], env: dict[str, str], cwd: str, prompt: bytes = "you ›".encode()) -> Sample:
    """Start an interactive chat in a pseudo-terminal; wall time until its prompt shows, and the CPU
    time of the whole session after Ctrl-D (so it includes the background loading)."""
    cpu_before = _children_cpu()
    leader, follower = pty.openpty()
    started = time.perf_counter()
    process = subprocess.Popen(args, env={**env, "TERM": "xterm"}, cwd=cwd, stdin=follower, stdout=follower,
                               stderr=follower, start_new_session=True)
    os.close(follower)
    seen, shown = b"", None
    try:
        while shown is None:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                raise SystemExit(f"no prompt after 60 s: {seen.decode(errors='replace')[-500:]}")
            chunk = os.read(leader, 4096)
            if not chunk:
                raise SystemExit(f"exited before its prompt: {seen.decode(errors='replace')[-500:]}")
            seen += chunk
            if prompt in seen:
                shown = time.perf_counter() - started
        time.sleep(6)  # let the background loading finish, then leave with Ctrl-D
        os.write(leader, b"\x04")
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    os.read(leader, 4096)
                except OSError:
                    break
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return Sample(shown, _children_cpu() - cpu_before)


def report(name: str, samples: list[Sample]) -> None:
    walls, cpus = [s.wall for s in samples], [s.cpu for s in samples]
    print(f"{name:<34} wall median {statistics.median(walls):6.2f} s   CPU median {statistics.median(cpus):6.2f} s"
          f"   (CPU min {min(cpus):.2f} max {max(cpus):.2f}, {len(samples)} runs)")


@dataclass
class Subject:
    """One program under test: its `--help`, its one-shot command, its environment."""

    name: str
    help: list[str]
    chat: list[str]
    env: dict[str, str]
    cwd: str
    helps: list[Sample] = field(default_factory=list)
    chats: list[Sample] = field(default_factory=list)


async def measure(subjects: list[Subject], runs: int) -> None:
    """Runs alternate between the subjects, so a machine that gets busier meanwhile weighs on both."""
    for subject in subjects:
        await timed(subject.help, subject.env, subject.cwd)  # warm the file cache once
        await timed(subject.chat, subject.env, subject.cwd)
    for _ in range(runs):
        for subject in subjects:
            subject.helps.append(await timed(subject.help, subject.env, subject.cwd))
            subject.chats.append(await timed(subject.chat, subject.env, subject.cwd))


async def main(runs: int, peer: Path | None) -> None:
    hermes = str(Path(sys.executable).with_name("hermes"))
    server = await FakeModelServer(default_text="pong").start()
    with contextlib.ExitStack() as folders:
        def folder() -> str:
            return folders.enter_context(tempfile.TemporaryDirectory())

        try:
            home, work = folder(), folder()
            Path(home, "config.toml").write_text(
                f'[model]\nname = "openai/bench"\napi_base = "{server.base_url}"\napi_key = "sk-bench"\n')
            env = {**os.environ, "HERMES_HOME": home, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
            subjects = [Subject("hermes", [hermes, "--help"], [hermes, "chat", "-q", "ping"], env, work)]
            if peer is not None and peer.exists():
                peer_home, peer_work = folder(), folder()
                Path(peer_home, "config.yaml").write_text(
                    f"model:\n  default: bench\n  provider: custom\n  base_url: {server.base_url}\n"
                    "  api_key: sk-bench\n")
                peer_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                peer_env.update({"HERMES_HOME": peer_home, "HERMES_DISABLE_LAZY_INSTALLS": "1"})
                subjects.append(Subject("peer hermes-agent", [str(peer), "--help"],
                                        [str(peer), "chat", "-Q", "-q", "ping"], peer_env, peer_work))
            await measure(subjects, runs)
            for subject in subjects:
                report(f"{subject.name} --help", subject.helps)
                report(f"{subject.name} chat -q", subject.chats)
            if len(subjects) == 1:
                print(f"peer agent: not installed ({DEFAULT_PEER}); see this script's docstring")
            else:
                ours, theirs = (statistics.median(s.cpu for s in subject.chats) for subject in subjects)
                print(f"chat -q CPU, hermes / peer: {ours / theirs:.2f}")
            prompts = [await asyncio.to_thread(time_to_prompt, [hermes, "chat"], env, work) for _ in range(runs)]
            walls = [p.wall for p in prompts]
            print(f"{'hermes chat: prompt shown after':<34} wall median {statistics.median(walls):6.2f} s   "
                  f"(min {min(walls):.2f} max {max(walls):.2f}, {runs} runs)")
        finally:
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer", type=Path, default=Path(os.environ.get("HERMES_PEER", DEFAULT_PEER)),
                        help="the peer agent's `hermes` executable")
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.peer))
