"""Reading event files (JSON Lines or Avro container files), record by record, with verdicts.

Each record comes back either as a valid event (already checked against its schema by encoding
it) or as a ``Rejected`` naming the file, the line (or record number) and the field at fault.
One bad record never stops the rest of the file, and neither does a damaged block of an Avro
container file (it is rejected whole, at its byte offset). Every codec of the Avro specification
reads: snappy needs ``cramjam`` and zstandard ``backports.zstd``, both dependencies of vtforge.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import fastavro
from fastavro.read import BLOCK_READERS, SYNC_SIZE

from vtforge.schemas.codec import Codec, CodecError
from vtforge.schemas.jsonform import from_jsonable
from vtforge.transport.quarantine import Rejected

_SCAN_CHUNK = 1 << 16  # bytes read at a time while looking for the next sync marker


@dataclass(frozen=True)
class Checked:
    """One record of an event file: ``event`` when valid, else ``rejected``."""

    location: str
    event: dict[str, Any] | None = None
    rejected: Rejected | None = None


def read_event_file(path: Path, codec: Codec | None = None) -> Iterator[Checked]:
    """Every record of ``path`` (``.avro`` = Avro object container file, else JSON Lines)."""
    codec = codec or Codec()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".avro":
        yield from _read_avro(path, codec)
    else:
        yield from _read_jsonl(path, codec)


def _read_jsonl(path: Path, codec: Codec) -> Iterator[Checked]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            location = f"{path}:{number}"
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield _reject(location, "not_json", f"{location}: not valid JSON ({exc})", raw)
                continue
            if not isinstance(obj, dict):
                yield _reject(location, "not_an_object", f"{location}: expected a JSON object", raw)
                continue
            yield _check(obj, location, codec, raw)


def _read_avro(path: Path, codec: Codec) -> Iterator[Checked]:
    """Block by block, so that a damaged block costs only its own records.

    A block that does not decode (bad compressed data, a wrong length, a missing sync marker,
    bytes left over after its records) becomes one ``Rejected`` at its byte offset in the file;
    the reader then looks for the next sync marker, as Avro's own readers do, and goes on.
    """
    with path.open("rb") as handle:
        try:
            blocks = fastavro.block_reader(handle)
        except Exception as exc:  # fastavro raises many types for a bad header; all mean "not Avro"
            yield _reject(f"{path}", "not_avro", f"{path}: not an Avro container file ({exc})", None)
            return
        if blocks.codec not in BLOCK_READERS:
            known = ", ".join(BLOCK_READERS)
            error = f"{path}: Avro codec {blocks.codec!r} is not supported (known: {known})"
            yield _reject(f"{path}", "unsupported_codec", error, None)
            return
        header_end = handle.tell()
        header = _read_at(handle, 0, header_end)
        sync = header[-SYNC_SIZE:]  # the header ends with the file's sync marker
        number = 0
        base = header_end  # where in the file the current reader's first block starts
        while True:
            next_block = header_end  # in the reader's own offsets (header + blocks from ``base``)
            try:
                for block in blocks:
                    next_block = block.offset + block.size
                    at = base + block.offset - header_end
                    records, error = _decode_block(block)
                    if error is None:
                        for record in records:
                            number += 1
                            yield _check(record, f"{path}#{number}", codec, None)
                        continue
                    number += block.num_records
                    yield _bad_block(path, at, _read_at(handle, at, block.size), error)
                return
            except Exception as exc:  # the block's framing is damaged (fastavro raises many types)
                failure = exc
            if _codec_missing(failure):
                error = f"{path}: cannot read Avro codec {blocks.codec!r}: {failure}"
                yield _reject(f"{path}", "unsupported_codec", error, None)
                return
            at = base + next_block - header_end
            resume = _next_sync(handle, at + 1, sync)
            end = resume if resume is not None else os.fstat(handle.fileno()).st_size
            yield _bad_block(path, at, _read_at(handle, at, end - at), failure)
            if resume is None:
                return
            handle.seek(resume)
            blocks = fastavro.block_reader(cast(BinaryIO, _Spliced(header, handle)))  # a readable stream
            base = resume


def _decode_block(block: Any) -> tuple[list[Any], Exception | None]:
    """All records of a block, or why the block is damaged (left-over bytes count as damage).

    ``block`` is a ``fastavro`` ``Block`` (its compiled and pure-Python classes differ, and the
    stubs leave out ``bytes_``, the decompressed data)."""
    try:
        records = list(block)
    except Exception as exc:  # garbage bytes fail in any of fastavro's readers
        return [], exc
    data = block.bytes_
    left = len(data.getbuffer()) - data.tell()
    if left:
        return [], ValueError(f"{left} bytes left over after its {block.num_records} records")
    return records, None


def _bad_block(path: Path, offset: int, raw: bytes, exc: Exception) -> Checked:
    location = f"{path}@{offset}"
    why = str(exc).splitlines()[0] if str(exc) else ""
    error = (
        f"{path}: Avro block at byte {offset} does not decode ({type(exc).__name__}: {why}); "
        "its records are quarantined, the other blocks load"
    )
    return _reject(location, "corrupt_block", error, raw)


def _codec_missing(exc: Exception) -> bool:
    """fastavro's error for a codec whose library is not installed (the file is fine)."""
    return isinstance(exc, ValueError) and "need to install" in str(exc)


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset``, leaving the handle where it was (a reader is using it)."""
    here = handle.tell()
    try:
        handle.seek(offset)
        return handle.read(size)
    finally:
        handle.seek(here)


def _next_sync(handle: BinaryIO, offset: int, sync: bytes) -> int | None:
    """The offset just after the first sync marker at or after ``offset`` (None: there is none)."""
    here = handle.tell()
    try:
        handle.seek(offset)
        position, tail = offset, b""
        while chunk := handle.read(_SCAN_CHUNK):
            window = tail + chunk
            found = window.find(sync)
            if found >= 0:
                return position - len(tail) + found + SYNC_SIZE
            tail = window[-(SYNC_SIZE - 1) :]
            position += len(chunk)
        return None
    finally:
        handle.seek(here)


class _Spliced(io.RawIOBase):
    """The file's header followed by the file from the handle's position: a container file
    that starts at the block after a damaged one, for a fresh ``fastavro.block_reader``."""

    def __init__(self, header: bytes, handle: BinaryIO) -> None:
        super().__init__()
        self._header = header
        self._header_read = 0
        self._handle = handle
        self._start = handle.tell()

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._header_read + self._handle.tell() - self._start

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        part = self._header[self._header_read : self._header_read + len(view)]
        view[: len(part)] = part
        self._header_read += len(part)
        if len(part) == len(view):
            return len(part)
        data = self._handle.read(len(view) - len(part))
        view[len(part) : len(part) + len(data)] = data
        return len(part) + len(data)


def _check(obj: dict[str, Any], location: str, codec: Codec, raw: bytes | None) -> Checked:
    try:
        schema = codec.schema_of(obj)
        event = from_jsonable(obj, schema.parsed)
        codec.encode(event)
    except (CodecError, ValueError) as exc:
        reason = getattr(exc, "reason", "schema_violation")
        return _reject(location, reason, f"{location}: {exc}", raw or json.dumps(obj, default=str).encode())
    return Checked(location, event=event)


def _reject(location: str, reason: str, error: str, raw: bytes | None) -> Checked:
    return Checked(location, rejected=Rejected(location=location, reason=reason, error=error, raw=raw))
