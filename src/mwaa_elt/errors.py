"""Errors the CLI turns into messages and exit codes, never tracebacks."""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_EXTERNAL = 3


class MwaaEltError(Exception):
    """An error a user can act on; `messages` are printed one per line."""

    exit_code = EXIT_INVALID

    def __init__(self, messages: str | Iterable[str]) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("\n".join(self.messages))


class ConfigError(MwaaEltError):
    """A stack config or pipeline spec is invalid."""


class ExternalError(MwaaEltError):
    """An external system (AWS, Pulumi) failed after retries."""

    exit_code = EXIT_EXTERNAL
