"""A real IAM evaluator for the tests: @cloud-copilot/iam-simulate through one node process per batch.

It applies what a grep cannot: conditions (tags, kms:ViaService, s3:prefix, aws:SourceArn…),
explicit denies, and resource policies (bucket and key policies) beside the identity policies.
`make evaluator` installs it from tests/iam/evaluator/package-lock.json (`npm ci`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVALUATOR_DIR = Path(__file__).with_name("evaluator")
SCRIPT = EVALUATOR_DIR / "evaluate.mjs"
INSTALLED = EVALUATOR_DIR / "node_modules" / ".installed"
ALLOWED = "Allowed"


class EvaluatorMissing(RuntimeError):
    """node or the pinned simulator is not installed."""


@dataclass(frozen=True)
class Request:
    """One authorization AWS makes: who, which action on which resource, with which context."""

    principal: str
    action: str
    resource: str
    resource_account: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    resource_policy: Any = None  # the bucket's or key's policy document, when it has one
    why: str = ""  # what makes the call, for failure messages
    scoped: bool = True  # False: a resource AWS offers no stage scoping for (Resource "*", …)

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.action} on {self.resource} [{keys}] ({self.why})"


@dataclass(frozen=True)
class Decision:
    """The evaluator's answer for one request."""

    request: Request
    decision: str  # Allowed | ExplicitlyDenied | ImplicitlyDenied | error
    ignored_context_keys: tuple[str, ...]
    errors: Any

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED


def require_evaluator() -> None:
    if shutil.which("node") is None:
        raise EvaluatorMissing("node is not on PATH; install Node.js 20+ and run `make evaluator`")
    if not INSTALLED.is_file():
        raise EvaluatorMissing(
            f"{EVALUATOR_DIR}/node_modules is not installed; run `make evaluator` (npm ci)"
        )


def evaluate(
    identity_policies: Sequence[Mapping[str, Any]], requests: Sequence[Request]
) -> list[Decision]:
    """Evaluate every request against the same identity policies in one node process."""
    principals = {r.principal for r in requests}
    return evaluate_by_principal({p: identity_policies for p in principals}, requests)


def evaluate_by_principal(
    identity_policies: Mapping[str, Sequence[Mapping[str, Any]]], requests: Sequence[Request]
) -> list[Decision]:
    """Evaluate every request against its principal's identity policies, in one node process."""
    require_evaluator()
    policies: dict[str, Any] = {}
    ids: dict[str, str] = {}

    def policy_id(document: Any, kind: str) -> str:
        text = json.dumps(document, sort_keys=True)
        if text not in ids:
            ids[text] = f"{kind}-{len(ids)}"
            policies[ids[text]] = document
        return ids[text]

    payload_requests = []
    for request in requests:
        identity = [policy_id(d, "identity") for d in identity_policies.get(request.principal, [])]
        resource_id = (
            policy_id(request.resource_policy, "resource")
            if request.resource_policy is not None
            else None
        )
        payload_requests.append(
            {
                "principal": request.principal,
                "action": request.action,
                "resource": request.resource,
                "resourceAccount": request.resource_account,
                "context": dict(request.context),
                "identityPolicies": identity,
                "resourcePolicy": resource_id,
            }
        )
    completed = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps({"policies": policies, "requests": payload_requests}),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the IAM evaluator failed:\n{completed.stderr}")
    answers = json.loads(completed.stdout)
    return [
        Decision(r, a["decision"], tuple(a["ignoredContextKeys"]), a["errors"])
        for r, a in zip(requests, answers, strict=True)
    ]
