"""Every AWS call of the CLI goes through here: one retry policy, one classification of failures.

botocore's standard retry mode retries throttling, 5xx answers, connection errors and timeouts
inside each call. `call` adds the same policy (bounded attempts, exponential backoff with full
jitter) where botocore does not retry: a response it cannot parse (a cut-off XML body) and a
streamed body that breaks while it is read. What still fails is reported as an `AwsCallError`
(exit 3) naming the call and the object, the kind of failure, and the state it leaves; wrong or
missing credentials and denied permissions have messages of their own.

Usage, for any new AWS call:

    s3 = aws.client("s3", region)
    body = aws.call(f"s3:GetObject {uri}", lambda: s3.get_object(...)["Body"].read(),
                    expected=aws.MISSING)   # these ClientErrors are re-raised for the caller
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    DataNotFoundError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.loaders import Loader, instance_cache
from botocore.parsers import ResponseParserError  # a plain Exception, not a BotoCoreError

from mwaa_elt.errors import ConfigError, ExternalError

T = TypeVar("T")
Failure = BotoCoreError | ClientError | ResponseParserError

Kind = Literal[
    "throttled",  # 429, SlowDown, Throttling…: retried
    "unavailable",  # 5xx: retried
    "connection",  # reset, refused, closed before a complete response: retried
    "timeout",  # connect or read timeout: retried
    "unparseable",  # a response botocore could not parse, a body cut off while read: retried
    "credentials",  # no, expired or invalid credentials: not retried
    "permission",  # the credentials work but may not do this: not retried
    "rejected",  # any other 4xx: the request itself is wrong: not retried
]
RETRIED: frozenset[Kind] = frozenset(
    {"throttled", "unavailable", "connection", "timeout", "unparseable"}
)

# ClientError codes callers commonly handle themselves (pass as `expected`).
MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
PRECONDITION = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
# A byte range starting past the object's end (HTTP 416).
UNSATISFIABLE_RANGE = frozenset({"InvalidRange", "416"})

NOTHING_CHANGED = "nothing was changed by this step"

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
}
_CREDENTIALS = {
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "TokenRefreshRequired",
    "UnrecognizedClientException",
    "AuthFailure",
    "RequestExpired",
    "RequestTimeTooSkewed",
    "MissingAuthenticationToken",
    "IncompleteSignature",
}
_PERMISSION = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "Forbidden",
    "403",
    "AllAccessDisabled",
    "AccountProblem",
}
_CREDENTIAL_EXCEPTIONS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried: botocore's standard retry mode, and
    the same numbers for the failures botocore does not retry."""

    max_attempts: int = 5  # in all, the first attempt included
    base_seconds: float = 1.0  # the n-th retry waits random() * base * 2^(n-1) …
    max_backoff_seconds: float = 20.0  # … capped here (botocore's standard-mode values)
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based): full jitter."""
        return min(self.max_backoff_seconds, rng() * self.base_seconds * 2 ** (retry - 1))

    def worst_case_seconds(self) -> float:
        """The longest one call can take when every attempt times out: each attempt's
        connect or read timeout plus every backoff at its cap."""
        waits = sum(
            min(self.max_backoff_seconds, self.base_seconds * 2 ** (n - 1))
            for n in range(1, self.max_attempts)
        )
        attempt = self.connect_timeout_seconds + self.read_timeout_seconds
        return self.max_attempts * attempt + waits

    def config(self, *, max_pool_connections: int = 16) -> Config:
        """botocore's client configuration for this policy (standard retry mode, or adaptive
        when `AWS_RETRY_MODE=adaptive` asks for client-side rate limiting too)."""
        mode = "adaptive" if os.environ.get("AWS_RETRY_MODE") == "adaptive" else "standard"
        return Config(
            retries={"mode": mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout_seconds,
            read_timeout=self.read_timeout_seconds,
            max_pool_connections=max_pool_connections,
        )


POLICY = RetryPolicy()


class AwsCallError(ExternalError):
    """An AWS call failed for good (after retries, or at once when retrying cannot help);
    `what` names the call and its object, `kind` the failure."""

    def __init__(
        self, messages: str | Iterable[str], *, what: str = "", kind: Kind = "rejected"
    ) -> None:
        super().__init__(messages)
        self.what = what
        self.kind = kind


class ModelLoader(Loader):
    """botocore's data loader, without the scan it makes before loading a model.

    botocore lists every service folder it ships (about 420, each with its API versions) to
    check that the one asked for exists, once for service models and once for endpoint rules:
    40-70 ms of a command's start that only ever serves an error message (removed upstream in
    boto/botocore#3687). This loads from the asked service's own folders, the lookup botocore
    makes next anyway; a service or model type not found there goes through botocore's own
    path, which raises its own error."""

    @instance_cache
    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        try:
            version = api_version or self.determine_latest_version(service_name, type_name)
            model = self.load_data(os.path.join(service_name, version, type_name))
        except DataNotFoundError:
            return super().load_service_model(service_name, type_name, api_version)
        extras = self._find_extras(service_name, type_name, version)
        self._extras_processor.process(model, extras)
        return model


_LOADER: Loader | None = None


def _botocore_session(profile: str | None) -> botocore.session.Session:
    """A new botocore session for `profile` (its own credentials and configuration, read from
    the environment as boto3's are) that shares one data loader with every other: the service
    models and endpoint rules are parsed once per process, not once per client. The loader
    searches the folders botocore's own would (`AWS_DATA_PATH`, ~/.aws/models, botocore's
    data)."""
    global _LOADER
    session = botocore.session.Session(profile=profile)
    if _LOADER is None:
        own = session.get_component("data_loader")
        _LOADER = ModelLoader(
            extra_search_paths=list(own.search_paths), include_default_search_paths=False
        )
    session.register_component("data_loader", _LOADER)
    return session


def client(
    service: str,
    region: str,
    *,
    profile: str | None = None,
    policy: RetryPolicy | None = None,
    max_pool_connections: int = 16,
    raw_timestamps: bool = False,
) -> Any:
    """A client for `service` with `policy`'s retries and timeouts, from `profile` or the
    default credential chain; honours `AWS_ENDPOINT_URL`. A botocore client: boto3's client
    is the same object plus helpers this tool does not use.

    `raw_timestamps`: timestamps in answers stay the strings AWS sent, as the AWS CLI keeps
    them; botocore otherwise parses each into a datetime, a third of the time it takes to read
    a listing of 1,000 keys. For clients whose callers read no timestamp."""
    try:
        session = _botocore_session(profile)
        if raw_timestamps:
            factory = session.get_component("response_parser_factory")
            factory.set_parser_defaults(timestamp_parser=str)
        return session.create_client(
            service,
            region_name=region,
            config=(policy or POLICY).config(max_pool_connections=max_pool_connections),
        )
    except ProfileNotFound as error:
        raise ConfigError(f"AWS profile: {error}; check AWS_PROFILE or --source-profile") from None
    except NoRegionError as error:
        raise ConfigError(f"AWS region: {error}") from None


def error_code(error: ClientError) -> str:
    """The error code of an AWS error answer ("NoSuchKey", "SlowDown", "404"…)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def classify(error: BaseException) -> Kind:
    """What kind of failure `error` is, which decides whether retrying can help."""
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _THROTTLING or status == 429:
            return "throttled"
        if code in _CREDENTIALS:
            return "credentials"
        if code in _PERMISSION:
            return "permission"
        if status >= 500 or code in {"InternalError", "ServiceUnavailable", "RequestTimeout"}:
            return "unavailable"
        return "rejected"
    if isinstance(error, _CREDENTIAL_EXCEPTIONS):
        return "credentials"
    if isinstance(error, ReadTimeoutError) or "timeout" in type(error).__name__.lower():
        return "timeout"
    if isinstance(error, ResponseParserError | IncompleteReadError | ResponseStreamingError):
        return "unparseable"
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return "connection"
    return "rejected"


