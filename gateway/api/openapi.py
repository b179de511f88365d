"""The OpenAPI 3.1 document of the HTTP API on `[api] host:port`, served at `GET /openapi.json`.

Every route the application serves is in it, the dashboard's pages included (they answer HTML
to a browser); routes an adapter mounts for its platform's webhooks are not (their path is
configured, and the platform signs them). `docs/openapi.json` is this document as printed by
`python -m gateway.api.openapi > docs/openapi.json`; a test checks the two are equal and that
every route of the running application is documented, and schemathesis fuzzes the server
against it (tests/test_api_fuzz.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from gateway.api.openapi_schemas import SCHEMAS, Schema, ref

VERSION = "0.1.0"
JSON = "application/json"
HTML = "text/html"
SSE = "text/event-stream"
FORM = "application/x-www-form-urlencoded"
SESSION_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}


def _events(what: str) -> Schema:
    """One server-sent event (OpenAPI 3.1: the schema of a text/event-stream describes each event)."""
    return {"type": "object", "required": ["data"], "properties": {
        "event": {"type": "string"}, "data": {"type": "string", "description": what}}}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> Schema:
    """An error answer: JSON in OpenAI's format; plain text when a browser asked for a page."""
    return {"description": description, "content": {JSON: {"schema": ref("Error")},
                                                    "text/plain": {"schema": {"type": "string"}}}}


def _page(description: str) -> Schema:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def _redirect(description: str) -> Schema:
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}, "required": True}}}


COMMON: dict[str, tuple[str, Schema]] = {  # status: (name in components.responses, the response)
    "400": ("BadRequest", _error("the request is not right: the message names the parameter")),
    "401": ("Unauthorized", {"description": "no valid token (a browser gets the login form)", "content": {
        JSON: {"schema": ref("Error")}, HTML: {"schema": {"type": "string"}}}}),
    "403": ("Forbidden", _error("a cookie-authenticated change from another origin, or a wrong CSRF token")),
    "404": ("NotFound", _error("no such thing (for this token)")),
    "405": ("MethodNotAllowed", _error("the path does not take this method (the Allow header says which)")),
    "413": ("TooLarge", _error("the body is larger than 25 MiB")),
}
ERRORS: dict[str, Schema] = {status: {"$ref": f"#/components/responses/{name}"}
                             for status, (name, _) in COMMON.items()}


def _op(summary: str, responses: dict[str, Schema], *, tag: str, body: Schema | None = None,
        parameters: list[Schema] | None = None, public: bool = False, op_id: str) -> Schema:
    operation: Schema = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {**responses, **{k: v for k, v in ERRORS.items() if k not in responses}}
    if public:
        operation["security"] = []
    return operation


def _path_param(name: str, schema: Schema | None = None, description: str = "") -> Schema:
    param: Schema = {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}
    if description:
        param["description"] = description
    return param


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _form(properties: dict[str, str], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": {
        name: {"type": "string", "description": text} for name, text in properties.items()}}
    if required:
        schema["required"] = list(required)
    return {"required": True, "content": {FORM: {"schema": schema}}}


def _json_body(name: str) -> Schema:
    return {"required": True, "content": {JSON: {"schema": ref(name)}}}


SESSION_HEADER = {"name": "X-Hermes-Session-Id", "in": "header", "required": False, "schema": SESSION_ID,
                  "description": "keep the conversation on the server under this id (owned by the token)"}
EVENTS_HEADER = {"name": "X-Hermes-Events", "in": "header", "required": False,
                 "schema": {"type": "string",
                            "pattern": "^[ \t]*((tools|html)([ \t]*,[ \t]*(tools|html))*)?[ \t]*$"},
                 "description": "with stream: true, also send Hermes' own events: `tools` (a hermes.tool object as "
                                "each tool starts and ends), `html` (hermes.html: the answer so far as sanitized HTML "
                                "rendered from its Markdown)"}
DONE = _redirect("done (or refused): back to the page, which shows what happened once")
TEAM = _query("team", "the team's library or memory ([[teams]] in config.toml); none: the default")


