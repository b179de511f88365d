"""Hypothesis on config.toml and on schedules: every bad file or expression is a ConfigError /
ScheduleError naming the file and key or the field, and loading a config never changes the file."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from gateway.config import ConfigError, load_config
from gateway.cron.schedule import ScheduleError, parse_schedule
from gateway.home import Home
from tests.fuzz_support import FUZZ, SEED

SECTIONS = {"model": ["name", "api_base", "api_key", "fallbacks", "retry_base_delay", "max_retries"],
            "api": ["port", "host", "token", "trusted_proxies", "session_hours"],
            "telegram": ["enabled", "token", "allowed_users", "mode", "webhook_url"],
            "slack": ["enabled", "token", "signing_secret", "mode"], "discord": ["enabled", "token"],
            "skills": ["max_skill_chars"], "cron": ["enabled"], "store": ["url"], "logging": ["level"],
            "learning": ["auto_skills", "curate_cron"]}
TOML_VALUES = st.sampled_from(['""', '"x"', "1", "-1", "0", "1e400", "inf", "nan", "true", "[]", '["a"]', "[1, 2]",
                               "{}", "{a = 1}", '"${NOPE}"', '"${HOME}"', "1979-05-27T07:32:00Z", '"\\u0000"',
                               "99999999999999999999999", '"' + "a" * 300 + '"', "[[[]]]"])
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@st.composite
def config_texts(draw: Any) -> str:
    lines = []
    names = st.sampled_from(sorted(SECTIONS)) | st.text(min_size=1, max_size=6).map(lambda t: re.sub(r'["\\]', "", t))
    for section in draw(st.lists(names, max_size=4, unique=True)):
        lines.append(f"[{section}]" if section in SECTIONS else f'["{section}"]')
        for key in draw(st.lists(st.sampled_from(SECTIONS.get(section, ["x"])), max_size=5, unique=True)):
            lines.append(f"{key} = {draw(TOML_VALUES)}")
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):  # a typo somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=5)) + text[at:]
    return text


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("fuzz-home"))


@seed(SEED)
@FUZZ
@given(text=config_texts())
def test_a_config_is_loaded_or_refused_naming_the_file_and_nothing_is_written(home: Home, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    home.config_file.write_bytes(data)
    try:
        load_config(None, home, environ={"HOME": "/root"})
    except ConfigError as exc:
        assert str(exc).startswith(str(home.config_file)), exc  # FILE[:LINE[:COLUMN]]: what
    assert home.config_file.read_bytes() == data


def test_a_config_that_is_not_utf8_names_the_file_and_line(home: Home) -> None:
    home.config_file.write_bytes(b'[model]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match=re.escape(f"{home.config_file}:2: not UTF-8 text (byte 0xff)")):
        load_config(None, home, environ={})
    home.config_file.write_bytes(b"")
    home.secrets_file.write_bytes(b"TOKEN=\xfe\n")
    with pytest.raises(ConfigError, match=re.escape(f"{home.secrets_file}:1: not UTF-8 text (byte 0xfe)")):
        load_config(None, home, environ={})
    home.secrets_file.unlink()


FIELDS = st.sampled_from(["*", "*/0", "*/5", "0", "59", "60", "1-5", "5-1", "mon-fri", "L", "15W", "1#2", "?", "L5",
                          "1,2,3", "\u00b2", "\u0663", "99999999999999999999", "-1", "a", "*/99999999999999999",
                          "0-59/0", "jan", "7", "1-7/2", "5L", "LW", "#", "W"])
COUNTS = st.sampled_from(["", "0", "1", "10", "99999999999999999999", "\u00b2", "-1"])
UNITS = st.sampled_from(["m", "s", "d", "w", "x", "", "minutes"])
TIMES = st.sampled_from(["9999-12-31T23:59:59", "0001-01-01", "2030-06-01T09:00+14:00", "2030-06-01T09:00-99:00",
                         "2030-13-01", "2030-06-01 25:00", "2030-06-01T09:00"])
SCHEDULES = st.one_of(
    st.lists(FIELDS, min_size=5, max_size=5).map(" ".join),
    st.lists(FIELDS | st.text(max_size=4), min_size=1, max_size=7).map(" ".join),
    st.tuples(st.sampled_from(["every ", "in "]), COUNTS, UNITS).map("".join),
    TIMES.map(lambda t: "at " + t), st.text(max_size=30))
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "", "Nope/Zone",
                         "../etc/passwd", "\x00"])
FIELD_NAMED = re.compile(r"^(schedule|minute|hour|day|month|day_of_week|interval|time|timezone): ")


@seed(SEED)
@FUZZ
@given(text=SCHEDULES, zone=ZONES)
def test_a_schedule_is_parsed_or_refused_naming_the_field(text: str, zone: str) -> None:
    try:
        schedule = parse_schedule(text, zone, now=NOW)
    except ScheduleError as exc:
        assert FIELD_NAMED.match(str(exc)), exc
        return
    for run in schedule.next_runs(3, after=NOW):  # an accepted schedule has computable fire times
        assert run > NOW


@pytest.mark.parametrize(("text", "zone", "message"), [
    ("in 99999999999999999999w", "UTC", "time: 99999999999999999999w is more than 100 years"),
    ("every 99999999999999999999d", "UTC", "interval: 99999999999999999999d is more than 100 years"),
    ("at 9999-12-31T23:59:59", "America/New_York", "time: '9999-12-31T23:59:59' is out of the range of dates"),
])
def test_times_beyond_the_calendar_are_refused(text: str, zone: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        parse_schedule(text, zone, now=NOW)
