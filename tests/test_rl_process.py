"""`hermes rl process` against a fake vLLM `/generate` server on 127.0.0.1, with a tiny byte-level
tokenizer built here (HF_HUB_OFFLINE=1, WANDB_MODE=disabled): every group has group_size scores
in [0, 1], every rollout as many masks as tokens, the unmasked tokens are exactly what the server
generated (the assistant turns; tool output is masked), the verifier tells the right answer from
the wrong one (one task is done with the file tools, one with the sandboxed terminal), and a task
whose every call fails scores 0 without ending the run.

Skipped when atroposlib (the `[rl]` extra) is not installed, except under CI=true, where it fails.
Also: `hermes --help`, `hermes gateway --help` and a running `hermes gateway` that answers a turn
never import atroposlib or transformers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.cli_support import hermes
from tests.fakes.loopback import serve_on_loopback

HAVE_ATROPOS = importlib.util.find_spec("atroposlib") is not None
needs_atropos = pytest.mark.skipif(
    not HAVE_ATROPOS and os.environ.get("CI") != "true",
    reason='atroposlib is not installed (pip install -c constraints.txt -e ".[rl]")')

EOS = "<|im_end|>"
CHAT_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}"
    "{%- if tools %}\n<tools>{% for t in tools %}{{ t.function.name }} {% endfor %}</tools>{% endif %}"
    "<|im_end|>\n{%- endif %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'system' and loop.first %}"
    "{%- elif m.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ m.content }}\n</tool_response><|im_end|>\n"
    "{%- elif m.role == 'assistant' %}<|im_start|>assistant\n{{ m.content }}"
    "{%- for c in m.tool_calls or [] %}<tool_call>\n{{ c.function.name }}</tool_call>{% endfor %}<|im_end|>\n"
    "{%- else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# task id -> (prompt, files, verify, right answer, wrong answer); "broken" gets HTTP 500s
TASKS: dict[str, tuple[str, dict[str, str], str, str, str]] = {
    "greet": ("Write hi into hello.txt.", {}, 'test "$(cat hello.txt)" = hi && echo 1.0', "hi", "bye"),
    "count": ("Write how many lines data.txt has into count.txt.", {"data.txt": "a\nb\nc\n"},
              'test "$(cat count.txt)" = 3 && echo 1.0', "3", "4"),
    "broken": ("BROKEN: the server fails every call for this one.", {}, "true", "", ""),
}
TARGET = {"greet": "hello.txt", "count": "count.txt"}
GROUP_SIZE = 3


def _tokenizer(folder: Path) -> Any:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    corpus = [p for p, *_ in TASKS.values()] + ["<tool_call> write_file hello.txt count.txt Done"] * 3
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=["<|im_start|>", EOS])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, pad_token=EOS,
                                      bos_token="<|im_start|>")
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def _answer(task_id: str, right: bool) -> str:
    """greet: the file tool; count: the sandboxed terminal (right: counts the lines; wrong: guesses)."""
    content = TASKS[task_id][3] if right else TASKS[task_id][4]
    if task_id == "count":
        command = "wc -l < data.txt > count.txt" if right else f"echo {content} > count.txt"
        call = {"name": "terminal", "arguments": {"command": command}}
    else:
        call = {"name": "write_file", "arguments": {"path": TARGET[task_id], "content": content}}
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


class FakeVLLM:
    """vLLM's `/generate` (prompt token ids in, sampled ids out) and `/health`.

    A rollout's first call is answered right or wrong in turn (right, wrong, right, ...), per
    task; a call that sees a tool result answers "Done." Every reply ends with the end-of-turn token.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.turns: dict[str, int] = {}
        self.generated: list[str] = []

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = self.tokenizer.decode(body["prompt"]["prompt_token_ids"], skip_special_tokens=False)
        task_id = next(t for t, (p, *_) in TASKS.items() if p in prompt)
        if task_id == "broken":
            return web.Response(status=500, text="the fake server fails this task")
        if "<tool_response>" in prompt:
            text = "Done."
        else:
            turn = self.turns.get(task_id, 0)
            self.turns[task_id] = turn + 1
            text = _answer(task_id, right=turn % 2 == 0)
        ids = self.tokenizer.encode(text + EOS, add_special_tokens=False)
        self.generated.append(text + EOS)
        return web.json_response({"logprobs": [[[{str(i): -0.5}] for i in ids]], "finish_reasons": ["stop"]})


