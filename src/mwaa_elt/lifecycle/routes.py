"""Which way MWAA lets an environment change its Airflow version: the route rules, as data.

From the MWAA User Guide, "Changing Apache Airflow versions" (upgrading-environment): minor
upgrades and downgrades within a major line happen in place (x.4.z to x.5.z or back); a major
upgrade from 2.y.z to 3.y.z happens in place from the latest 2.11.x only; from Airflow 2.10.3 and
lower a major upgrade needs a new environment with the resources migrated to it; an environment
on 3.y.z may be downgraded in place to 2.11.x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES, AirflowRelease
from mwaa_elt.errors import ConfigError

RouteKind = Literal["unchanged", "in-place", "new-environment"]
USER_GUIDE = "https://docs.aws.amazon.com/mwaa/latest/userguide/upgrading-environment.html"
MIGRATION_GUIDE = (
    "https://docs.aws.amazon.com/mwaa/latest/migrationguide/migrating-to-new-mwaa.html"
)
# The 2.x minor line MWAA upgrades to 3.x in place, and downgrades 3.x to.
BRIDGE_MINOR = (2, 11)


@dataclass(frozen=True)
class Route:
    """How a stage's environment gets from one Airflow version to another, and why."""

    from_version: str
    to_version: str
    kind: RouteKind
    reason: str
    documentation: str = USER_GUIDE

    @property
    def crosses_major(self) -> bool:
        return _major(self.from_version) != _major(self.to_version)

    @property
    def direction(self) -> Literal["none", "upgrade", "downgrade"]:
        if self.from_version == self.to_version:
            return "none"
        return "upgrade" if _key(self.to_version) > _key(self.from_version) else "downgrade"

    def to_dict(self) -> dict[str, str | bool]:
        return {
            "from": self.from_version,
            "to": self.to_version,
            "kind": self.kind,
            "direction": self.direction,
            "crosses_major": self.crosses_major,
            "reason": self.reason,
            "documentation": self.documentation,
        }


def supported_versions() -> list[str]:
    """The Airflow versions MWAA offers (airflow_versions.py), oldest first."""
    return sorted(MWAA_AIRFLOW_RELEASES, key=_key)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _major(version: str) -> int:
    return _key(version)[0]


def _release(version: str, role: str) -> AirflowRelease:
    release = MWAA_AIRFLOW_RELEASES.get(version)
    if release is None:
        raise ConfigError(
            f"{role} {version}: not an Airflow version Amazon MWAA offers; expected one of "
            f"{', '.join(supported_versions())} (src/mwaa_elt/airflow_versions.py)"
        )
    return release


def latest_bridge() -> str:
    """The newest 2.11.x MWAA offers: the version a 2.x environment upgrades to 3.x from."""
    bridges = [v for v in supported_versions() if _key(v)[:2] == BRIDGE_MINOR]
    return bridges[-1]


def plan_route(from_version: str, to_version: str) -> Route:
    """The route MWAA allows from `from_version` to `to_version`; ConfigError for a version
    MWAA does not offer."""
    current = _release(from_version, "current version")
    target = _release(to_version, "--to")
    python = (
        f" The image's Python changes from {current.python} to {target.python}."
        if current.python != target.python
        else ""
    )
    if from_version == to_version:
        return Route(
            from_version,
            to_version,
            "unchanged",
            f"the stage already runs Airflow {to_version}; the rehearsal re-checks it as it is",
        )
    if current.major == target.major:
        verb = "upgrade" if _key(to_version) > _key(from_version) else "downgrade"
        return Route(
            from_version,
            to_version,
            "in-place",
            f"a minor {verb} within Airflow {current.major}.x: MWAA changes the version in "
            f"place (metadata snapshot, new version, metadata restored).{python}",
        )
    if current.major == 2 and target.major == 3:
        if _key(from_version)[:2] == BRIDGE_MINOR:
            return Route(
                from_version,
                to_version,
                "in-place",
                f"a major upgrade from Airflow {from_version} (2.11.x): MWAA upgrades 2.11.x "
                f"to 3.x in place.{python}",
            )
        return Route(
            from_version,
            to_version,
            "new-environment",
            f"MWAA upgrades to Airflow 3 in place only from 2.11.x; from Airflow 2.10.3 and "
            f"lower a major upgrade needs a new environment with the resources migrated to it "
            f"(a cutover). Alternatively upgrade in place to {latest_bridge()} first, then "
            f"rehearse {latest_bridge()} → {to_version} again.{python}",
            MIGRATION_GUIDE,
        )
    if current.major == 3 and target.major == 2:
        if _key(to_version)[:2] == BRIDGE_MINOR:
            return Route(
                from_version,
                to_version,
                "in-place",
                f"a major downgrade to Airflow {to_version}: MWAA downgrades 3.x in place to "
                f"2.11.x only.{python}",
            )
        return Route(
            from_version,
            to_version,
            "new-environment",
            f"MWAA downgrades Airflow 3 in place to 2.11.x only; Airflow {to_version} needs a "
            f"new environment (a cutover), or downgrade to {latest_bridge()} instead.{python}",
            MIGRATION_GUIDE,
        )
    raise ConfigError(  # a line the table does not know yet: refuse rather than guess
        f"no MWAA route from Airflow {from_version} to {to_version} is known; "
        f"the route rules cover Airflow 2 and 3 ({USER_GUIDE})"
    )
