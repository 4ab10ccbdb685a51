"""One place for AWS failures: what is retried, how often, and what the user is told."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    DataNotFoundError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    UnknownServiceError,
)
from botocore.loaders import Loader
from botocore.parsers import ResponseParserError

from mwaa_elt import aws
from mwaa_elt.errors import EXIT_EXTERNAL

FAST = aws.RetryPolicy(base_seconds=0.001)


def client_error(code: str, status: int, *, retried: int = 0) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retried},
    }
    return ClientError(response, "GetObject")


def failing(*errors: BaseException, then: Any = "ok") -> tuple[Callable[[], Any], list[int]]:
    """An operation raising `errors` in turn, then returning `then`; and its call count."""
    calls: list[int] = []

    def operation() -> Any:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return then

    return operation, calls


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("SlowDown", 503), "throttled"),
        (client_error("ThrottlingException", 400), "throttled"),
        (client_error("InternalError", 500), "unavailable"),
        (client_error("ServiceUnavailable", 503), "unavailable"),
        (client_error("ExpiredToken", 400), "credentials"),
        (client_error("InvalidClientTokenId", 403), "credentials"),
        (client_error("AccessDenied", 403), "permission"),
        (client_error("NoSuchKey", 404), "rejected"),
        (NoCredentialsError(), "credentials"),
        (ResponseParserError("Unable to parse response (no element found)"), "unparseable"),
        (IncompleteReadError(actual_bytes=10, expected_bytes=100), "unparseable"),
        (ConnectionClosedError(endpoint_url="http://s3"), "connection"),
        (EndpointConnectionError(endpoint_url="http://s3"), "connection"),
        (ReadTimeoutError(endpoint_url="http://s3"), "timeout"),
    ],
)
def test_failures_are_classified_by_what_retrying_can_do(error, kind):
    assert aws.classify(error) == kind


def test_a_cut_off_response_botocore_does_not_retry_is_retried_with_the_same_policy():
    operation, calls = failing(
        ResponseParserError("Unable to parse response (no element found: line 1, column 191)"),
        IncompleteReadError(actual_bytes=10, expected_bytes=100),
        then={"Arn": "arn"},
    )
    waits: list[float] = []
    assert aws.call("sts:GetCallerIdentity", operation, sleep=waits.append) == {"Arn": "arn"}
    assert len(calls) == 3
    # Full jitter: the n-th retry waits at most base * 2^(n-1) seconds.
    assert len(waits) == 2 and 0 <= waits[0] <= 1 and 0 <= waits[1] <= 2


def test_a_response_that_stays_unparseable_exits_3_naming_the_call_after_max_attempts():
    error = ResponseParserError("Unable to parse response (no element found)\n<partial xml")
    operation, calls = failing(*[error] * 10)
    with pytest.raises(aws.AwsCallError) as raised:
        aws.call("sts:GetCallerIdentity", operation, policy=FAST, state="nothing was changed")
    assert len(calls) == FAST.max_attempts
    failure = raised.value
    assert failure.exit_code == EXIT_EXTERNAL and failure.kind == "unparseable"
    message = failure.messages[0]
    assert message.startswith("sts:GetCallerIdentity failed after retries")
    assert "(5 attempts)" in message and message.endswith("; nothing was changed")
    assert "<partial xml" not in message  # the raw body is not the user's business
    assert "credentials" not in message


def test_throttling_botocore_already_retried_is_not_retried_again_nor_blamed_on_credentials():
    operation, calls = failing(client_error("SlowDown", 503, retried=4))
    with pytest.raises(aws.AwsCallError) as raised:
        aws.call("sts:GetCallerIdentity", operation, policy=FAST)
    assert len(calls) == 1  # botocore spent the 5 attempts; more would multiply them
    message = raised.value.messages[0]
    assert "AWS kept throttling it" in message and "(5 attempts)" in message
    assert "credentials" not in message


def test_credential_errors_are_not_retried_and_say_check_your_credentials():
    operation, calls = failing(client_error("ExpiredToken", 400))
    with pytest.raises(aws.AwsCallError) as raised:
        aws.call("sts:GetCallerIdentity", operation, policy=FAST)
    assert len(calls) == 1
    assert raised.value.kind == "credentials"
    assert "check your credentials" in raised.value.messages[0]


def test_permission_errors_have_their_own_message():
    operation, _ = failing(client_error("AccessDenied", 403))
    with pytest.raises(aws.AwsCallError) as raised:
        aws.call("s3:PutObject s3://b/dags/a.py", operation, policy=FAST)
    message = raised.value.messages[0]
    assert message.startswith("s3:PutObject s3://b/dags/a.py: access denied")
    assert "check your credentials" not in message


def test_expected_error_codes_are_handed_back_to_the_caller_untouched():
    operation, calls = failing(client_error("NoSuchKey", 404))
    with pytest.raises(ClientError):
        aws.call("s3:GetObject s3://b/k", operation, expected=aws.MISSING, policy=FAST)
    assert len(calls) == 1


def test_the_worst_case_duration_of_one_call_follows_from_the_policy():
    policy = aws.RetryPolicy()
    # 5 attempts * (10 s connect + 30 s read) + backoffs capped at 1 + 2 + 4 + 8 s.
    assert policy.worst_case_seconds() == 5 * 40 + 15
    assert policy.backoff(10, rng=lambda: 0.999) == policy.max_backoff_seconds


@pytest.mark.parametrize(
    ("service", "type_name"),
    [("s3", "service-2"), ("sts", "endpoint-rule-set-1"), ("mwaa", "paginators-1")],
)
def test_the_model_loader_loads_what_botocore_does_without_listing_every_service(
    monkeypatch: pytest.MonkeyPatch, service: str, type_name: str
) -> None:
    def listing(*_: Any) -> list[str]:
        raise AssertionError("every service folder was listed")

    botocore_own = Loader()
    loader = aws.ModelLoader(
        extra_search_paths=list(botocore_own.search_paths), include_default_search_paths=False
    )
    monkeypatch.setattr(loader, "list_available_services", listing)
    assert loader.load_service_model(service, type_name) == botocore_own.load_service_model(
        service, type_name
    )


def test_an_unknown_service_is_botocores_own_error() -> None:
    with pytest.raises(UnknownServiceError, match="Unknown service: 'no-such-service'"):
        aws.ModelLoader().load_service_model("no-such-service", "service-2")
    with pytest.raises(DataNotFoundError):  # the service exists, this model type does not
        aws.ModelLoader().load_service_model("sts", "waiters-2")


def test_every_client_shares_the_model_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sts, s3 = aws.client("sts", "eu-west-1"), aws.client("s3", "eu-west-1")
    assert sts.meta.service_model.service_name == "sts"
    assert isinstance(aws._LOADER, aws.ModelLoader)
    assert s3._loader is sts._loader is aws._LOADER