@needs_atropos
async def test_rl_process_writes_scored_groups_with_real_tokens(tmp_path: Path) -> None:
    tokenizer = _tokenizer(tmp_path / "tokenizer")
    fake = FakeVLLM(tokenizer)
    app = web.Application()
    app.router.add_get("/health", fake.health)
    app.router.add_post("/generate", fake.generate)
    runner, port = await serve_on_loopback(app)
    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text("".join(json.dumps({"id": t, "prompt": p, "files": f, "verify": v}) + "\n"
                                  for t, (p, f, v, *_) in TASKS.items()))
    out = tmp_path / "rollouts.jsonl"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out.write_text("an older run\n")   # replaced, not kept beside as rollouts_1.jsonl
    try:
        code, stdout, stderr = await hermes(
            "rl", "process", "--tasks", str(tasks_file), "--out", str(out), "--group-size", str(GROUP_SIZE),
            "--server-type", "vllm", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "tiny",
            "--tokenizer", str(tmp_path / "tokenizer"), "--max-tokens", "4096",
            home=tmp_path / "home", timeout=110,
            env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled", "TMPDIR": str(scratch)})
    finally:
        await runner.cleanup()
    assert code == 0, stderr[-3000:]
    assert f"wrote {out}: 3 groups x {GROUP_SIZE} rollouts (with tokens" in stdout
    assert list(scratch.iterdir()) == []      # every rollout's workspace is gone
    assert not (tmp_path / "rollouts_1.jsonl").exists()
    groups = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["task_id"] for g in groups] == ["greet", "count", "broken"]
    for group in groups:
        assert group["sft_only"] is False
        assert len(group["scores"]) == len(group["tokens"]) == len(group["masks"]) == GROUP_SIZE
        assert all(0.0 <= s <= 1.0 for s in group["scores"])
        for tokens, masks in zip(group["tokens"], group["masks"]):
            assert len(tokens) == len(masks) > 0
            assert all(m == -100 or m == t for t, m in zip(tokens, masks))

    for group in groups[:2]:
        task_id = group["task_id"]
        for tokens, masks, score, messages in zip(group["tokens"], group["masks"], group["scores"],
                                                  group["messages"]):
            # the unmasked runs are exactly the two assistant turns the server generated
            spans, run = [], []
            for t, m in zip(tokens, masks):
                if m == -100:
                    if run:
                        spans.append(run)
                    run = []
                else:
                    run.append(t)
            if run:
                spans.append(run)
            decoded = [tokenizer.decode(s, skip_special_tokens=False) for s in spans]
            assert decoded[1] == "Done." + EOS
            assert decoded[0] in (_answer(task_id, True) + EOS, _answer(task_id, False) + EOS)
            assert len(decoded) == 2
            # the tool's output is in the sequence, masked; the end of turn is not doubled
            whole = tokenizer.decode(tokens, skip_special_tokens=False)
            masked = tokenizer.decode([t for t, m in zip(tokens, masks) if m == -100], skip_special_tokens=False)
            assert "<tool_response>" in masked and "<tool_response>" not in "".join(decoded)
            tool_output = next(m["content"] for m in messages if m["role"] == "tool")
            assert tool_output and tool_output in masked
            assert whole.count(EOS) == 5   # system, user, assistant, tool result, assistant
            assert EOS + EOS not in whole
            # the verifier tells the right answer from the wrong one
            assert score == (1.0 if decoded[0] == _answer(task_id, True) + EOS else 0.0), (decoded, messages)
        assert sorted(group["scores"]) == [0.0, 1.0, 1.0]

    broken = groups[2]
    assert broken["scores"] == [0.0] * GROUP_SIZE
    assert all(e for e in broken["errors"])
    assert "3 rollouts failed" in stdout