def _botocore_retried(error: BaseException) -> bool:
    """Whether botocore's retry handler already spent the attempts on this error."""
    if isinstance(error, ClientError):
        return classify(error) in {"throttled", "unavailable"}
    return isinstance(error, BotoConnectionError | HTTPClientError) and not isinstance(
        error, ResponseStreamingError
    )


def call(
    what: str,
    operation: Callable[[], T],
    *,
    state: str = NOTHING_CHANGED,
    expected: Collection[str] = (),
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation` (one AWS call, and the reading of its body) under `policy`.

    Failures botocore does not retry itself are retried here; ClientErrors whose code is in
    `expected` are re-raised for the caller; every other failure becomes an `AwsCallError`
    naming `what` (the call and its object) and `state` (what the failure left).
    """
    policy = policy or POLICY
    attempt = 1
    while True:
        try:
            return operation()
        except ClientError as error:
            if error_code(error) in expected:
                raise
            failure: Failure = error
        except (BotoCoreError, ResponseParserError) as error:
            failure = error
        kind = classify(failure)
        if kind not in RETRIED or _botocore_retried(failure) or attempt >= policy.max_attempts:
            attempts = _attempts(failure, attempt)
            message = _message(what, kind, _detail(failure, attempts), state)
            raise AwsCallError(message, what=what, kind=kind) from None
        sleep(policy.backoff(attempt))
        attempt += 1


def _attempts(error: Failure, ours: int) -> int | None:
    """How many requests were sent in all, when known."""
    if isinstance(error, ClientError):
        retried = error.response.get("ResponseMetadata", {}).get("RetryAttempts")
        return None if retried is None else ours + int(retried)
    return None if _botocore_retried(error) else ours


def _detail(error: Failure, attempts: int | None) -> str:
    text = str(error).strip()
    if isinstance(error, ResponseParserError):
        # The rest is the raw body it could not parse, and an invitation to retry (done).
        text = text.split("\n", 1)[0].split(". Further retries", 1)[0].rstrip(": ")
    if attempts is None or attempts == 1:
        return text
    return f"{text} ({attempts} attempts)"


_WHY = {
    "throttled": "AWS kept throttling it",
    "unavailable": "AWS kept answering with a server error",
    "connection": "the connection kept failing",
    "timeout": "AWS kept timing out",
    "unparseable": "the response kept arriving cut off or unreadable",
}


def _message(what: str, kind: Kind, detail: str, state: str) -> str:
    if kind == "credentials":
        return (
            f"{what}: AWS did not accept the credentials: {detail}; check your credentials "
            f"(AWS_PROFILE, `aws sso login`, expired session tokens) — {state}"
        )
    if kind == "permission":
        return (
            f"{what}: access denied: {detail}; the credentials work but lack this permission "
            f"on this resource (see `mwaa-elt infra policies`) — {state}"
        )
    if kind in RETRIED:
        return f"{what} failed after retries ({_WHY[kind]}): {detail}; {state}"
    return f"{what} failed: {detail}; {state}"
