-- The OpenAI-compatible API (gateway/api/): which API token owns which `X-Hermes-Session-Id`
-- session (the session's conversation itself is in `sessions`/`messages` under the key
-- `api:<token_id>:<session_id>`), and the Responses API's stored responses, with the
-- conversation each one ends, for `previous_response_id` and `GET /v1/responses/{id}`.
-- token_id is a hash of the token, never the token.
CREATE TABLE api_sessions (
    token_id    TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    PRIMARY KEY (token_id, session_id)
);

CREATE TABLE api_responses (
    id                    TEXT PRIMARY KEY,
    token_id              TEXT NOT NULL,
    previous_response_id  TEXT,
    created_at            REAL NOT NULL,
    response              TEXT NOT NULL,
    messages              TEXT NOT NULL
);
CREATE INDEX api_responses_token ON api_responses (token_id, created_at);
