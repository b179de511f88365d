"""The JSON Schemas (OpenAPI 3.1 `components.schemas`) of the HTTP API's request and response bodies.

They say what `gateway.api.request_models` accepts (types, ranges, the 2,000-message bound) and
what the handlers answer; `gateway.api.openapi` puts them into the document. A request that fits
a schema can still be refused with a 400 for what a schema cannot say (the last message must be
a user message; a body nested more than 64 levels deep).
"""

from __future__ import annotations

from typing import Any

from gateway.api.request_models import MAX_MESSAGES, MAX_USER_CHARS

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


NULLABLE_STRING: Schema = {"type": ["string", "null"]}
IMAGE_URL: Schema = {"type": "string", "pattern": "^(https?://|data:image/)",
                     "description": "an http(s) URL or a data:image/... URL"}
TEXT_PART: Schema = {"type": "object", "required": ["type", "text"],
                     "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
IMAGE_PART: Schema = {
    "type": "object", "required": ["type", "image_url"],
    "properties": {"type": {"const": "image_url"}, "image_url": {"oneOf": [
        IMAGE_URL, {"type": "object", "required": ["url"], "properties": {"url": IMAGE_URL,
                                                                         "detail": {"type": "string"}}}]}}}
REFUSAL_PART: Schema = {"type": "object", "required": ["type", "refusal"],
                        "properties": {"type": {"const": "refusal"}, "refusal": {"type": "string"}}}
SAMPLING: dict[str, Schema] = {
    "model": {"type": "string", "description": "`hermes` (the default), `hermes-agent`, or a model GET /v1/models "
                                               "lists"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "stream": {"type": "boolean", "description": "answer with server-sent events"},
    "user": {"type": "string", "maxLength": MAX_USER_CHARS,
             "description": "the person the request is for (their USER.md); no control characters"},
    "tool_choice": {"enum": ["auto", "none"],
                    "description": "client-side tools are not supported: the agent runs its own"},
}
USAGE: Schema = {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                 "properties": {k: {"type": "integer", "minimum": 0}
                                for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["message", "type"],
            "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                           "param": NULLABLE_STRING, "code": NULLABLE_STRING}}},
        "description": "every error of the API, in OpenAI's format"},
    "Model": {
        "type": "object", "required": ["id", "object", "created", "owned_by"],
        "properties": {"id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
                       "owned_by": {"type": "string"}}},
    "ModelList": {"type": "object", "required": ["object", "data"],
                  "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}}},
    "ChatMessage": {
        "oneOf": [
            {"type": "object", "required": ["role", "content"], "properties": {
                "role": {"enum": ["system", "developer"]}, "content": {"type": "string"}, "name": {"type": "string"}},
             "description": "the client's instructions, added after the agent's own system prompt"},
            {"type": "object", "required": ["role", "content"], "properties": {
                "role": {"const": "user"}, "name": {"type": "string"},
                "content": {"oneOf": [{"type": "string"},
                                      {"type": "array", "items": {"oneOf": [TEXT_PART, IMAGE_PART]}}]}}},
            {"type": "object", "required": ["role"], "properties": {
                "role": {"const": "assistant"}, "name": {"type": "string"},
                "content": {"oneOf": [{"type": "string"}, {"type": "null"},
                                      {"type": "array", "items": {"oneOf": [TEXT_PART, REFUSAL_PART]}}]}}}],
        "description": "tool messages and tool calls are refused (client-side tools are not supported)"},
    "ChatCompletionRequest": {
        "type": "object", "required": ["messages"],
        "properties": {
            **SAMPLING,
            "messages": {"type": "array", "items": ref("ChatMessage"), "minItems": 1, "maxItems": MAX_MESSAGES,
                         "description": "the conversation; after the system messages, the last one is the "
                                        "user's new message"},
            "n": {"type": "integer", "minimum": 1, "maximum": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
            "seed": {"type": "integer"},
            "response_format": {"type": "object", "required": ["type"], "properties": {
                "type": {"enum": ["text", "json_object", "json_schema"]}, "json_schema": {"type": "object"}}},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}},
                               "description": "only with stream: true"},
        }},
    "ChatCompletion": {
        "type": "object", "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"}, "object": {"const": "chat.completion"}, "created": {"type": "integer"},
            "model": {"type": "string"}, "usage": USAGE,
            "choices": {"type": "array", "items": {
                "type": "object", "required": ["index", "message", "finish_reason"],
                "properties": {"index": {"type": "integer"}, "finish_reason": {"type": "string"},
                               "message": {"type": "object", "required": ["role", "content"], "properties": {
                                   "role": {"const": "assistant"}, "content": {"type": "string"}}}}}}}},
    "ResponsesRequest": {
        "type": "object", "required": ["input"],
        "properties": {
            **SAMPLING,
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "maxItems": MAX_MESSAGES, "items": {
                "type": "object", "required": ["role", "content"], "properties": {
                    "type": {"const": "message"}, "role": {"enum": ["system", "developer", "user", "assistant"]},
                    "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {
                        "type": "object", "required": ["type"], "properties": {
                            "type": {"enum": ["input_text", "output_text", "text", "refusal", "input_image"]},
                            "text": {"type": "string"}, "refusal": {"type": "string"},
                            "image_url": {"type": "string"}, "detail": {"type": "string"}}}}]}}}}]},
            "instructions": {"type": "string"},
            "previous_response_id": {"type": "string", "maxLength": 128},
            "store": {"type": "boolean", "description": "keep the response (default true)"},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "text": {"type": "object", "properties": {"format": {
                "type": "object", "required": ["type"], "properties": {
                    "type": {"enum": ["text", "json_object", "json_schema"]}, "name": {"type": "string"},
                    "schema": {"type": "object"}, "strict": {"type": "boolean"}}}}},
        }},
    "Response": {
        "type": "object", "required": ["id", "object", "created_at", "status", "model", "output"],
        "properties": {
            "id": {"type": "string"}, "object": {"const": "response"}, "created_at": {"type": "integer"},
            "status": {"enum": ["completed", "in_progress", "failed"]}, "model": {"type": "string"},
            "previous_response_id": NULLABLE_STRING,
            "output": {"type": "array", "items": {
                "type": "object", "required": ["id", "type", "role", "content"], "properties": {
                    "id": {"type": "string"}, "type": {"const": "message"}, "role": {"const": "assistant"},
                    "content": {"type": "array", "items": {
                        "type": "object", "required": ["type", "text"],
                        "properties": {"type": {"const": "output_text"}, "text": {"type": "string"}}}}}}},
            "usage": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["input_tokens", "output_tokens", "total_tokens"],
                "properties": {k: {"type": "integer", "minimum": 0}
                               for k in ("input_tokens", "output_tokens", "total_tokens")}}]}}},
    "Session": {
        "type": "object", "required": ["id", "object", "created_at", "updated_at", "title", "message_count"],
        "properties": {"id": {"type": "string"}, "object": {"const": "hermes.session"}, "user": NULLABLE_STRING,
                       "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
                       "title": {"type": "string"}, "message_count": {"type": "integer", "minimum": 0}}},
    "SessionList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": ref("Session")}}},
    "SessionMessages": {
        "type": "object", "required": ["object", "session_id", "data"],
        "properties": {"object": {"const": "list"}, "session_id": {"type": "string"}, "data": {
            "type": "array", "items": {"type": "object", "required": ["role", "content", "created_at"], "properties": {
                "role": {"enum": ["user", "assistant"]}, "content": {}, "created_at": {"type": "integer"},
                "html": {"type": "string"}, "steps": {"type": "array", "items": {
                    "type": "object", "required": ["name", "arguments"], "properties": {
                        "object": {"const": "hermes.tool"}, "id": {"type": "string"}, "name": {"type": "string"},
                        "arguments": {"type": "string"}, "status": {"type": "string"}}}}}}}}},
    "SessionStopped": {"type": "object", "required": ["id", "object", "stopped"], "properties": {
        "id": {"type": "string"}, "object": {"const": "hermes.session.stop"}, "stopped": {"type": "boolean"}}},
    "SessionDeleted": {"type": "object", "required": ["id", "object", "deleted"], "properties": {
        "id": {"type": "string"}, "object": {"const": "hermes.session.deleted"}, "deleted": {"const": True}}},
    "Health": {"type": "object", "required": ["status", "adapters"], "properties": {
        "status": {"enum": ["ok", "stopping"]}, "model": NULLABLE_STRING, "adapters": {"type": "object"},
        "busy_sessions": {"type": "integer"}, "model_workers": {"type": "object"}}},
    "LearningLog": {"type": "object", "required": ["entries", "pending", "queue", "budget", "notices"], "properties": {
        "entries": {"type": "array", "items": {"type": "object"}}, "pending": {"type": "array"},
        "queue": {"type": "object"}, "budget": {"type": "object"}, "usage_by_purpose": {"type": "object"},
        "notices": {"type": "array", "items": {"type": "object", "required": ["id", "text"]}}}},
}
