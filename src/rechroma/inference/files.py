"""One file of a batch: its options, its colouring, and why it failed.

Shared by the local batch (`batch`, in this process or worker processes) and the Ray
cluster (`cluster`), so both run exactly the same per-file code and neither imports
the other.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rechroma.errors import (
    ImageReadError,
    ImageTooLargeError,
    OutputWriteError,
    RechromaError,
    UnsupportedImageError,
)
from rechroma.images import DEFAULT_MAX_PIXELS, write_atomically
from rechroma.inference.hints import Hint, HintError, read_hints_file

if TYPE_CHECKING:
    from rechroma.inference.colorizer import Colorizer
    from rechroma.inference.reference import ReferenceOptions, ReferenceSet
    from rechroma.restoration import RestoreOptions, Restorer

logger = logging.getLogger(__name__)

# (input, output, None when done or (reason, message) when failed)
Result = tuple[Path, Path, tuple[str, str] | None]


@dataclass(frozen=True)
class BatchOptions:
    """How every file of a batch is colorized."""

    weights: Path | None = None
    render_size: int | None = None
    vividness: float = 1.0
    quality: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int | None = None  # torch threads per worker; cores / jobs when None
    runtime: str = "auto"  # what runs the network (`Colorizer.load`)
    hints: tuple[Hint, ...] = ()  # colour hints for every file (one photo's, in practice)
    # A folder of `<name>.json` hint files mirroring the tree under `input_root`; a photo
    # without one is colourised automatically.
    hints_dir: Path | None = None
    input_root: Path | None = None
    # Repair print damage before colouring (`colorize --restore`); None colours as read.
    restore: RestoreOptions | None = None
    # Reference photos whose matched colours guide every photo (`colorize --reference`).
    reference: ReferenceOptions | None = None

    def hints_for(self, src: Path) -> tuple[Hint, ...]:
        """The hints that apply to `src`."""
        if self.hints_dir is None:
            return self.hints
        relative = src.relative_to(self.input_root) if self.input_root else Path(src.name)
        path = self.hints_dir / relative.with_suffix(".json")
        return (*self.hints, *read_hints_file(path)) if path.is_file() else self.hints


@dataclass
class BatchReport:
    """What happened to every file: outputs written, skipped and failed with reasons."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str, str]] = field(default_factory=list)  # (src, reason, message)

    def summary(self) -> str:
        """One line: counts, and failures grouped by reason."""
        line = f"{len(self.done)} done, {len(self.skipped)} skipped (output exists)"
        line += f", {len(self.failed)} failed"
        if self.failed:
            reasons = Counter(reason for _, reason, _ in self.failed)
            line += " (" + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()) + ")"
        return line

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready lists (for `--json`)."""
        return {
            "done": [str(p) for p in self.done],
            "skipped": [str(p) for p in self.skipped],
            "failed": [
                {"path": str(src), "reason": reason, "message": message}
                for src, reason, message in self.failed
            ],
        }

    def write_failures(self, path: Path) -> None:
        """A tab-separated list of failed inputs: path, reason, message.

        The csv module quotes fields that hold a tab, a quote or a newline (file names
        may), so every failure stays one row; written whole or not at all
        (`OutputWriteError` when it cannot be).
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
        writer.writerow(["path", "reason", "message"])
        for src, reason, message in self.failed:
            writer.writerow([str(src), reason, " ".join(message.split())])
        write_atomically(path, buffer.getvalue().encode())


def failure_reason(exc: BaseException) -> str:
    """A short, groupable label for why a file failed."""
    if isinstance(exc, OutputWriteError):
        return "cannot write output"
    if isinstance(exc, HintError):
        return "bad hints"
    if isinstance(exc, ImageTooLargeError):
        return "too large"
    if isinstance(exc, UnsupportedImageError):
        return "not a supported image"
    if isinstance(exc, ImageReadError):
        return "unreadable"
    if isinstance(exc, RechromaError):
        return "invalid"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        return "file error"
    return "internal error"


def colorize_one(
    src: Path,
    dst: Path,
    options: BatchOptions,
    colorizer: Colorizer,
    restorer: Restorer | None = None,
) -> Result:
    """Colorize one file into `dst` (repaired first when `options.restore`); a failure is
    returned with its reason, never raised."""
    try:
        reference = options.reference.load(colorizer) if options.reference else None
        if options.restore is None:
            colorizer.colorize_file(
                src,
                dst,
                quality=options.quality,
                max_pixels=options.max_pixels,
                vividness=options.vividness,
                hints=options.hints_for(src),
                reference=reference,
            )
        else:
            assert restorer is not None, "options.restore needs a Restorer"
            _restore_and_colorize(
                src, dst, options, options.restore, colorizer, restorer, reference
            )
    except Exception as exc:  # one file must never stop the batch; the reason is reported
        message = str(exc) if isinstance(exc, RechromaError) else f"{src}: {exc}"
        if not isinstance(exc, RechromaError | OSError | MemoryError):
            logger.exception("unexpected error on %s", src)
        return src, dst, (failure_reason(exc), message)
    return src, dst, None


def _restore_and_colorize(
    src: Path,
    dst: Path,
    options: BatchOptions,
    restore: RestoreOptions,
    colorizer: Colorizer,
    restorer: Restorer,
    reference: ReferenceSet | None,
) -> None:
    from rechroma.images import check_fits_format, open_photo, output_format, save_photo
    from rechroma.restoration.restorer import mask_path_for, save_mask

    format_name = output_format(dst)[0]
    photo = open_photo(src, max_pixels=options.max_pixels)
    check_fits_format(photo.gray.size, format_name, str(src))
    repaired = restorer.restore(photo, restore.threshold, restore.tone, restore.tone_strength)
    result = colorizer.colorize_photo(
        repaired.photo,
        vividness=options.vividness,
        hints=options.hints_for(src),
        format_name=format_name,
        reference=reference,
    )
    save_photo(repaired.photo, result, dst, options.quality)
    if restore.save_mask:
        save_mask(repaired.mask, mask_path_for(dst))
