"""`[mcp]` settings: the MCP servers the agent may use (pydantic, strict, no heavy imports).

    [mcp]
    restart_delay = 1.0

    [[mcp.servers]]
    name = "github"
    command = "npx"
    args = ["-y", "@modelcontextprotocol/server-github"]
    env = { GITHUB_PERSONAL_ACCESS_TOKEN = "${GITHUB_TOKEN}" }

    [[mcp.servers]]
    name = "search"
    url = "https://mcp.example.com/mcp"
    headers = { Authorization = "Bearer ${SEARCH_MCP_TOKEN}" }
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.settings import Section

SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class McpServerConfig(Section):
    """One `[[mcp.servers]]` entry: a stdio command or a streamable HTTP URL."""

    name: str = Field(description="prefix of its tools: NAME__tool")
    enabled: bool = True
    command: str = Field("", description="stdio: the executable to run")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict,
                                description="added to a minimal environment (PATH, HOME, ...); nothing else is inherited")
    cwd: str = ""
    url: str = Field("", description="streamable HTTP endpoint, e.g. https://host/mcp")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(60.0, gt=0, description="seconds for one tool call")
    startup_timeout: float = Field(30.0, gt=0, description="seconds to start and list tools")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVER_NAME.match(value) or "__" in value:
            raise ValueError("use 1-32 letters, digits, '-' or '_' (no '__'), starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError(f"server {self.name!r}: set exactly one of command (stdio) or url (streamable HTTP)")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"server {self.name!r}: url must start with http:// or https://")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command else "http"


class McpConfig(Section):
    """`[mcp]`: servers and how they are supervised."""

    servers: list[McpServerConfig] = Field(default_factory=list)
    restart_delay: float = Field(1.0, ge=0, description="first wait before restarting a dead server; doubles")
    max_restart_delay: float = Field(60.0, ge=0)
    health_interval: float = Field(15.0, gt=0, description="seconds between liveness pings")

    @model_validator(mode="after")
    def _unique_names(self) -> McpConfig:
        seen: set[str] = set()
        for server in self.servers:
            if server.name in seen:
                raise ValueError(f"two [[mcp.servers]] entries are named {server.name!r}")
            seen.add(server.name)
        return self
