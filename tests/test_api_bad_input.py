"""Bad request bodies get a 400 that says what is wrong, never a 500, and the gateway keeps answering."""

from __future__ import annotations

from pathlib import Path

from gateway.api.request_models import MAX_DEPTH
from tests.api_support import api_gateway, raw
from tests.fakes.model_server import FakeModelServer, text


def nested(depth: int) -> str:
    """A JSON array `depth` levels deep: [[[...]]]."""
    return "[" * depth + "]" * depth


async def test_a_deeply_nested_body_is_a_400_naming_the_limit_and_the_gateway_answers_on(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Still here."))
    async with api_gateway(home, model_server) as (gateway, _):
        for path in ("/v1/chat/completions", "/v1/responses"):
            # the body itself, and deep values where a real body has them
            bodies = [nested(5000),
                      '{"model": "hermes", "messages": [{"role": "user", "content": ' + nested(5000) + "}]}",
                      '{"model": "hermes", "input": ' + nested(5000) + "}",
                      '{"model": "hermes", "messages": [{"role": "user", "content": "hi"}], "metadata": '
                      + nested(MAX_DEPTH) + "}"]
            for body in bodies:
                status, _, answer = await raw(gateway, "POST", path, body=body,
                                              headers={"Content-Type": "application/json"})
                assert status == 400, (path, body[:60], answer)
                assert answer["error"]["message"] == \
                    f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep"
                assert answer["error"]["code"] == "too_deeply_nested"
        # as deep as allowed is read (and judged on its content, not refused for its depth)
        status, _, answer = await raw(gateway, "POST", "/v1/chat/completions", body=(
            '{"model": "hermes", "messages": [{"role": "user", "content": "hi"}], "metadata": '
            + nested(MAX_DEPTH - 1) + "}"), headers={"Content-Type": "application/json"})
        assert status == 200, answer
        assert answer["choices"][0]["message"]["content"] == "Still here."


async def test_digits_that_are_not_ascii_are_refused_not_a_500(home: Path, model_server: FakeModelServer) -> None:
    """'²' and '٣' are digits to str.isdigit() but not to int(): they are bad numbers, not crashes."""
    async with api_gateway(home, model_server) as (gateway, _):
        status, _, answer = await raw(gateway, "GET", "/learning?limit=%C2%B2",
                                      headers={"Accept": "application/json"})
        assert status == 400 and answer["error"]["message"] == "limit: '²' is not a number from 1 to 1000"
        status, _, _ = await raw(gateway, "GET", "/learning?after=%D9%A3", headers={"Accept": "application/json"})
        assert status == 200
        # the forms answer with their page again (aiohttp follows the 303), the refusal shown on it
        for path, form, said in (("/learning/proposals/%C2%B2/approve", "", "is not a proposal number"),
                                 ("/skills/code-review/revert", "to=%C2%B2", "is not a version number")):
            status, _, page = await raw(gateway, "POST", path, body=form,
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200 and said in page, (path, status)
