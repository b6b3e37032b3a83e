"""Read multipart uploads into memory while enforcing the limits, chunk by chunk.

FastAPI's `UploadFile` parses the whole body first and spools large parts to temporary
files on disk. Family photos must not touch the disk, and an upload over a limit
should be refused when it crosses the limit, not after it has all arrived, so the body
is streamed through python-multipart's push parser here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header

from rechroma.errors import ImageTooLargeError, RechromaError

# Form fields are short options (numbers, format names); anything longer is refused,
# but for the colour hints' JSON (256 hints of ~60 bytes at most).
MAX_FIELD_BYTES = 1024
LONG_FIELDS = {"hints": 64 * 1024}
MAX_FIELDS = 16
# Reference photos one request may carry (each within the per-file limit).
MAX_REFERENCES = 4


class BadUploadError(RechromaError):
    """The request is not a well-formed multipart upload of photos."""


class TooManyFilesError(RechromaError):
    """More files in one request than the server accepts."""


class UploadTimeoutError(RechromaError):
    """The client sent its body too slowly: it stalled, or took longer than allowed."""


async def paced(
    chunks: AsyncIterator[bytes], idle_timeout_s: float, total_timeout_s: float
) -> AsyncIterator[bytes]:
    """`chunks`, as long as each arrives within `idle_timeout_s` and all within `total_timeout_s`.

    A client that stops sending (or trickles) would otherwise hold its connection and its
    memory for as long as it likes.
    """
    deadline = time.monotonic() + total_timeout_s
    iterator = aiter(chunks)
    while True:
        wait = min(idle_timeout_s, deadline - time.monotonic())
        try:
            with anyio.fail_after(max(wait, 0.0)):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise UploadTimeoutError(
                    f"the upload took longer than {total_timeout_s:g} s; send it again"
                ) from None
            raise UploadTimeoutError(
                f"the upload stalled: nothing arrived for {idle_timeout_s:g} s"
            ) from None
        yield chunk


@dataclass(frozen=True)
class UploadLimits:
    """What one request may carry."""

    max_file_bytes: int
    max_files: int


@dataclass
class UploadedFile:
    """One file part, fully in memory."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Upload:
    """The files and the text fields of a multipart request, in arrival order."""

    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    # A `mask` file part: the repair mask a person drew (white: repair), for restoring.
    mask: UploadedFile | None = None
    # `reference` file parts: colour photos whose colours guide the colouring.
    references: list[UploadedFile] = field(default_factory=list)


async def read_upload(
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    limits: UploadLimits,
) -> Upload:
    """Parse a multipart/form-data body from `chunks`, refusing it as soon as it breaks a limit.

    Raises:
        BadUploadError: not multipart/form-data, or malformed.
        ImageTooLargeError: a file over `max_file_bytes` (or a body that declares more
            than all allowed files together could be).
        TooManyFilesError: more than `max_files` file parts.
    """
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUploadError("send the photos as multipart/form-data (a form with file fields)")
    overhead = 64 * 1024  # part headers and text fields
    whole_limit = limits.max_files * limits.max_file_bytes + overhead
    if content_length and content_length.isdigit() and int(content_length) > whole_limit:
        raise ImageTooLargeError(
            f"request of {int(content_length) / 2**20:.1f} MB is over the limit: at most "
            f"{limits.max_files} file(s) of {limits.max_file_bytes / 2**20:.1f} MB each"
        )
    collector = _Collector(limits)
    parser = MultipartParser(boundary, collector.callbacks())
    for_parser = 0
    async for chunk in chunks:
        for_parser += len(chunk)
        if for_parser > whole_limit:  # a body that lied about (or omitted) its length
            raise ImageTooLargeError("request larger than all allowed files together")
        try:
            parser.write(chunk)
        except RechromaError:
            raise
        except Exception as exc:  # python-multipart's own errors: a malformed body
            raise BadUploadError(f"malformed multipart body: {exc}") from exc
    parser.finalize()
    if not collector.finished:
        raise BadUploadError("the upload ended before its last part did")
    return collector.upload


class _Collector:
    """Callbacks for python-multipart that build an `Upload` within the limits."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.upload = Upload()
        self.finished = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._data = bytearray()
        self._name = ""
        self._filename: str | None = None
        self._content_type = ""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""
        self._data = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise BadUploadError("every part needs a Content-Disposition: form-data name")
        self._name = params[b"name"].decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        self._content_type = self._headers.get(b"content-type", b"").decode("latin-1")
        counted = self._filename is not None and self._name not in ("mask", "reference")
        if counted and len(self.upload.files) >= self.limits.max_files:
            raise TooManyFilesError(f"at most {self.limits.max_files} files per request")
        if self._name == "reference" and len(self.upload.references) >= MAX_REFERENCES:
            raise TooManyFilesError(f"at most {MAX_REFERENCES} reference photos per request")
        if self._filename is None and len(self.upload.fields) >= MAX_FIELDS:
            raise BadUploadError(f"at most {MAX_FIELDS} form fields per request")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._filename is not None:
            if len(self._data) > self.limits.max_file_bytes:
                raise ImageTooLargeError(
                    f"{self._filename or 'upload'}: larger than the "
                    f"{self.limits.max_file_bytes / 2**20:.0f} MB limit per file"
                )
        elif len(self._data) > LONG_FIELDS.get(self._name, MAX_FIELD_BYTES):
            raise BadUploadError(f"form field {self._name!r} is too long")

    def _part_end(self) -> None:
        if self._filename is not None and self._name == "mask":
            self.upload.mask = UploadedFile(self._filename, self._content_type, bytes(self._data))
        elif self._filename is not None and self._name == "reference":
            self.upload.references.append(
                UploadedFile(self._filename, self._content_type, bytes(self._data))
            )
        elif self._filename is not None:
            self.upload.files.append(
                UploadedFile(self._filename, self._content_type, bytes(self._data))
            )
        else:
            self.upload.fields[self._name] = self._data.decode("utf-8", "replace")
        self._data = bytearray()

    def _end(self) -> None:
        self.finished = True
