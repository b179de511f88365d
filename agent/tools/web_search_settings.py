"""`[web_search]` settings: which search backend `web_search` uses (no heavy imports).

    [web_search]
    backend = "searxng"                  # searxng | brave | tavily | exa; empty: no web_search tool
    url = "http://127.0.0.1:8888"        # SearXNG instance; for the APIs, an optional base URL override
    api_key = "${BRAVE_API_KEY}"         # brave, tavily and exa
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agent.settings import Section

Backend = Literal["", "searxng", "brave", "tavily", "exa"]

DEFAULT_BASES: dict[str, str] = {
    "brave": "https://api.search.brave.com/res/v1",
    "tavily": "https://api.tavily.com",
    "exa": "https://api.exa.ai",
}


class WebSearchConfig(Section):
    """`[web_search]`: the backend, where it is, and its key."""

    backend: Backend = Field("", description="empty: the web_search tool is not offered")
    url: str = Field("", description="SearXNG instance URL (required for searxng); API base override otherwise")
    api_key: str = ""
    max_results: int = Field(5, ge=1, le=20, description="default number of results")
    timeout: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> WebSearchConfig:
        if self.backend == "searxng" and not self.url:
            raise ValueError('backend "searxng" needs url, the instance address (e.g. http://127.0.0.1:8888)')
        if self.backend in ("brave", "tavily", "exa") and not self.api_key:
            raise ValueError(f'backend "{self.backend}" needs api_key (e.g. api_key = "${{{self.backend.upper()}_API_KEY}}")')
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self

    def base_url(self) -> str:
        return (self.url or DEFAULT_BASES.get(self.backend, "")).rstrip("/")
