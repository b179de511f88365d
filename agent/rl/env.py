"""`HermesAgentEnv`: an Atropos (atroposlib 0.4.0) environment that runs our agent on tasks.jsonl.

Every rollout lays the task's workspace out in a fresh folder, runs one turn of our real agent loop
(`agent.loop.Agent`) with the built-in tools confined to that workspace (the terminal in the
sandbox), then runs the task's verifier in the sandbox: its score in [0, 1] is the reward. A
rollout that raises (a server error, a broken template, a tool crash) scores 0 and the group goes
on: one rollout's exception never aborts the run (in 0.4.0 it would).

Tokens: with a token server (`server_type` vllm or sglang: ids in, ids out) every rollout carries
its real token ids, masks (-100 on prompts and tool output) and inference logprobs
(`agent.rl.tokens`). With a plain OpenAI-compatible server there are no ids to be had: the groups
are labelled `"sft_only": true` and carry messages and scores, with empty token lists rather than
made-up ones.

The traps of 0.4.0 handled here: `config_init` returns a list of server configs; `wandb_name` is
always set (registration fails with a 422 without it); wandb is off unless asked for (its
`process` forces it on, so `hermes rl process` does not go through that CLI); the output file is
the one named (0.4.0's writer would pick `name_1.jsonl` beside an existing one); and token lists
are built here, not by `tokenize_for_trainer`.

Only `hermes rl` imports this module: it imports atroposlib (and with it transformers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from atroposlib.envs.base import APIServerConfig, BaseEnv, BaseEnvConfig
from pydantic import Field

from agent.builtin import builtin_tools
from agent.eval.tasks import EvalTask, lay_out, load_tasks, verify
from agent.llm import LLMClient
from agent.loop import Agent, Conversation
from agent.model_call import CallRequest, DeltaCallback, LLMResponse
from agent.prompt import BASE_PROMPT
from agent.rl.tokens import MASKED, TokenCaller
from agent.settings import AgentConfig, ModelConfig, TerminalConfig, ToolsConfig
from agent.tools.registry import ToolContext, ToolRegistry
from agent.workspace import Workspace

log = logging.getLogger(__name__)

TOKEN_SERVERS = ("vllm", "sglang")
NEVER_COMPRESS = 10**12   # a context window no rollout reaches
RL_SYSTEM_PROMPT = BASE_PROMPT.split("When a skill")[0].strip() + (
    "\nYour workspace is the current folder: use your tools on the files there.")


class HermesEnvConfig(BaseEnvConfig):
    """The environment's settings: Atropos' own, plus where the tasks are and how rollouts run."""

    tasks_file: str = Field(default="bench/tasks/tasks.jsonl", description="tasks.jsonl to roll out")
    sandbox: str = Field(default="auto", description="where the terminal and verifiers run: auto, bubblewrap, "
                         "landlock, none")
    terminal: bool = Field(default=True, description="offer the sandboxed terminal tool")
    max_iterations: int = Field(default=12, ge=1, le=200, description="model calls per rollout at most")
    temperature: float = Field(default=1.0, ge=0.0, description="sampling temperature of rollouts")
    workspace_dir: str = Field(default="", description="folder for the rollouts' workspaces (default: a temp dir)")
    keep_workspaces: bool = Field(default=False, description="leave every rollout's workspace behind")


class _ChatCaller:
    """A `ModelCaller` over Atropos' OpenAI-compatible chat completions (SFT-only: no token ids)."""

    def __init__(self, server: Any, max_tokens: int) -> None:
        self.server = server
        self.max_tokens = max_tokens

    async def call(self, request: CallRequest, on_delta: DeltaCallback | None = None) -> LLMResponse:
        kwargs: dict[str, Any] = {"messages": request.messages, "n": 1, "max_tokens": self.max_tokens}
        if request.tools:
            kwargs["tools"] = request.tools
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        completion = await self.server.chat_completion(**kwargs)
        choice = completion.choices[0]
        message: dict[str, Any] = {"role": "assistant", "content": choice.message.content}
        if choice.message.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.function.name, "arguments": c.function.arguments or "{}"}}
                                     for c in choice.message.tool_calls]
        usage = completion.usage
        return LLMResponse(message=message, model=str(completion.model or ""),
                           prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                           completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                           cost=0.0, finish_reason=str(choice.finish_reason or ""))