def _api_paths() -> dict[str, Schema]:
    turn_errors = {"502": _error("the model failed (after retries and fallbacks)"),
                   "503": _error("the gateway is shutting down; try again shortly")}
    return {
        "/v1/models": {"get": _op("The models served: hermes (the agent) and every configured model",
                                  {"200": _json(ref("ModelList"), "the models")}, tag="openai", op_id="listModels")},
        "/v1/models/{model}": {"get": _op(
            "One model", {"200": _json(ref("Model"), "the model")}, tag="openai", op_id="getModel",
            parameters=[_path_param("model", description="a model id (it may contain slashes)")])},
        "/v1/chat/completions": {"post": _op(
            "Run a turn of the agent on the client's conversation (OpenAI's chat completions)",
            {"200": {"description": "the answer; with stream: true, server-sent chat.completion.chunk events",
                     "content": {JSON: {"schema": ref("ChatCompletion")},
                                 SSE: {"schema": _events("a chat.completion.chunk as JSON; the last is [DONE]")}}},
             **turn_errors}, tag="openai", op_id="createChatCompletion", body=_json_body("ChatCompletionRequest"),
            parameters=[SESSION_HEADER, EVENTS_HEADER])},
        "/v1/responses": {"post": _op(
            "Run a turn of the agent (OpenAI's Responses API); stored unless store is false",
            {"200": {"description": "the response; with stream: true, server-sent response.* events",
                     "content": {JSON: {"schema": ref("Response")},
                                 SSE: {"schema": _events("the event as JSON; `event` names its type")}}},
             **turn_errors}, tag="openai", op_id="createResponse", body=_json_body("ResponsesRequest"))},
        "/v1/responses/{response_id}": {"get": _op(
            "A stored response of this token", {"200": _json(ref("Response"), "the response")}, tag="openai",
            op_id="getResponse", parameters=[_path_param("response_id")])},
        "/api/sessions": {"get": _op("This token's server-side conversations (the latest 500)",
                                     {"200": _json(ref("SessionList"), "the sessions")}, tag="sessions",
                                     op_id="listSessions")},
        "/api/sessions/{session_id}": {
            "get": _op("One session", {"200": _json(ref("Session"), "the session")}, tag="sessions",
                       op_id="getSession", parameters=[_path_param("session_id", SESSION_ID)]),
            "delete": _op("Delete a session with its messages",
                          {"200": _json(ref("SessionDeleted"), "deleted"),
                           "409": _error("the session is answering a message")}, tag="sessions",
                          op_id="deleteSession", parameters=[_path_param("session_id", SESSION_ID)])},
        "/api/sessions/{session_id}/stop": {"post": _op(
            "Stop the session's running answer (which then ends with \"Stopped.\")",
            {"200": _json(ref("SessionStopped"), "whether an answer was running")}, tag="sessions",
            op_id="stopSession", parameters=[_path_param("session_id", SESSION_ID)])},
        "/api/sessions/{session_id}/messages": {"get": _op(
            "A session's conversation as the client sees it", {"200": _json(ref("SessionMessages"), "the messages")},
            tag="sessions", op_id="listSessionMessages", parameters=[
                _path_param("session_id", SESSION_ID),
                _query("view", "web: each answer also has html (its Markdown rendered and sanitized) and steps "
                               "(the tool calls made before it), as the web chat shows them", {"enum": ["web"]})])},
    }


def _ops_paths() -> dict[str, Schema]:
    return {
        "/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                                     tag="operations", op_id="getOpenApi")},
        "/healthz": {"get": _op("Health", {"200": _json(ref("Health"), "ok"),
                                           "503": _json(ref("Health"), "stopping")}, tag="operations",
                                op_id="health")},
        "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "the text exposition format",
                                                               "content": {"text/plain": {"schema": {"type": "string"}}}}},
                                tag="operations", op_id="metrics")},
        "/": {"get": _op("The web chat (the login form without a login)", {"200": _page("the page")}, tag="web",
                         public=True, op_id="webChat")},
        "/chat.js": {"get": _op("The web chat's script", {"200": {"description": "JavaScript", "content": {
            "text/javascript": {"schema": {"type": "string"}}}}}, tag="web", op_id="webChatScript")},
        "/login": {
            "post": _op("Log in with the token: a session cookie",
                        {"303": _redirect("logged in: to `next`"), "401": _page("wrong token: the form again"),
                         "429": {"description": "too many failed logins from this address in a minute",
                                 "headers": {"Retry-After": {"schema": {"type": "string"}}},
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}},
                        tag="web", public=True, op_id="login",
                        body=_form({"token": "the API token", "next": "where to go after (a path here)"}, ("token",)))},
        "/logout": {"post": _op("Log out (ends the session)", {"303": _redirect("to /")}, tag="web", op_id="logout")},
    }


