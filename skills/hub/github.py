"""The GitHub REST API, as far as the hub needs it: resolve a ref, read a folder, open a PR.

The API base is configurable (`https://ghe.example.com/api/v3` for GitHub Enterprise); the token
comes from settings (the config's `${GITHUB_TOKEN}`), never from a file the hub writes.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from skills.hub.checks import Budget, write_staged
from skills.hub.errors import HubError
from skills.hub.net import Http
from skills.hub.settings import HubSettings

SHA = re.compile(r"^[0-9a-f]{40}$")


class GitHubApi:
    def __init__(self, http: Http, settings: HubSettings, owner: str, repo: str) -> None:
        self.http = http
        self.settings = settings
        self.owner = owner
        self.repo = repo
        self.base = f"{settings.github_api.rstrip('/')}/repos/{quote(owner)}/{quote(repo)}"

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.settings.github_token:
            headers["Authorization"] = f"Bearer {self.settings.github_token}"
        return headers

    @property
    def label(self) -> str:
        return f"{self.owner}/{self.repo}"

    async def _get(self, path: str, what: str) -> Any:
        return await self.http.get_json(f"{self.base}{path}", self.headers, what)

    async def _maybe(self, path: str) -> Any | None:
        status, body = await self.http.request("GET", f"{self.base}{path}", headers=self.headers)
        if status == 404:
            return None
        import json
        return json.loads(body)

    async def default_branch(self) -> str:
        data = await self._get("", f"GitHub repository {self.label}")
        return str(data.get("default_branch") or "main")

    async def resolve_ref(self, ref: str = "") -> str:
        """A commit sha for a branch, tag or sha (the default branch when empty)."""
        if SHA.match(ref):
            return ref
        ref = ref or await self.default_branch()
        for kind in ("heads", "tags"):
            data = await self._maybe(f"/git/ref/{kind}/{quote(ref, safe='/')}")
            if data is None:
                continue
            target = data.get("object", {})
            if target.get("type") == "tag":  # an annotated tag points at a tag object
                target = (await self._get(f"/git/tags/{target['sha']}", f"tag {ref}")).get("object", {})
            if target.get("sha"):
                return str(target["sha"])
        raise HubError(f"GitHub repository {self.label} has no branch or tag {ref!r}")

    async def contents(self, path: str, ref: str) -> Any | None:
        return await self._maybe(f"/contents/{quote(path.strip('/'))}?ref={quote(ref)}")

    async def download_folder(self, path: str, ref: str, target: Path, budget: Budget, prefix: str = "") -> None:
        """Write every file under `path` at `ref` into `target` (links and submodules refused)."""
        listing = await self.contents(path, ref)
        if listing is None:
            raise HubError(f"{self.label}: no folder {path!r} at {ref[:12]}")
        if isinstance(listing, dict):
            raise HubError(f"{self.label}: {path!r} is a file; give the skill's folder")
        for entry in listing:
            relative = f"{prefix}{entry['name']}"
            kind = entry.get("type")
            if kind == "dir":
                await self.download_folder(entry["path"], ref, target, budget, prefix=f"{relative}/")
            elif kind == "file":
                if int(entry.get("size", 0)) > self.settings.max_file_bytes:
                    raise HubError(f"{budget.where}: {relative} is {entry.get('size')} bytes; the limit per file "
                                   f"is {self.settings.max_file_bytes}")
                data = await self.contents(entry["path"], ref)
                if not isinstance(data, dict) or data.get("encoding") != "base64":
                    raise HubError(f"{budget.where}: cannot read {relative} through the contents API")
                write_staged(target, relative, base64.b64decode(data.get("content", "")), budget)
            else:
                raise HubError(f"{budget.where}: {relative} is a {kind}; links and submodules are refused")

    # -------------------------------------------------------------- publishing

    async def create_branch(self, branch: str, sha: str) -> None:
        await self.http.request("POST", f"{self.base}/git/refs", headers=self.headers,
                                json_body={"ref": f"refs/heads/{branch}", "sha": sha})

    async def put_file(self, path: str, data: bytes, branch: str, message: str) -> None:
        existing = await self.contents(path, branch)
        body: dict[str, Any] = {"message": message, "content": base64.b64encode(data).decode(), "branch": branch}
        if isinstance(existing, dict) and existing.get("sha"):
            body["sha"] = existing["sha"]
        await self.http.request("PUT", f"{self.base}/contents/{quote(path)}", headers=self.headers, json_body=body)

    async def create_pull(self, title: str, head: str, base: str, body: str) -> dict[str, Any]:
        status, raw = await self.http.request("POST", f"{self.base}/pulls", headers=self.headers,
                                              json_body={"title": title, "head": head, "base": base, "body": body})
        import json
        return json.loads(raw)