@needs_atropos
async def test_rl_process_without_a_token_server_is_sft_only(tmp_path: Path) -> None:
    """A plain OpenAI-compatible server: messages and scores, no made-up tokens, and no Hugging Face
    tokenizer needed for a model that has none (offline, too); no wandb run although none was asked off."""
    calls: list[int] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(1)
        if any(m["role"] == "tool" for m in body["messages"]):
            message: dict[str, Any] = {"role": "assistant", "content": "Done."}
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"c{len(calls)}", "type": "function",
                "function": {"name": "write_file", "arguments": json.dumps({"path": "hello.txt", "content": "hi"})}}]}
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": "tiny",
                                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner, port = await serve_on_loopback(app)
    tasks_file = tmp_path / "tasks.jsonl"
    prompt, files, verify, *_ = TASKS["greet"]
    tasks_file.write_text(json.dumps({"id": "greet", "prompt": prompt, "files": files, "verify": verify}) + "\n")
    out = tmp_path / "sft.jsonl"
    work = tmp_path / "work"      # where wandb would leave its run folder
    work.mkdir()
    # no WANDB_MODE, no key: 0.4.0 turns wandb on for `process`; ours never starts it
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update({"HERMES_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "rl", "process", "--tasks", str(tasks_file), "--out", str(out),
            "--group-size", "2", "--server-type", "openai", "--base-url", f"http://127.0.0.1:{port}/v1",
            "--model", "gpt-4o-mini", "--no-terminal", cwd=work, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout_bytes, stderr_bytes = await asyncio.wait_for(process.communicate(), 110)
    finally:
        await runner.cleanup()
    stdout, stderr = stdout_bytes.decode(), stderr_bytes.decode()
    assert process.returncode == 0, stderr[-3000:]
    assert "SFT-only" in stdout
    assert list(work.iterdir()) == [] and "wandb:" not in stderr
    (group,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert group["sft_only"] is True
    assert group["tokens"] == [[], []] and group["masks"] == [[], []]
    assert group["scores"] == [1.0, 1.0]
    assert [m["role"] for m in group["messages"][0]] == ["system", "user", "assistant", "tool", "assistant"]


@pytest.mark.parametrize("args", [["--help"], ["gateway", "--help"], ["rl", "--help"]])
def test_help_does_not_import_atropos_or_transformers(args: list[str]) -> None:
    probe = (
        "import sys\n"
        f"sys.argv = ['hermes', *{args!r}]\n"
        "from gateway.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('atroposlib', 'transformers', 'wandb', 'litellm') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout[-2000:]


async def test_without_the_rl_extra_hermes_rl_says_how_to_install_it(tmp_path: Path) -> None:
    hidden = tmp_path / "no-atropos" / "atroposlib"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'atroposlib'\", name='atroposlib')\n")
    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text(json.dumps({"id": "greet", "prompt": "hi", "verify": "true"}) + "\n")
    code, stdout, stderr = await hermes("rl", "process", "--tasks", str(tasks_file), "--model", "tiny",
                                        home=tmp_path / "home", env={"PYTHONPATH": str(hidden.parent)})
    assert code == 2, stderr
    assert 'the [rl] extra is not installed: pip install -c constraints.txt -e ".[rl]"' in stderr
    assert "Traceback" not in stderr


WATCH_IMPORTS = """\
import os, sys

class _Watch:
    # records every process that imports (or tries to) one of the watched packages
    def find_spec(self, name, path=None, target=None):
        if name in ("atroposlib", "transformers"):
            with open(os.environ["HERMES_TEST_IMPORT_LOG"], "a") as log:
                log.write(f"{os.getpid()} {name} {' '.join(sys.argv)}\\n")
        return None

sys.meta_path.insert(0, _Watch())
"""


async def test_a_running_gateway_never_imports_atropos_or_transformers(tmp_path: Path) -> None:
    """`hermes gateway` itself (not only its --help): started, a turn through the API to the model
    (LiteLLM loaded), stopped; no process of it imports atroposlib or transformers."""
    import asyncio
    import re
    import signal

    import aiohttp

    from tests.conftest import model_config, write_config
    from tests.fakes.gateway_harness import TOKEN, api_section, gateway_process_with_banner
    from tests.fakes.model_server import FakeModelServer, text

    watch = tmp_path / "watch"
    watch.mkdir()
    (watch / "sitecustomize.py").write_text(WATCH_IMPORTS)
    log = tmp_path / "imports.log"
    home = tmp_path / "home"
    async with FakeModelServer() as model:
        model.add(text("Hello from the model."))
        write_config(home, model_config(model) + api_section())
        env = {**os.environ, "HERMES_HOME": str(home), "HERMES_TEST_IMPORT_LOG": str(log),
               "PYTHONPATH": os.pathsep.join([str(watch), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        env.pop("HERMES_STORE_URL", None)
        process, banner = await gateway_process_with_banner(home, env=env)
        try:
            url = re.search(r"Web chat:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                async with http.post(url + "v1/chat/completions", json={
                        "model": "hermes", "messages": [{"role": "user", "content": "hello"}]}) as response:
                    assert response.status == 200
                    body = await response.json()
            assert body["choices"][0]["message"]["content"] == "Hello from the model."
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert not log.exists(), log.read_text()
    # the watch itself works: the same hook sees a process that looks for atroposlib
    subprocess.run([sys.executable, "-c", "import importlib.util; importlib.util.find_spec('atroposlib')"],
                   env=env, check=True, timeout=60)
    assert "atroposlib" in log.read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@needs_atropos
async def test_rl_serve_feeds_atropos_trajectory_api(tmp_path: Path) -> None:
    """`hermes rl serve` registers with Atropos' own trajectory API (run-api) and a trainer that
    registered there gets a batch of scored, tokenized rollouts; groups of equal scores are not sent."""
    import asyncio

    import aiohttp

    tokenizer = _tokenizer(tmp_path / "tokenizer")
    fake = FakeVLLM(tokenizer)
    app = web.Application()
    app.router.add_get("/health", fake.health)
    app.router.add_post("/generate", fake.generate)
    runner, port = await serve_on_loopback(app)
    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text("".join(json.dumps({"id": t, "prompt": p, "files": f, "verify": v}) + "\n"
                                  for t, (p, f, v, *_) in TASKS.items()))
    api_port = _free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "HERMES_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "WANDB_MODE": "disabled", "TMPDIR": str(scratch)}
    api = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "run-api"), "--host", "127.0.0.1", "--port", str(api_port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    serve = None
    serve_log = (tmp_path / "serve.log").open("wb")   # a file, not a pipe nobody reads that could fill up
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{api_url}/status") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            async with session.post(f"{api_url}/register", json={
                    "wandb_group": "g", "wandb_project": "p", "batch_size": GROUP_SIZE * 2, "max_token_len": 4096,
                    "checkpoint_dir": str(tmp_path / "ckpt"), "save_checkpoint_interval": -1,
                    "starting_step": 0, "num_steps": 5}) as resp:
                assert resp.status == 200
            async with session.get(f"{api_url}/batch") as resp:   # the trainer starts
                assert (await resp.json())["batch"] is None
            serve = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "rl", "serve", "--tasks", str(tasks_file),
                "--group-size", str(GROUP_SIZE), "--rollout-server-url", api_url,
                "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "tiny",
                "--tokenizer", str(tmp_path / "tokenizer"), "--max-tokens", "4096", "--no-terminal",
                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=serve_log, stdin=asyncio.subprocess.DEVNULL)
            batch = None
            for _ in range(900):
                async with session.get(f"{api_url}/batch") as resp:
                    batch = (await resp.json())["batch"]
                if batch:
                    break
                assert serve.returncode is None, (tmp_path / "serve.log").read_text()[-3000:]
                await asyncio.sleep(0.1)
            assert batch, "no batch from the trajectory API"
    finally:
        for process in (serve, api):
            if process is not None and process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        await runner.cleanup()
    serve_log.close()
    assert serve is not None and serve.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert [p.name for p in scratch.iterdir() if p.name.startswith("hermes-rl-")] == []   # SIGTERM cleaned up
    sequences = [(tokens, masks, score) for group in batch
                 for tokens, masks, score in zip(group["tokens"], group["masks"], group["scores"])]
    assert len(sequences) == GROUP_SIZE * 2
    for group in batch:
        assert len(set(group["scores"])) > 1          # the all-0 group of the broken task is not sent
    for tokens, masks, score in sequences:
        assert len(tokens) == len(masks) and any(m != -100 for m in masks)
        assert score in (0.0, 1.0)


@needs_atropos
@pytest.mark.parametrize("server_keeps_eos", [True, False])
def test_end_of_turn_is_neither_doubled_nor_lost(tmp_path: Path, server_keeps_eos: bool) -> None:
    """Whether or not the server returns the end-of-turn token it stopped at, the sequence has it
    exactly once per turn; only generated ids are unmasked."""
    from agent.rl.tokens import MASKED, TokenTrack

    tokenizer = _tokenizer(tmp_path / "tokenizer")
    track = TokenTrack(tokenizer)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}]
    track.prompt_ids(messages, None)
    reply = _answer("greet", True)
    generated = tokenizer.encode(reply + (EOS if server_keeps_eos else ""), add_special_tokens=False)
    assistant = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "write_file", "arguments": "{}"}}]}
    track.add_completion(generated, [-0.5] * len(generated), "stop", assistant, None)
    messages += [assistant, {"role": "tool", "tool_call_id": "call_0", "content": "wrote hello.txt"}]
    ids = track.prompt_ids(messages, None)
    whole = tokenizer.decode(ids, skip_special_tokens=False)
    assert whole.count(EOS) == 4 and EOS + EOS not in whole
    assert whole.endswith("<|im_start|>assistant\n")
    trained = [m for m in track.masks if m != MASKED]
    assert tokenizer.decode(trained, skip_special_tokens=False) == reply + (EOS if server_keeps_eos else "")
    assert len(track.tokens) == len(track.masks) == len(track.logprobs)


@needs_atropos
def test_config_init_gives_what_atropos_0_4_0_needs() -> None:
    """0.4.0's traps in the defaults: a list of server configs (a single one breaks its CLI), a
    wandb_name (registration fails with a 422 without one), wandb off, and no output file of its
    own (its writer would open name_1.jsonl beside an existing one)."""
    from agent.rl.env import APIServerConfig, HermesAgentEnv

    config, servers = HermesAgentEnv.config_init()
    assert isinstance(servers, list) and all(isinstance(s, APIServerConfig) for s in servers)
    assert config.wandb_name == "hermes-agent" and config.use_wandb is False
    assert config.data_path_to_save_groups is None