class HermesAgentEnv(BaseEnv):
    """Our agent loop and tools on tasks.jsonl, scored by each task's verifier."""

    name = "hermes-agent"
    env_config_cls = HermesEnvConfig

    @classmethod
    def config_init(cls) -> tuple[HermesEnvConfig, list[APIServerConfig]]:
        # 0.4.0: a list of server configs (a single one breaks its CLI), and wandb_name always set
        config = HermesEnvConfig(wandb_name=cls.name, use_wandb=False, group_size=4, total_steps=-1,
                                 max_token_length=8192, ensure_scores_are_not_same=False,
                                 include_messages=True, tokenizer_name="NousResearch/Hermes-3-Llama-3.1-8B")
        server = APIServerConfig(server_type="vllm", base_url="http://127.0.0.1:9000/v1",
                                 model_name="NousResearch/Hermes-3-Llama-3.1-8B", api_key="x")
        return config, [server]

    @property
    def token_server(self) -> bool:
        first = self.server.servers[0] if self.server.servers else None
        return getattr(getattr(first, "config", None), "server_type", "openai") in TOKEN_SERVERS

    async def setup(self) -> None:
        config: HermesEnvConfig = self.config  # type: ignore[assignment]
        self.tasks_path = Path(config.tasks_file).resolve()
        self.tasks: list[EvalTask] = await asyncio.to_thread(load_tasks, self.tasks_path)
        self.next_index = 0
        self.limit_items: int | None = None     # `hermes rl process`: stop after this many items
        root = config.workspace_dir or tempfile.mkdtemp(prefix="hermes-rl-")
        self.workspace_root = Path(root)
        self.workspace_root.mkdir(parents=True, exist_ok=True)
        self.rollout_errors = 0

    async def get_next_item(self) -> EvalTask | None:
        if self.limit_items is not None and self.next_index >= self.limit_items:
            return None
        task = self.tasks[self.next_index % len(self.tasks)]
        self.next_index += 1
        return task

    async def evaluate(self, *args: Any, **kwargs: Any) -> None:
        """Every task once; the mean score is logged (and kept as `eval_score`)."""
        rollouts = await asyncio.gather(*(self.rollout(task) for task in self.tasks))
        mean = sum(r["score"] for r in rollouts) / max(1, len(rollouts))
        self.eval_score = mean
        log.info("hermes-agent eval: mean score %.3f over %d tasks", mean, len(rollouts))

    async def collect_trajectories(self, item: EvalTask) -> tuple[dict[str, Any], list[Any]]:
        """group_size rollouts of one task; each scores in [0, 1], a failed one 0."""
        rollouts = await asyncio.gather(*(self.rollout(item) for _ in range(self.config.group_size)))
        group: dict[str, Any] = {
            "tokens": [r["tokens"] for r in rollouts],
            "masks": [r["masks"] for r in rollouts],
            "scores": [r["score"] for r in rollouts],
            "messages": [r["messages"] for r in rollouts],
            "inference_logprobs": [r["logprobs"] for r in rollouts] if self.token_server else None,
            "advantages": None, "ref_logprobs": None, "group_overrides": {}, "overrides": None, "images": None,
            "generation_params": {"temperature": self.config.temperature},  # type: ignore[attr-defined]
            "task_id": item.id,
            "sft_only": not self.token_server,
            "errors": [r["error"] for r in rollouts],
        }
        return group, []

    def _caller(self, tokens: bool) -> Any:
        if tokens:
            manager = self.server

            async def generate(ids: list[int], params: dict[str, Any]) -> tuple[list[int], list[float], str]:
                _, outs, logprobs, finishes = await manager.tokens_and_logprobs_completion(
                    input_ids=ids, n=1, **params)
                return list(outs[0]), list(logprobs[0]), str(finishes[0] or "")

            return TokenCaller(self.tokenizer, generate, self.config.max_token_length,
                               model=self.server.servers[0].config.model_name)
        return _ChatCaller(self.server, min(4096, self.config.max_token_length))

    async def rollout(self, task: EvalTask) -> dict[str, Any]:
        """One try at `task` in its own workspace; never raises (an error scores 0)."""
        config: HermesEnvConfig = self.config  # type: ignore[assignment]
        workspace = self.workspace_root / f"{task.id}-{uuid.uuid4().hex[:8]}"
        caller = self._caller(self.token_server)
        conversation = Conversation(system=RL_SYSTEM_PROMPT)
        score, error = 0.0, ""
        try:
            await asyncio.to_thread(lay_out, task, self.tasks_path, workspace)
            tools = ToolsConfig(terminal=TerminalConfig(enabled=config.terminal, sandbox=config.sandbox))
            registry = ToolRegistry(builtin_tools(tools))
            # a rollout is one growing sequence: never compressed (the token caller stops at
            # max_token_length itself), and no tokenizer of LiteLLM's is ever asked to count it
            model = ModelConfig(name=f"atropos/{getattr(caller, 'model', 'chat')}", stream=False, max_retries=0,
                                context_window=NEVER_COMPRESS, temperature=config.temperature)
            agent = Agent(LLMClient(model, caller=caller), registry,
                          AgentConfig(max_iterations=config.max_iterations))
            ctx = ToolContext(workspace=Workspace(workspace), session_id=f"rl:{task.id}", platform="rl")
            await agent.run_turn(conversation, task.prompt, ctx, stream=False)
            verdict = await verify(task, workspace, config.sandbox)
            score = max(0.0, min(1.0, verdict.score))
            if not verdict.passed:
                error = verdict.output[-300:]
        except Exception as exc:  # noqa: BLE001 - one rollout's failure is a 0, not the end of the run
            self.rollout_errors += 1
            error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("rollout of %s failed (scored 0): %s", task.id, error)
            score = 0.0
        finally:
            if not config.keep_workspaces:
                await asyncio.to_thread(shutil.rmtree, workspace, True)
        messages = conversation.for_model()
        if isinstance(caller, TokenCaller):
            track = caller.track
            tokens, masks, logprobs = list(track.tokens), list(track.masks), list(track.logprobs)
            if not tokens:   # it failed before the first call: the prompt alone, all masked
                try:
                    tokens = track.encode(track.render(messages or [{"role": "user", "content": task.prompt}],
                                                       None, generation_prompt=True))
                except Exception:  # noqa: BLE001
                    tokens = []
                masks, logprobs = [MASKED] * len(tokens), [1.0] * len(tokens)
        else:
            tokens, masks, logprobs = [], [], []
        return {"tokens": tokens, "masks": masks, "logprobs": logprobs, "score": score,
                "messages": messages, "error": error}


