"""How a CSV file's bytes become text: the encoding (declared or detected), transcoding to UTF-8 when DuckDB
cannot read it natively, and where in the file a byte or a line is."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from kpilot.model.errors import msg
from kpilot.sources.files.common import LoadError, TableFile, shown_path

CHUNK = 1 << 20
SAMPLE_BYTES = 8 * CHUNK  # what a sniff reads of a file that has to be transcoded first
TEXT_ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}  # DuckDB's name -> Python's
# Bytes 0x80-0x9F are printable in Windows-1252 (€, œ, ’...) but C1 controls in latin-1, which DuckDB refuses.
_C1 = re.compile(rb"[\x80-\x9f]")
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_NATIVE = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf16": "utf-16",
           "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1"}


class EncodingRetry(Exception):
    """DuckDB found bytes that are not in the detected encoding: read the file again through Python."""

    def __init__(self, tf: TableFile, codec: str):
        super().__init__(codec)
        self.tf = tf
        self.codec = codec


@dataclass(frozen=True)
class Encoding:
    """How a file's bytes become text: natively by DuckDB, or transcoded to UTF-8 by Python first."""

    duckdb: str  # utf-8 | utf-16 | latin-1
    python: str | None = None  # codec to transcode with before DuckDB reads the file
    declared: bool = False

    @property
    def label(self) -> str:
        return self.python or self.duckdb


def detect_encoding(tf: TableFile) -> Encoding:
    """The declared encoding, or one guessed from the file's first megabyte."""
    declared = tf.source.encoding
    if declared:
        key = declared.strip().lower().replace("_", "-")
        if key in _NATIVE:
            return Encoding(_NATIVE[key], declared=True)
        try:
            codec = codecs.lookup(key).name
        except LookupError:
            raise LoadError(msg(
                "{path}: unknown encoding '{encoding}' in source '{source}'. Fix: use utf-8, cp1252 (Windows, "
                "Excel's CSV export), latin-1, utf-16, or remove `encoding:` to detect it.", path=shown_path(tf),
                encoding=declared, source=tf.source.key)) from None
        native = {"utf-8": "utf-8", "latin-1": "latin-1", "iso8859-1": "latin-1"}.get(codec)
        return Encoding(native, declared=True) if native else Encoding("utf-8", codec, declared=True)
    with tf.path.open("rb") as f:
        head = f.read(CHUNK)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Encoding("utf-16")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return Encoding("utf-8")
    except UnicodeDecodeError:
        return fallback_encoding(head)


def fallback_encoding(sample: bytes) -> Encoding:
    """Not UTF-8: latin-1 natively when DuckDB accepts it, else Windows-1252 (or latin-1) through Python."""
    if not _C1.search(sample):
        return Encoding("latin-1")
    return Encoding("utf-8", "latin-1" if _CP1252_UNDEFINED.search(sample) else "cp1252")


def fallback_codec(path: Path) -> str:
    """Windows-1252 unless the file holds a byte that Windows-1252 leaves undefined (then latin-1)."""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if _CP1252_UNDEFINED.search(chunk):
                return "latin-1"
    return "cp1252"


def transcode(src: Path, dst: Path, codec: str, *, start: int = 0, prefix: bytes = b"",
              limit: int | None = None) -> None:
    """Write `prefix` + the bytes of `src` from `start` (at most `limit` of them) to `dst` as UTF-8."""
    dec = codecs.getincrementaldecoder(codec)()
    left = limit
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        fout.write(dec.decode(prefix))
        fin.seek(start)
        while left is None or left > 0:
            chunk = fin.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            fout.write(dec.decode(chunk))
        if limit is None:
            fout.write(dec.decode(b"", final=True))


def first_invalid_utf8(path: Path) -> tuple[int, int, str] | None:
    """(line, byte value, the line's text) of the first byte that is not valid UTF-8, or None."""
    lines = 0
    pending = b""
    with path.open("rb") as f:
        while True:
            data = f.read(CHUNK)
            buf = pending + data
            if not buf:
                return None
            try:
                buf.decode("utf-8")
                good = len(buf)
            except UnicodeDecodeError as e:
                if data and e.reason == "unexpected end of data" and e.start >= len(buf) - 3:
                    good = e.start  # a character cut by the chunk boundary: finish it with the next chunk
                else:
                    start = buf.rfind(b"\n", 0, e.start) + 1
                    end = buf.find(b"\n", e.start)
                    text = buf[start:end if end >= 0 else len(buf)].decode("utf-8", "backslashreplace")
                    return lines + buf.count(b"\n", 0, e.start) + 1, buf[e.start], text
            lines += buf.count(b"\n", 0, good)
            pending = buf[good:]
            if not data:
                return None


def line_at(path: Path, pos: int) -> int:
    """1-based line number of byte `pos` (counting newlines before it, as a text editor does)."""
    lines, done = 0, 0
    with path.open("rb") as f:
        while done < pos:
            chunk = f.read(min(CHUNK, pos - done))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            done += len(chunk)
    return lines + 1
