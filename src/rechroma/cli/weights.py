"""Weights files: `fetch-weights` (metrics' networks), `export-weights`, `blend-weights`,
`export-onnx`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rechroma.cli.options import (
    EXIT_OK,
    add_weights_arg,
    float_in,
    print_json,
    require_extra,
)
from rechroma.errors import InvalidOptionError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `fetch-weights`, `export-onnx`, `export-weights` and `blend-weights`."""
    fetch = sub.add_parser(
        "fetch-weights",
        parents=[common],
        help="download third-party weights that metrics need (checksum-verified)",
    )
    fetch.add_argument(
        "name",
        choices=["lpips", "fid"],
        help="lpips: torchvision's ImageNet AlexNet; fid: torchvision's Inception-v3",
    )
    fetch.add_argument("--cache-dir", type=Path, default=None, help="default ~/.cache/rechroma")
    fetch.set_defaults(func=run_fetch)

    export = sub.add_parser(
        "export-onnx",
        parents=[common],
        help="export the model to ONNX (checked against PyTorch when onnxruntime is installed)",
    )
    export.add_argument("out", type=Path, metavar="OUT.onnx")
    add_weights_arg(export)
    export.set_defaults(func=run_export_onnx)

    shrink = sub.add_parser(
        "export-weights",
        parents=[common],
        help="copy a checkpoint's weights and description to a file to ship (optionally fp16)",
    )
    shrink.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    shrink.add_argument("out", type=Path, metavar="OUT.safetensors")
    _add_output_options(shrink, "the checkpoint's")
    shrink.set_defaults(func=run_export_weights)

    blend = sub.add_parser(
        "blend-weights",
        parents=[common],
        help="interpolate a fine-tuned model with its base (keeps what the base knew)",
    )
    blend.add_argument("base", type=Path, metavar="BASE")
    blend.add_argument("tuned", type=Path, metavar="TUNED")
    blend.add_argument("out", type=Path, metavar="OUT.safetensors")
    blend.add_argument(
        "--amount",
        type=float,
        required=True,
        metavar="A",
        help="0 gives BASE, 1 gives TUNED; between, (1 - A) x BASE + A x TUNED",
    )
    _add_output_options(blend, "TUNED's")
    blend.set_defaults(func=run_blend_weights)


def _add_output_options(parser: argparse.ArgumentParser, kept: str) -> None:
    parser.add_argument(
        "--fp16", action="store_true", help="store half precision (half the size; loads as fp32)"
    )
    parser.add_argument(
        "--chroma-gain",
        type=float,
        default=None,
        metavar="G",
        help="store G as the default vividness (benchmarks/choose_vividness.py picks it); "
        f"default: keep {kept}",
    )
    parser.add_argument(
        "--defect-threshold",
        type=float_in(0.01, 0.99),
        default=None,
        metavar="P",
        help="a damage detector's default threshold (benchmarks/restore_thresholds.py picks "
        f"it); default: keep {kept}",
    )
    parser.add_argument(
        "--defect-scales",
        type=float_in(0.1, 1.0),
        nargs="+",
        default=None,
        metavar="S",
        help="the scales of its working size a damage detector looks at, 1 first (e.g. 1 0.5; "
        f"the threshold is chosen with them); default: keep {kept}",
    )


def _write_weights(args: argparse.Namespace, model, info, **report: object) -> int:
    """Save `model` as `args.out` with --fp16 / --chroma-gain / --defect-threshold /
    --defect-scales applied; print what it wrote."""
    import torch

    from rechroma.models.checkpoint import file_sha256, save_weights

    gain = info.chroma_gain if args.chroma_gain is None else args.chroma_gain
    threshold = info.defect_threshold
    if args.defect_threshold is not None:
        if info.model_name != "defect-unet":
            raise InvalidOptionError(
                f"--defect-threshold is for a damage detector; this is a {info.model_name!r}"
            )
        threshold = args.defect_threshold
    scales = info.defect_scales
    if args.defect_scales is not None:
        if info.model_name != "defect-unet":
            raise InvalidOptionError(
                f"--defect-scales is for a damage detector; this is a {info.model_name!r}"
            )
        scales = tuple(args.defect_scales)
    save_weights(
        args.out,
        model,
        info.model_name,
        info.model_kwargs,
        info.step,
        info.config,
        dtype=torch.float16 if args.fp16 else None,
        chroma_gain=gain,
        defect_threshold=threshold,
        defect_scales=scales,
    )
    print_json(
        {
            "weights": str(args.out),
            "bytes": args.out.stat().st_size,
            "sha256": file_sha256(args.out),
            **report,
            "chroma_gain": gain,
            **({"defect_threshold": threshold} if threshold is not None else {}),
            **({"defect_scales": list(scales)} if scales is not None else {}),
        }
    )
    return EXIT_OK


def run_fetch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rechroma.evaluation.downloads import KNOWN_FILES, fetch

    remote = KNOWN_FILES[args.name]
    with tqdm(total=remote.size, unit="B", unit_scale=True, disable=args.quiet) as bar:

        def progress(received: int, total: int | None) -> None:
            bar.total = total
            bar.update(received - bar.n)

        path = fetch(remote, args.cache_dir, progress=progress)
    print(path)
    return EXIT_OK


def run_export_weights(args: argparse.Namespace) -> int:
    from rechroma.models.checkpoint import load_model

    model, info = load_model(args.checkpoint)  # a generator, or the defect detector
    return _write_weights(args, model, info)


def run_blend_weights(args: argparse.Namespace) -> int:
    from rechroma.models.checkpoint import blend_weights

    if args.out.resolve() in (args.base.resolve(), args.tuned.resolve()):
        raise InvalidOptionError(f"{args.out} is an input: write the blend to a new file")
    model, info = blend_weights(args.base, args.tuned, args.amount)
    return _write_weights(args, model, info, amount=args.amount)


def run_export_onnx(args: argparse.Namespace) -> int:
    require_extra(("onnx",), "onnx", "export-onnx")
    from rechroma.inference.colorizer import DEFAULT_WEIGHTS
    from rechroma.inference.onnx_export import check_onnx, export_onnx

    weights = args.weights or DEFAULT_WEIGHTS
    path = export_onnx(weights, args.out)
    report: dict[str, object] = {"onnx": str(path)}
    try:
        check = check_onnx(path, weights)
    except ModuleNotFoundError:
        report["check"] = "not run: onnxruntime is not installed"
    else:
        report["check"] = {"input_shape": list(check.shape), "max_abs_diff": check.max_abs_diff}
    print_json(report)
    return EXIT_OK
