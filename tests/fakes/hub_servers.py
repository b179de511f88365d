"""Fakes for the skills hub on 127.0.0.1: a GitHub REST API (repos, refs, contents, pulls) and a
well-known skills index serving archives; plus a local bare git repository used as a tap."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serve_on_loopback


class FakeGitHub:
    """One repository per owner/name, every commit a full snapshot {path: bytes}."""

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.repos: dict[str, dict[str, Any]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    def commit(self, repo: str, files: dict[str, bytes | str], branch: str = "main") -> str:
        data = self.repos.setdefault(repo, {"default_branch": "main", "branches": {}, "tags": {}})
        parent = self.commits.get(data["branches"].get(branch, ""), {})
        snapshot = {**parent, **{k: v.encode() if isinstance(v, str) else v for k, v in files.items()}}
        sha = hashlib.sha1(json.dumps(sorted((k, v.hex()) for k, v in snapshot.items())).encode()
                           + str(len(self.commits)).encode()).hexdigest()
        self.commits[sha] = snapshot
        data["branches"][branch] = sha
        return sha

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v3/repos/{owner}/{repo}{rest:.*}", self.handle)
        self._runner, self.port = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        rest = request.match_info["rest"]
        self.requests.append((request.method, rest, request.headers.get("Authorization", "")))
        data = self.repos.get(repo)
        if data is None:
            return web.json_response({"message": "Not Found"}, status=404)
        if rest == "" and request.method == "GET":
            return web.json_response({"full_name": repo, "default_branch": data["default_branch"]})
        if rest.startswith("/git/ref/") and request.method == "GET":
            kind, _, name = rest[len("/git/ref/"):].partition("/")
            sha = data["branches" if kind == "heads" else "tags"].get(name)
            if sha is None:
                return web.json_response({"message": "Not Found"}, status=404)
            return web.json_response({"ref": f"refs/{kind}/{name}", "object": {"type": "commit", "sha": sha}})
        if rest == "/git/refs" and request.method == "POST":
            body = await request.json()
            data["branches"][body["ref"].removeprefix("refs/heads/")] = body["sha"]
            return web.json_response({"ref": body["ref"], "object": {"sha": body["sha"]}}, status=201)
        if rest.startswith("/contents"):
            path = rest[len("/contents"):].strip("/")
            if request.method == "GET":
                ref = request.query.get("ref") or data["default_branch"]
                sha = data["branches"].get(ref, ref)
                return self._contents(self.commits.get(sha, {}), path)
            if request.method == "PUT":
                body = await request.json()
                self.commit(repo, {path: base64.b64decode(body["content"])}, branch=body["branch"])
                return web.json_response({"content": {"path": path}}, status=201)
        if rest == "/pulls" and request.method == "POST":
            body = await request.json()
            pull = {**body, "number": len(self.pulls) + 1,
                    "html_url": f"https://github.example/{repo}/pull/{len(self.pulls) + 1}"}
            self.pulls.append(pull)
            return web.json_response(pull, status=201)
        return web.json_response({"message": "Not Found"}, status=404)

    @staticmethod
    def _contents(snapshot: dict[str, bytes], path: str) -> web.Response:
        if path in snapshot:
            blob = snapshot[path]
            return web.json_response({"type": "file", "path": path, "name": path.rsplit("/", 1)[-1],
                                      "size": len(blob), "encoding": "base64",
                                      "sha": hashlib.sha1(blob).hexdigest(),
                                      "content": base64.b64encode(blob).decode()})
        prefix = f"{path}/" if path else ""
        entries: dict[str, dict[str, Any]] = {}
        for key, blob in snapshot.items():
            if not key.startswith(prefix):
                continue
            head, _, tail = key[len(prefix):].partition("/")
            entries[head] = {"name": head, "path": prefix + head, "type": "dir" if tail else "file",
                             "size": 0 if tail else len(blob)}
        if not entries:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(sorted(entries.values(), key=lambda e: e["name"]))


def tar_gz(files: dict[str, bytes | str], top: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


class FakeIndex:
    """`/.well-known/skills/index.json` plus `/archives/NAME-VERSION.tar.gz` (or raw bytes)."""

    def __init__(self) -> None:
        self.skills: list[dict[str, Any]] = []
        self.archives: dict[str, bytes] = {}
        self.fail_with: int | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, name: str, version: str, files: dict[str, bytes | str] | None = None,
                description: str = "", archive: bytes | None = None, with_sha: bool = True) -> None:
        data = archive if archive is not None else tar_gz(files or {}, top=name)
        path = f"archives/{name}-{version}.tar.gz"
        self.archives[path] = data
        entry = {"name": name, "description": description, "version": version, "url": f"/{path}"}
        if with_sha:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
        self.skills.append(entry)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/skills/index.json", self.index)
        app.router.add_get("/archives/{file}", self.archive)
        self._runner, self.port = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def index(self, request: web.Request) -> web.Response:
        if self.fail_with:
            return web.Response(status=self.fail_with, text="upstream trouble")
        return web.json_response({"skills": self.skills})

    async def archive(self, request: web.Request) -> web.Response:
        data = self.archives.get(f"archives/{request.match_info['file']}")
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/gzip")


def git_run(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


class GitTap:
    """A bare repository (the tap) and a working clone that pushes skills to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "tap.git"
        self.work = root / "tap-work"
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare)], check=True)
        subprocess.run(["git", "clone", "--quiet", str(self.bare), str(self.work)], check=True, capture_output=True)
        git_run("checkout", "--quiet", "-B", "main", cwd=self.work)

    def push(self, files: dict[str, str], message: str = "update") -> str:
        for relative, text in files.items():
            path = self.work / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        git_run("add", "--all", ".", cwd=self.work)
        git_run("commit", "--quiet", "-m", message, cwd=self.work)
        git_run("push", "--quiet", "origin", "HEAD:main", cwd=self.work)
        return git_run("rev-parse", "HEAD", cwd=self.work).strip()

    def pull(self) -> None:
        git_run("pull", "--quiet", "origin", "main", cwd=self.work)


def skill_md(name: str, description: str = "", body: str = "") -> str:
    description = description or f"The {name} skill does {name} things. Use when {name} is needed."
    body = body or f"# {name}\n\n## Procedure\n1. Do the {name} step.\n2. Check the result.\n"
    return f"---\nname: {name}\ndescription: {description}\nlicense: MIT\n---\n\n{body}"