def placeholder_tokenizer(folder: Path) -> str:
    """A one-token tokenizer saved in `folder`, for SFT-only runs without a Hugging Face one.

    Atropos 0.4.0 loads `tokenizer_name` in every environment, even when a plain OpenAI-compatible
    server gives no token ids to use it on; a model such as `gpt-4o-mini` has no tokenizer to load.
    Nothing is ever encoded with this one: SFT-only groups carry no token lists.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>")),
                                        unk_token="<unk>")
    tokenizer.save_pretrained(folder)
    return str(folder)


def offline_env(config: HermesEnvConfig, servers: list[APIServerConfig]) -> HermesAgentEnv:
    """The environment for `hermes rl process`: no trainer, no wandb, writing nothing itself."""
    config = config.model_copy(update={"use_wandb": False, "data_path_to_save_groups": None,
                                       "ensure_scores_are_not_same": False})
    os.environ.setdefault("WANDB_MODE", "disabled")
    return HermesAgentEnv(config, servers, slurm=False, testing=False)


async def run_process(env: HermesAgentEnv, out: Path, groups: int | None = None,
                      on_group: Any = None) -> list[dict[str, Any]]:
    """`groups` scored groups (default: one per task) written to `out` as JSON lines.

    The file named is the file written (replaced whole when the run ends; 0.4.0 would write
    `name_1.jsonl` beside an existing one), and no group is dropped for equal scores.
    """
    await env.setup()
    env.limit_items = groups if groups is not None else len(env.tasks)
    written: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with partial.open("w", encoding="utf-8") as handle:
        while (item := await env.get_next_item()) is not None:
            group, _ = await env.collect_trajectories(item)
            handle.write(json.dumps(group, ensure_ascii=False) + "\n")
            handle.flush()
            written.append(group)
            if on_group is not None:
                on_group(len(written), env.limit_items, group)
    os.replace(partial, out)
    return written
