"""`hermes rl`: Atropos rollouts of our agent on tasks.jsonl (the `[rl]` extra).

    hermes rl process --tasks bench/tasks/tasks.jsonl --out rollouts.jsonl --group-size 4 \\
        --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    hermes rl serve --tasks bench/tasks/tasks.jsonl --rollout-server-url http://127.0.0.1:8000 ...

`process` writes scored groups offline (no trainer, no GPU here); `serve` feeds Atropos'
trajectory API for a trainer. Token ids and masks come only from a token server (vLLM's
`/generate`, `--server-type vllm`); with `--server-type openai` the groups are SFT-only (messages
and scores, no tokens). atroposlib (and transformers) are imported only when one of these runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import click

from gateway.cli.common import fail

INSTALL_HINT = 'the [rl] extra is not installed: pip install -c constraints.txt -e ".[rl]"'


def _env_module(use_wandb: bool = False) -> Any:
    if not use_wandb:
        os.environ.setdefault("WANDB_MODE", "disabled")
        os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import agent.rl.env as env_module
    except ImportError as exc:
        if "atroposlib" in str(exc) or getattr(exc, "name", "") in ("atroposlib", "transformers"):
            fail(INSTALL_HINT, code=2)
        raise
    return env_module


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--tasks", "tasks_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="tasks.jsonl: id, prompt, verify, and optional workflow, workspace, files."),
        click.option("--group-size", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Rollouts of each task per group."),
        click.option("--server-type", type=click.Choice(["vllm", "sglang", "openai"]), default="vllm",
                     show_default=True, help="vllm/sglang: token ids and masks; openai: SFT-only, no tokens."),
        click.option("--base-url", default="http://127.0.0.1:9000/v1", show_default=True,
                     help="The inference server (its /generate is used for vllm)."),
        click.option("--model", "model", required=True, help="The served model name."),
        click.option("--tokenizer", default="", help="Hugging Face tokenizer name or folder (default: --model; "
                     "none needed with --server-type openai)."),
        click.option("--api-key", default="x", show_default=True, help="Key the inference server wants."),
        click.option("--max-tokens", type=click.IntRange(64, 1_000_000), default=8192, show_default=True,
                     help="Most tokens in one rollout (prompt, tool output and generations)."),
        click.option("--max-iterations", type=click.IntRange(1, 200), default=12, show_default=True,
                     help="Model calls per rollout at most."),
        click.option("--temperature", type=float, default=1.0, show_default=True),
        click.option("--sandbox", default="auto", show_default=True,
                     type=click.Choice(["auto", "bubblewrap", "landlock", "none"]),
                     help="Where the terminal tool and the verifiers run."),
        click.option("--no-terminal", is_flag=True, help="Offer the file tools only."),
        click.option("--keep-workspaces", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Keep every rollout's workspace in this folder."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _configs(module: Any, tasks_file: Path, group_size: int, server_type: str, base_url: str, model: str,
             tokenizer: str, api_key: str, max_tokens: int, max_iterations: int, temperature: float, sandbox: str,
             no_terminal: bool, keep_workspaces: Path | None, scratch: Path, **extra: Any) -> tuple[Any, list[Any]]:
    """The environment's config and its server; `scratch` (removed when the command ends) holds the
    rollouts' workspaces, unless --keep-workspaces names a folder, and an SFT-only placeholder tokenizer."""
    from agent.eval.tasks import TaskError, load_tasks

    try:
        load_tasks(tasks_file)
    except TaskError as exc:
        fail(str(exc), code=2)
    if not tokenizer and server_type == "openai":
        tokenizer = module.placeholder_tokenizer(scratch / "tokenizer")   # SFT-only: no ids, maybe no HF tokenizer
    config, _ = module.HermesAgentEnv.config_init()
    config = config.model_copy(update={
        "tasks_file": str(tasks_file.resolve()), "group_size": group_size, "tokenizer_name": tokenizer or model,
        "max_token_length": max_tokens, "max_iterations": max_iterations, "temperature": temperature,
        "sandbox": sandbox, "terminal": not no_terminal,
        "workspace_dir": str((keep_workspaces or scratch / "workspaces").resolve()),
        "keep_workspaces": keep_workspaces is not None, **extra})
    server = module.APIServerConfig(server_type=server_type, base_url=base_url, model_name=model,
                                    tokenizer_name=tokenizer or model, api_key=api_key)
    return config, [server]


