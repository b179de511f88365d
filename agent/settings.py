"""Settings of the agent loop, the model and the built-in tools (pydantic, strict).

The gateway's configuration file embeds these models as its `[model]`, `[agent]` and `[tools]`
sections, so the agent and the config share one definition.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class FallbackModel(Section):
    name: str
    api_base: str = ""
    api_key: str = ""


class ModelConfig(Section):
    """`[model]`: which LiteLLM model answers, and how to reach it."""

    name: str = Field("", description="any LiteLLM model string, e.g. openai/gpt-4o-mini")
    api_base: str = ""
    api_key: str = ""
    fallbacks: list[str | FallbackModel] = Field(default_factory=list)
    timeout: float = Field(120.0, gt=0, description="seconds for one model call")
    max_retries: int = Field(3, ge=0, le=20, description="retries on 429, timeouts and 5xx per model")
    retry_base_delay: float = Field(1.0, ge=0, description="first backoff delay in seconds")
    context_window: int = Field(0, ge=0, description="tokens; 0 asks LiteLLM's model map")
    temperature: float | None = None
    stream: bool = True

    def chain(self) -> list[FallbackModel]:
        """The primary model followed by its fallbacks, in order."""
        first = FallbackModel(name=self.name, api_base=self.api_base, api_key=self.api_key)
        rest = [
            f if isinstance(f, FallbackModel) else FallbackModel(name=f, api_base=self.api_base, api_key=self.api_key)
            for f in self.fallbacks
        ]
        return [first, *rest]


class AgentConfig(Section):
    """`[agent]`: the agent loop's limits."""

    max_iterations: int = Field(30, ge=1, le=500, description="model calls per turn at most")
    compress_at: float = Field(0.75, gt=0.1, le=0.98, description="share of the context window")
    keep_recent_messages: int = Field(8, ge=2)
    system_prompt: str = ""
    max_concurrent_model_calls: int = Field(8, ge=1)
    model_workers: int = Field(0, ge=0, le=64, description="processes running LiteLLM for `hermes gateway`; "
                               "0 runs it in the gateway process")


class TerminalConfig(Section):
    """`[tools.terminal]`: the shell tool and the sandbox every command runs in."""

    enabled: bool = False
    sandbox: Literal["auto", "bubblewrap", "landlock", "none"] = Field(
        "auto", description="auto: bubblewrap, else Landlock, else the terminal stays off; none: UNSANDBOXED")
    network: bool = Field(False, description="let commands use the network")
    env: list[str] = Field(default_factory=list, description="environment passed to commands: NAME (the gateway's "
                           "value) or NAME=value; nothing else is passed")
    read_only_paths: list[str] = Field(default_factory=list, description="extra folders commands may read")
    timeout: float = Field(60.0, gt=0, description="wall-clock seconds per command")
    cpu_seconds: int = Field(60, ge=0, description="CPU seconds per process; 0 = no limit")
    memory_mb: int = Field(2048, ge=0, description="address space per process in MB; 0 = no limit")
    max_processes: int = Field(256, ge=0, description="processes of the gateway's user; 0 = no limit "
                               "(not enforced for root)")
    max_file_mb: int = Field(1024, ge=0, description="largest file a command may write, MB; 0 = no limit")
    max_output_chars: int = Field(20_000, ge=1_000)
    shell: str = "/bin/bash"
    dangerous_patterns: list[str] = Field(default_factory=list, description="extra regexes needing approval")


class WebFetchConfig(Section):
    """`[tools.web_fetch]`: limits, and which internal addresses an admin opened (none by default)."""

    enabled: bool = True
    timeout: float = Field(20.0, gt=0)
    max_bytes: int = Field(2_000_000, ge=10_000)
    max_chars: int = Field(40_000, ge=1_000)
    allow_private: bool = Field(False, description="open loopback, private, link-local and CGNAT addresses "
                                "(never metadata, multicast or unspecified ones)")
    allow_hosts: list[str] = Field(default_factory=list, description="host names, *.suffix globs, addresses or "
                                   "networks (10.0.0.0/8) fetches may reach even when internal")


class DelegateConfig(Section):
    enabled: bool = True
    max_depth: int = Field(1, ge=0, le=3)
    max_iterations: int = Field(15, ge=1)


class ToolsConfig(Section):
    """`[tools]`: the built-in tools."""

    terminal: TerminalConfig = Field(default_factory=TerminalConfig)
    web_fetch: WebFetchConfig = Field(default_factory=WebFetchConfig)
    delegate: DelegateConfig = Field(default_factory=DelegateConfig)
    files: bool = True
    max_read_chars: int = Field(200_000, ge=1_000, description="most characters one read_file call returns")
    workspaces_dir: str = Field("", description="where the sessions' workspace folders live; empty: "
                                "$HERMES_WORKSPACES_DIR, else HERMES_HOME/workspaces. Several gateway "
                                "processes need one they all share: a session's turns run on any of them")


class LearningConfig(Section):
    """`[learning]`: when the self-evaluation review runs, and what it may spend."""

    checkpoint_every: int = Field(15, ge=1, description="tool calls in one turn before a mid-task review")
    end_of_turn_min_tool_calls: int = Field(8, ge=1, description="a turn with this many tool calls is reviewed")
    review_every_user_turns: int = Field(10, ge=1, description="unreviewed user turns that make a review due")
    review_idle_seconds: float = Field(900.0, ge=1, description="a session with unreviewed turns quiet this "
                                       "long is reviewed")
    review_max_tokens: int = Field(30_000, ge=0, description="one review stops past this many tokens; 0 = no cap")
    announce: bool = True
    auto_skills: Literal["on", "ask", "off"] = "on"
    model: str = Field("", description="model for checkpoints; empty means [model]")
    daily_token_budget: int = Field(200_000, ge=0, description="review tokens per team per UTC day; 0 = no limit")
    auto_memory: Literal["on", "ask"] = Field("on", description='"ask": memory writes of reviews become proposals')
    curate_cron: str = Field("0 4 * * 0", description='when `hermes skills curate --apply` runs; "" = never')


class MemoryConfig(Section):
    """`[memory]`: MEMORY.md and USER.md bounds."""

    memory_chars: int = Field(2_200, ge=200)
    user_chars: int = Field(1_400, ge=200)
