"""Secrets in a pipeline's files, found by detect-secrets (Yelp) used as a library.

Every file a pipeline's bundle carries (the spec, its SQL and scripts) is scanned; a finding is
reported at file:line with the kind of secret, never the secret itself. A verified false
positive is marked on its line with detect-secrets' own comment, `pragma: allowlist secret`
(`# ...` in YAML and Python, `-- ...` in SQL), or on the line before with
`pragma: allowlist nextline secret`: the mark is visible in review, as it should be.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mwaa_elt.spec.problems import Problem

# detect-secrets' detectors of credentials with a known shape, plus its keyword and
# high-entropy heuristics. Left out: the hex high-entropy detector (it flags every md5 or
# sha256 literal a SQL check compares against), and detectors of other vendors' ids that
# match ordinary SQL identifiers (IBM Cloud's, SoftLayer's keyword rules).
_PLUGINS: list[dict[str, Any]] = [
    {"name": "AWSKeyDetector"},
    {"name": "ArtifactoryDetector"},
    {"name": "AzureStorageKeyDetector"},
    {"name": "BasicAuthDetector"},
    {"name": "CloudantDetector"},
    {"name": "DiscordBotTokenDetector"},
    {"name": "GitHubTokenDetector"},
    {"name": "GitLabTokenDetector"},
    {"name": "JwtTokenDetector"},
    {"name": "MailchimpDetector"},
    {"name": "NpmDetector"},
    {"name": "OpenAIDetector"},
    {"name": "PrivateKeyDetector"},
    {"name": "PypiTokenDetector"},
    {"name": "SendGridDetector"},
    {"name": "SlackDetector"},
    {"name": "SquareOAuthDetector"},
    {"name": "StripeDetector"},
    {"name": "TelegramBotTokenDetector"},
    {"name": "TwilioKeyDetector"},
    {"name": "KeywordDetector"},
    {"name": "Base64HighEntropyString", "limit": 4.5},
]
ALLOWLIST_COMMENT = "pragma: allowlist secret"


@contextmanager
def _settings() -> Iterator[None]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import transient_settings

    known = {cls.__name__ for cls in get_mapping_from_secret_type_to_class().values()}
    plugins = [p for p in _PLUGINS if p["name"] in known]  # older releases lack a few
    with transient_settings({"plugins_used": plugins}):
        yield


def secret_problems(files: list[Path]) -> list[Problem]:
    """One problem per secret detect-secrets finds in `files`: file, line, kind; no value."""
    if not files:
        return []
    from detect_secrets import SecretsCollection

    collection = SecretsCollection()
    with _settings():
        for file in files:
            collection.scan_file(str(file))
    problems: list[Problem] = []
    for filename, secret in collection:
        problems.append(
            Problem(
                Path(filename),
                secret.line_number or 1,
                1,
                f"this line holds what looks like a secret ({secret.type}); secrets never belong "
                "in a pipeline (it would be published into every stage's bucket and DAG "
                "files): read it at run time from an Airflow connection or variable (Secrets "
                "Manager), or, if this is verified not to be a secret, end the line with the "
                f"comment '{ALLOWLIST_COMMENT}'",
            )
        )
    return problems
