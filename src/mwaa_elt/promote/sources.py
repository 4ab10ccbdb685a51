"""The source bundles a stage's manifest records: fetched at once, verified, written out.

`promote --from` and `upgrade rehearse` re-render live pipelines from their bundles. Fetching
them one after another cost a round trip each (5,000 pipelines: 5,000 GETs in a row); they are
now fetched by as many workers as a promotion uploads with, and each is unpacked in memory and
written once into its pipeline's folder, instead of into a temporary folder first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.apply import WORKERS
from mwaa_elt.promote.bundle import Bundle, unpack_verified
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.store import StageStore


def fetch_recorded(
    store: StageStore, keys: Sequence[tuple[str, str]], what: str
) -> dict[str, bytes]:
    """The body of each `(name, key)` in `keys`, by name, fetched in parallel; ConfigError naming
    the first missing one as "the <what> of <name>"."""

    def fetch(key: str) -> bytes | None:
        found = store.get(key)
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
    against the source hash its record holds; the bundles, by name."""
    keys = [(name, manifest.pipelines[name].bundle_key) for name in names]
    bodies = fetch_recorded(store, keys, "source bundle")
    bundles = {}
    for name in names:
        record = manifest.pipelines[name]
        write_files(unpack_verified(bodies[name], record.source_hash), folder / name)
        bundles[name] = Bundle(record.source_hash, bodies[name])
    return bundles


def write_files(files: Mapping[str, bytes], folder: Path) -> None:
    """Write `files` (relative posix path -> bytes, as `bundle.unpack` gives) under `folder`."""
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
