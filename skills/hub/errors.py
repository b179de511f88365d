"""Errors of the hub: every one carries a message a user can act on."""

from __future__ import annotations

from skills.guard import GuardReport


class HubError(Exception):
    """A hub operation failed (network, missing skill, bad archive ...); the library is unchanged."""


class GuardRefused(HubError):
    """The guard refused the skill (dangerous: quarantined; caution: the user declined)."""

    def __init__(self, message: str, report: GuardReport, quarantined: str = "") -> None:
        super().__init__(message)
        self.report = report
        self.quarantined = quarantined
