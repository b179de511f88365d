"""Publishing a skill from the library: a branch and a pull request on GitHub (REST API), or a
commit pushed to a git tap. The guard scans the skill first: a dangerous skill is not published
unless forced."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from skills.guard import scan_folder
from skills.hub import git
from skills.hub.content import file_hashes
from skills.hub.errors import GuardRefused, HubError
from skills.hub.github import GitHubApi
from skills.hub.net import Http
from skills.hub.settings import HubSettings
from skills.hub.sources import find_skills
from skills.hub.taps import TapStore
from skills.library import SkillLibrary
from skills.paths import safe_join

AUTHOR = ("hermes", "hermes@localhost")


async def _skill_files(library: SkillLibrary, name: str, force: bool) -> tuple[Path, str, dict[str, bytes]]:
    skill = await library.get(name)
    report = await asyncio.to_thread(scan_folder, skill.folder, name)
    if report.verdict == "dangerous" and not force:
        raise GuardRefused(f"the guard found {name!r} dangerous; it was not published (--force overrides)", report)

    def read() -> dict[str, bytes]:
        return {relative: (skill.folder / relative).read_bytes() for relative in file_hashes(skill.folder)}

    return skill.folder, skill.category, await asyncio.to_thread(read)


async def publish(library: SkillLibrary, name: str, to: str, settings: HubSettings, taps: TapStore | None,
                  *, force: bool = False) -> str:
    """Publish skill `name` to `github:owner/repo[/folder]` or `tap:NAME`; a line saying where."""
    kind, _, target = to.partition(":")
    if kind == "github":
        return await publish_github(library, name, target, settings, force=force)
    if kind == "tap":
        if taps is None:
            raise HubError("no taps are configured")
        return await publish_tap(library, name, target, taps, force=force)
    raise HubError(f"--to {to!r}: use github:owner/repo[/folder] or tap:NAME")


async def publish_github(library: SkillLibrary, name: str, target: str, settings: HubSettings,
                         *, force: bool = False) -> str:
    parts = [p for p in target.split("/") if p]
    if len(parts) < 2:
        raise HubError(f"github:{target}: give github:owner/repo[/folder]")
    if not settings.github_token:
        raise HubError("publishing to GitHub needs a token: set GITHUB_TOKEN ([hub] github_token = \"${GITHUB_TOKEN}\")")
    owner, repo, folder = parts[0], parts[1], "/".join(parts[2:]) or "skills"
    _, _, files = await _skill_files(library, name, force)
    async with Http(settings) as http:
        api = GitHubApi(http, settings, owner, repo)
        base = await api.default_branch()
        sha = await api.resolve_ref(base)
        branch = f"hermes/skill-{name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        await api.create_branch(branch, sha)
        for relative, data in sorted(files.items()):
            await api.put_file(f"{folder}/{name}/{relative}", data, branch, f"skill {name}: {relative}")
        pull = await api.create_pull(f"Add skill {name}", branch, base,
                                     f"Publishes the skill `{name}` ({len(files)} files) from Hermes.")
    return f"opened pull request {pull.get('html_url') or pull.get('number')} on {owner}/{repo} from branch {branch}"


async def publish_tap(library: SkillLibrary, name: str, tap_name: str, taps: TapStore, *, force: bool = False) -> str:
    tap = taps.get(tap_name)
    if tap.kind != "git":
        raise HubError(f"tap {tap_name!r} is an HTTP index; only git taps can be published to")
    folder, category, files = await _skill_files(library, name, force)
    with tempfile.TemporaryDirectory(prefix="hermes-publish-") as temporary:
        checkout = Path(temporary) / "repo"
        await git.git("clone", "--quiet", "--", tap.url, str(checkout))

        def place() -> None:
            existing = find_skills(checkout).get(name)
            target = existing or safe_join(checkout, *( [category] if category else []), name)
            if target.exists():
                shutil.rmtree(target)
            for relative, data in files.items():
                path = safe_join(target, *Path(relative).parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

        await asyncio.to_thread(place)
        await git.git("add", "--all", ".", cwd=checkout)
        status = await git.git("status", "--porcelain", cwd=checkout)
        if not status.strip():
            return f"tap {tap_name!r} already has skill {name!r} as it is; nothing to publish"
        await git.git("-c", f"user.name={AUTHOR[0]}", "-c", f"user.email={AUTHOR[1]}", "commit", "--quiet",
                      "-m", f"skill {name}: publish from Hermes", cwd=checkout)
        commit = (await git.git("rev-parse", "HEAD", cwd=checkout)).strip()
        await git.git("push", "--quiet", "origin", "HEAD", cwd=checkout)
    return f"pushed skill {name!r} to tap {tap_name!r} as commit {commit[:12]}"
