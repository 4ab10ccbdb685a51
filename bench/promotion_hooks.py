"""Run `mwaa-elt` or the AWS CLI with botocore event hooks that record every HTTP request.

Both tools are botocore-based, so one hook covers them: every botocore session created in the
process gets a `before-send` and a `response-received` handler (both fire once per HTTP attempt,
retries included). The record, written as JSON when the tool exits, holds per operation the
request count, the requests per key area (`dags`, `scripts`, `.mwaa-elt/manifest.json`...: the
first part of the key, two for the tool's own `.mwaa-elt/` area), HTTP statuses, body bytes sent
(the request's Content-Length) and received (the response body; nothing for HEAD), and the
monotonic clock at the first request and the last response, which the parent compares with its
own clock (CLOCK_MONOTONIC is system-wide).

Standard library and botocore only: it runs in .venv (mwaa-elt) and .venv-bench-awscli (awscli,
whose botocore is vendored and importable as `botocore` once `awscli` is imported).

Usage: python bench/promotion_hooks.py RECORD.json {mwaa-elt|aws} ARGS...
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

TOOLS = ("mwaa-elt", "aws")


class Recorder:
    """Requests by operation, bytes each way, and when the first request left and the last
    response arrived; safe to call from the AWS CLI's transfer threads."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.operations: dict[str, dict[str, Any]] = {}
        self.first_send: float | None = None
        self.last_response: float | None = None
        # (monotonic time, "send" or "response", operation, area) for every attempt, in order.
        self.timeline: list[tuple[float, str, str, str]] = []

    def _operation(self, event_name: str) -> dict[str, Any]:
        # "before-send.s3.PutObject" -> "s3.PutObject"
        name = event_name.split(".", 1)[1]
        return self.operations.setdefault(
            name, {"requests": 0, "bytes_up": 0, "bytes_down": 0, "statuses": {}, "areas": {}}
        )

    def before_send(self, request: Any, event_name: str, **_: Any) -> None:
        now = time.monotonic()
        sent = _request_bytes(request)
        area = key_area(request.url)
        with self.lock:
            if self.first_send is None:
                self.first_send = now
            entry = self._operation(event_name)
            entry["requests"] += 1
            entry["bytes_up"] += sent
            entry["areas"][area] = entry["areas"].get(area, 0) + 1
            self.timeline.append((now, "send", event_name.split(".", 1)[1], area))

    def response_received(
        self, event_name: str, response_dict: dict[str, Any] | None, **_: Any
    ) -> None:
        now = time.monotonic()
        status = "error" if response_dict is None else str(response_dict.get("status_code"))
        received = 0 if response_dict is None else _response_bytes(response_dict)
        with self.lock:
            self.last_response = now
            entry = self._operation(event_name)
            entry["bytes_down"] += received
            entry["statuses"][status] = entry["statuses"].get(status, 0) + 1
            self.timeline.append((now, "response", event_name.split(".", 1)[1], status))

    def to_dict(self, exit_code: int, ended: float) -> dict[str, Any]:
        """The record the parent reads."""
        return {
            "exit_code": exit_code,
            "hooked_at": self.started,
            "first_send": self.first_send,
            "last_response": self.last_response,
            "ended": ended,
            "operations": dict(sorted(self.operations.items())),
            "timeline": self.timeline,
        }


def key_area(url: str) -> str:
    """The area of the bucket a request touches: `dags`, `scripts`, `.mwaa-elt/bundles`,
    `.mwaa-elt/manifest.json`...; `(bucket)` for bucket-level calls, `(service)` for non-S3."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if _path_style(parts.hostname or ""):
        segments = segments[1:]  # the first segment is the bucket
    if not segments:
        return "(bucket)" if parts.path not in ("", "/") else "(service)"
    if segments[0].startswith(".") and len(segments) > 1:
        return f"{segments[0]}/{segments[1]}"
    return segments[0] if len(segments) > 1 else "(top level)"


def _path_style(host: str) -> bool:
    # botocore addresses buckets by path on IP and localhost endpoints (the sandbox).
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _request_bytes(request: Any) -> int:
    length = request.headers.get("Content-Length")
    if length is not None:
        return int(length)
    body = request.body
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    return 0


def _response_bytes(response_dict: dict[str, Any]) -> int:
    body = response_dict.get("body")
    if isinstance(body, bytes | bytearray):
        return len(body)
    # A streaming body (GetObject) is read later by the caller: its length is in the headers.
    headers = response_dict.get("headers") or {}
    return int(headers.get("content-length") or headers.get("Content-Length") or 0)


def install(recorder: Recorder) -> None:
    """Register the recorder on every botocore session created from now on."""
    import botocore.session

    original = botocore.session.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("before-send", recorder.before_send)
        self.register("response-received", recorder.response_received)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


def _run_tool(tool: str, args: list[str]) -> int:
    sys.argv = [tool, *args]
    try:
        if tool == "aws":
            from awscli.clidriver import main as aws_main

            return int(aws_main() or 0)
        from mwaa_elt.__main__ import main as mwaa_elt_main

        mwaa_elt_main()
        return 0
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TOOLS:
        print(__doc__, file=sys.stderr)
        return 2
    record, tool, args = Path(argv[0]), argv[1], argv[2:]
    recorder = Recorder()
    if tool == "aws":
        import awscli  # noqa: F401  (makes the vendored botocore importable as `botocore`)
    else:  # what `mwaa-elt` does first, before the hooks import botocore (`mwaa_elt.__main__`)
        from mwaa_elt.promote.airflow_ahead import start_for_arguments

        start_for_arguments(args)
    install(recorder)
    code = 1
    try:
        code = _run_tool(tool, args)
    finally:
        ended = time.monotonic()
        sys.stdout.flush()
        record.write_text(json.dumps(recorder.to_dict(code, ended), indent=2) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
