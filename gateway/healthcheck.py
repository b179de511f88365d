"""`python -m gateway.healthcheck`: exit 0 when the local gateway answers `/healthz` with 200, else 1.

Used by the container's HEALTHCHECK and usable from any supervisor. It reads the same config the
gateway reads (`HERMES_HOME/config.toml`, `--config FILE` optional) for the API port and the
bearer token (`[api] token`, `$HERMES_API_TOKEN`, or the one saved in `secrets.env`), and asks
the loopback address when the API listens on every interface. Standard library only beyond the
config loader; never prints the token.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

WILDCARDS = {"", "0.0.0.0", "::", "*"}


def health_url(host: str, port: int) -> str:
    if host in WILDCARDS:
        host = "127.0.0.1" if host != "::" else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/healthz"


def check(config_path: Path | None = None, timeout: float = 4.0) -> tuple[bool, str]:
    """(healthy, one line saying why)."""
    from gateway.config import ConfigError, load_config
    from gateway.home import Home

    try:
        config = load_config(config_path, Home.from_env())
    except ConfigError as exc:
        return False, f"config: {exc}"
    if not config.api.enabled:
        return False, "[api] is disabled: nothing to check"
    if config.api.port == 0:
        return False, "[api] port = 0 (random): set a fixed port to health-check it"
    token = config.api.token.strip() or os.environ.get("HERMES_API_TOKEN", "").strip()
    request = urllib.request.Request(health_url(config.api.host, config.api.port),
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read(65_536) or b"{}")
    except urllib.error.HTTPError as exc:
        return False, f"/healthz answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"/healthz unreachable: {getattr(exc, 'reason', exc)}"
    return True, f"ok ({body.get('status', '?')})"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config_path = Path(args[1]) if len(args) >= 2 and args[0] == "--config" else None
    healthy, why = check(config_path)
    print(why, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
