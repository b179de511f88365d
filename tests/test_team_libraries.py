"""A team's sessions write skills into the team's own library, not the shared default one."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_config
from gateway.home import Home
from gateway.runtime import Runtime
from gateway.sessions import SessionService
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls

SKILL = ("---\nname: ops-deploy\ndescription: Deploy the ops stack. Use when asked to deploy ops.\n---\n\n"
         "# Deploy\n\n1. run make deploy\n")


async def test_team_session_writes_into_its_team_library(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    runtime = await Runtime.open(load_config(None, Home.from_env()), Home.from_env())
    try:
        session = await runtime.store.active_session("slack:C1:U1", platform="slack", chat_id="C1",
                                                     user_id="U1", team="ops")
        model_server.add(tool_calls(("skill_manage", {"action": "create", "name": "ops-deploy", "category": "ops",
                                                      "content": SKILL})), text("saved"))
        result = await SessionService(runtime).run_turn(session, "remember how to deploy")
        assert result.text == "saved"
        assert (home / "teams" / "ops" / "skills" / "ops" / "ops-deploy" / "SKILL.md").is_file()
        assert not list((home / "skills").rglob("ops-deploy"))
    finally:
        await runtime.close()


async def test_toolsets_narrow_the_tools_a_session_is_offered(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server) + '[toolsets]\nadmin = "all"\n[toolsets.sets]\n'
                 'public = ["web_fetch", "skill_*"]\n[toolsets.platforms]\nslack = "public"\n'
                 '[slack]\nadmins = ["UADMIN"]\n')
    runtime = await Runtime.open(load_config(None, Home.from_env()), Home.from_env())
    try:
        service = SessionService(runtime)
        public = await runtime.store.active_session("slack:C1:U1", platform="slack", chat_id="C1", user_id="U1")
        await service.run_turn(public, "hi")
        offered = {t["function"]["name"] for t in model_server.requests[-1]["tools"]}
        assert offered == {"web_fetch", "skill_manage", "skill_view", "skill_search"}
        admin = await runtime.store.active_session("slack:D9:UADMIN", platform="slack", chat_id="D9",
                                                   user_id="UADMIN")
        await service.run_turn(admin, "hi")
        offered = {t["function"]["name"] for t in model_server.requests[-1]["tools"]}
        assert {"read_file", "write_file", "memory"} <= offered
    finally:
        await runtime.close()