def _dashboard_paths() -> dict[str, Schema]:
    def page(summary: str, op_id: str, *params: Schema) -> Schema:
        return {"get": _op(summary, {"200": _page("the page")}, tag="dashboard", op_id=op_id,
                           parameters=list(params) or None)}

    def action(summary: str, op_id: str, form: dict[str, str], *params: Schema) -> Schema:
        return {"post": _op(summary, {"303": DONE}, tag="dashboard", op_id=op_id, body=_form(form),
                            parameters=list(params) or None)}

    csrf = {"_csrf": "the page's CSRF token (cookie logins only)"}
    paths = {
        "/dashboard": page("Overview: sessions, turns, tokens, errors", "dashboardOverview"),
        "/dashboard/static/{filename}": {"get": _op(
            "The dashboard's style sheet and scripts",
            {"200": {"description": "the file", "content": {"text/css": {"schema": {"type": "string"}},
                                                             "application/javascript": {"schema": {"type": "string"}}}},
             "403": _error("not a file of the folder"),
             "404": {"description": "no such file (an empty body)"}},
            tag="dashboard", op_id="dashboardStatic", parameters=[_path_param("filename")])},
        "/sessions": page("Sessions", "dashboardSessions"),
        "/sessions/{id}": page("One session's messages and tool calls", "dashboardSession", _path_param("id")),
        "/skills": page("The skill library", "dashboardSkills", TEAM, _query("q", "search words")),
        "/skills/{name}": page("One skill and its history", "dashboardSkill", _path_param("name"), TEAM),
        "/skills/{name}/file": page("A file of a skill", "dashboardSkillFile", _path_param("name"), TEAM,
                                    _query("path", "the file inside the skill's folder")),
        "/skills/{name}/revert": action("Revert a skill to an earlier version", "dashboardSkillRevert",
                                        {**csrf, "team": "the team", "to": "the version number"},
                                        _path_param("name")),
        "/memory": {**page("MEMORY.md and each person's USER.md", "dashboardMemory"),
                    **action("Add, replace or remove a memory entry", "dashboardMemoryChange", {
                        **csrf, "target": "memory or user", "action": "add, replace or remove", "team": "the team",
                        "platform": "for user", "user_id": "for user", "text": "add", "old_text": "replace, remove",
                        "new_text": "replace"})},
        "/cron": page("Scheduled jobs", "dashboardCron"),
        "/cron/{id}": page("One scheduled job", "dashboardCronJob", _path_param("id")),
        "/cron/{id}/{action}": action("Pause, resume or run a job now", "dashboardCronAction",
                                      {**csrf, "back": "job: back to the job's page"}, _path_param("id"),
                                      _path_param("action", {"enum": ["pause", "resume", "run"]})),
        "/pairing": page("Pairing requests and who may talk to the agent", "dashboardPairing"),
        "/pairing/{action}": action("Approve or reject a pairing code, or revoke a user", "dashboardPairingAction",
                                    {**csrf, "code": "approve, reject", "user_id": "revoke", "platform": "revoke"},
                                    _path_param("action", {"enum": ["approve", "reject", "revoke"]})),
        "/learning/proposals/{id}/{verdict}": action(
            "Approve or reject a proposal", "dashboardProposalDecide", {**csrf, "reason": "why (reject)"},
            _path_param("id"), _path_param("verdict", {"enum": ["approve", "reject"]})),
    }
    paths["/learning"] = {"get": _op(
        "The learning log and pending proposals: a page, or JSON with Accept: application/json",
        {"200": {"description": "the page, or the log", "content": {HTML: {"schema": {"type": "string"}},
                                                                    JSON: {"schema": ref("LearningLog")}}}},
        tag="dashboard", op_id="learningLog", parameters=[
            _query("limit", "entries, 1 to 1000 (JSON; a 400 names a bad one)"),
            TEAM, _query("session", "one session's entries (JSON)"), _query("user", "an API user's (JSON)"),
            _query("after", "only entries after this id (JSON)")])}
    return paths


def document() -> dict[str, Any]:
    """The whole document (a new dict each call)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hermes Gateway", "version": VERSION, "description": (
            "The gateway's HTTP API: OpenAI-compatible chat completions and responses that run the agent, "
            "server-side sessions, operations, the web chat and the dashboard. Every route needs the API token "
            "(Authorization: Bearer TOKEN) or the login cookie, except the login form itself. Errors are JSON in "
            "OpenAI's format.")},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": {**_api_paths(), **_ops_paths(), **_dashboard_paths()},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the API token ([api] token)"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "hermes_session",
                           "description": "the session a browser gets from POST /login"}},
            "responses": {name: response for name, response in COMMON.values()},
            "schemas": json.loads(json.dumps(SCHEMAS)),
        },
    }


def main() -> None:
    """Print the document (what docs/openapi.json holds)."""
    sys.stdout.write(json.dumps(document(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
