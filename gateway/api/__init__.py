"""Our own HTTP surface: web chat, OpenAI-compatible API, /healthz and /metrics (aiohttp)."""