@click.group("rl")
def rl_group() -> None:
    """Atropos rollouts of the agent on tasks.jsonl, scored by the verifiers (the [rl] extra)."""


@rl_group.command("process")
@_common
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("rollouts.jsonl"),
              show_default=True, help="The scored groups, one JSON line each (replaced if it exists).")
@click.option("--groups", type=click.IntRange(1, 100_000), default=None,
              help="Groups to write (default: one per task).")
def process(out: Path, groups: int | None, **options: Any) -> None:
    """Write scored groups offline: no trainer, no GPU, no wandb."""
    module = _env_module()

    def show(done: int, total: int, group: dict[str, Any]) -> None:
        scores = ", ".join(f"{s:.2f}" for s in group["scores"])
        click.echo(f"group {done}/{total} {group['task_id']}: scores [{scores}]", err=True)

    with tempfile.TemporaryDirectory(prefix="hermes-rl-") as scratch:
        config, servers = _configs(module, scratch=Path(scratch), **options)
        env = module.offline_env(config, servers)
        tokens = "real token ids and masks" if env.token_server else "SFT-only (no token ids from this server)"
        click.echo(f"hermes: rolling out {options['tasks_file']} in groups of {config.group_size}; {tokens}",
                   err=True)
        written = asyncio.run(module.run_process(env, out, groups, on_group=show))
    click.echo(f"wrote {out}: {len(written)} groups x {config.group_size} rollouts"
               f" ({'SFT-only' if not env.token_server else 'with tokens'}; {env.rollout_errors} rollouts failed)")
    if not written:
        raise SystemExit(1)


@rl_group.command("serve")
@_common
@click.option("--rollout-server-url", default="http://127.0.0.1:8000", show_default=True,
              help="Atropos' trajectory API (run-api).")
@click.option("--total-steps", type=click.IntRange(-1, 10_000_000), default=-1, show_default=True,
              help="Trainer steps to feed; -1 asks the trajectory API.")
@click.option("--wandb-name", default="hermes-agent", show_default=True,
              help="The environment's name at the API (must be set, or registration fails with a 422).")
@click.option("--wandb/--no-wandb", "use_wandb", default=False, show_default=True, help="Log to Weights & Biases.")
def serve(rollout_server_url: str, total_steps: int, wandb_name: str, use_wandb: bool, **options: Any) -> None:
    """Feed scored groups to Atropos' trajectory API (a trainer pulls them from there)."""
    if options["server_type"] == "openai":
        fail("serve feeds a trainer, which needs token ids: use --server-type vllm (or sglang); "
             "`hermes rl process --server-type openai` writes SFT-only groups", code=2)
    module = _env_module(use_wandb)
    # SIGTERM ends it like Ctrl-C: the rollouts' workspaces in the scratch folder are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with tempfile.TemporaryDirectory(prefix="hermes-rl-") as scratch:
        config, servers = _configs(module, rollout_server_url=rollout_server_url, total_steps=total_steps,
                                   wandb_name=wandb_name or "hermes-agent", use_wandb=use_wandb, scratch=Path(scratch),
                                   ensure_scores_are_not_same=True, **options)   # equal scores teach nothing
        env = module.HermesAgentEnv(config, servers, slurm=False, testing=False)
        click.echo(f"hermes: serving rollouts of {options['tasks_file']} to {rollout_server_url} as "
                   f"{config.wandb_name}", err=True)
        try:
            asyncio.run(env.env_manager())
        except KeyboardInterrupt:
            pass
