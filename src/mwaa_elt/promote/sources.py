"""The source bundles a stage's manifest records: fetched at once, verified, written out.

`promote --from` and `upgrade rehearse` re-render live pipelines from their bundles. Fetching
them one after another cost a round trip each (5,000 pipelines: 5,000 GETs in a row); they are
now fetched by as many workers as a promotion uploads with, and each is unpacked in memory and
written once into its pipeline's folder, instead of into a temporary folder first. Bundles a
promotion stored together in a pack are read with one request for the pack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.apply import WORKERS
from mwaa_elt.promote.bundle import Bundle, unpack_verified
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.packs import cut
from mwaa_elt.promote.store import StageStore


def fetch_recorded(
    store: StageStore,
    keys: Sequence[tuple[str, str]],
    what: str,
    ranges: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, bytes]:
    """The body of each `(name, key)` in `keys`, by name, fetched in parallel (only the bytes
    `ranges` gives for a key, when it does); ConfigError naming the first missing one as "the
    <what> of <name>"."""
    ranges = ranges or {}

    def fetch(key: str) -> bytes | None:
        found = store.get(key, ranges.get(key))
        return None if found is None else found[0]

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="mwaa-elt-fetch") as pool:
        bodies = list(pool.map(fetch, [key for _, key in keys]))
    for (name, key), body in zip(keys, bodies, strict=True):
        if body is None:
            raise ConfigError(
                f"{store.uri(key)}: the {what} of {name} recorded in the manifest of "
                f"stage {store.stage.name} is missing; it was deleted outside mwaa-elt — promote "
                "it into that stage again"
            )
    return {name: body for (name, _), body in zip(keys, bodies, strict=True) if body is not None}


def restore_sources(
    store: StageStore, manifest: Manifest, folder: Path, names: Sequence[str]
) -> dict[str, Bundle]:
    """Write the bundle of each live pipeline of `names` into `folder/<name>/`, each verified
    against the source hash its record holds; the bundles, by name.

    A pack (`promote.packs`) that holds several of the bundles wanted is read once, whole; a
    bundle wanted alone from a pack is read by its byte range."""
    sharing: dict[str, list[str]] = {}
    for name in names:
        sharing.setdefault(manifest.pipelines[name].bundle_key, []).append(name)
    labels = {key: _listed(pipelines) for key, pipelines in sharing.items()}
    ranges = {
        key: bundle_range
        for key, pipelines in sharing.items()
        if len(pipelines) == 1
        and (bundle_range := manifest.pipelines[pipelines[0]].bundle_range) is not None
    }
    bodies = fetch_recorded(store, [(labels[key], key) for key in sharing], "source bundle", ranges)
    bundles = {}
    for name in names:
        record = manifest.pipelines[name]
        stored = bodies[labels[record.bundle_key]]
        data = _recorded_part(stored, record.bundle_range, ranged=record.bundle_key in ranges)
        if data is None:
            raise ConfigError(
                f"{store.uri(record.bundle_key)}: holds no bundle where the manifest of stage "
                f"{store.stage.name} records the source of {name}; the pack was replaced outside "
                "mwaa-elt — promote it into that stage again"
            )
        write_files(unpack_verified(data, record.source_hash), folder / name)
        bundles[name] = Bundle(record.source_hash, data)
    return bundles


def _recorded_part(
    stored: bytes, bundle_range: tuple[int, int] | None, *, ranged: bool
) -> bytes | None:
    """The bundle in `stored` (read whole, or only its range when `ranged`); None when the
    object is shorter than its record says."""
    if not ranged:
        return cut(stored, bundle_range)
    assert bundle_range is not None  # only recorded ranges are read alone
    return stored if len(stored) == bundle_range[1] else None


def _listed(names: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def write_files(files: Mapping[str, bytes], folder: Path) -> None:
    """Write `files` (relative posix path -> bytes, as `bundle.unpack` gives) under `folder`."""
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
