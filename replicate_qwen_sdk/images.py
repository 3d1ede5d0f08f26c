"""Images in a chat: what an ``image_url`` part points at, read into what a
provider can send.

A part's ``url`` is one of:

* an ``http(s)`` URL: kept as it is (the server fetches it);
* a ``data:`` URI (``data:image/png;base64,...``): decoded here, so that a
  malformed one is refused before any request;
* a local file, by path (``"cat.png"``, ``"~/Pictures/cat.png"``, a
  ``pathlib.Path``) or as a ``file://`` URL: read here.

:func:`load_image` checks and reads one; providers decide how to send it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
from typing import NamedTuple, Optional
from urllib.parse import unquote_to_bytes, urlsplit
from urllib.request import url2pathname

from .errors import InvalidArgumentError
from .redaction import shown_url

__all__ = ["MAX_IMAGE_BYTES", "Image", "load_image"]

#: The largest image read from a file or a data URI. Replicate's files API
#: takes files of less than 100 MB, and no chat model takes larger images.
MAX_IMAGE_BYTES = 100_000_000

# The first bytes of the image formats chat models take, for files whose
# name says nothing: (offset, signature, media type).
_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (0, b"BM", "image/bmp"),
)

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


class Image(NamedTuple):
    """One image of a chat, checked (and read, unless it is on the web)."""

    #: How messages name it: the path, the URL without its query string, or
    #: ``data:<type>;base64,... (<n> bytes)``; never a secret or a whole data URI.
    label: str
    #: Its ``http(s)`` URL, for an image on the web; else ``None``.
    url: Optional[str]
    #: Its bytes, for a local file or a data URI; else ``None``.
    data: Optional[bytes]
    #: Its media type (``image/png``), from its name or its first bytes.
    media_type: str
    #: A file name for an upload (``cat.png``, ``image.png`` for a data URI).
    filename: str
    #: The data URI as given, when it came as one (sent as it is).
    data_uri: Optional[str] = None

    @property
    def size(self) -> int:
        """Bytes of a local or inline image (0 for one on the web)."""
        return len(self.data) if self.data is not None else 0

    def as_data_uri(self) -> str:
        """The image as a ``data:`` URI (only for a local or inline image)."""
        if self.data_uri is not None:
            return self.data_uri
        assert self.data is not None, "an image on the web has no bytes here"
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def digest(self) -> str:
        """The SHA-256 of its bytes (hex): the same image read twice has the same one."""
        return hashlib.sha256(self.data or b"").hexdigest()


def load_image(reference: str, *, where: str = "the image") -> Image:
    """Check the image ``reference`` names and read it if it is not on the web.

    :param reference: an ``image_url`` part's ``url`` (see the module's doc).
    :param where: how messages name the part (``messages[0]['content'][1]``).
    :raises InvalidArgumentError: for a URL of another scheme, a malformed
        or non-image data URI, a missing, unreadable, oversized or non-image file.
    """
    text = reference.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme in ("http", "https"):
        return _web_image(text, where)
    if scheme == "data":
        return _inline_image(text, where)
    if scheme == "file":
        return _local_image(url2pathname(urlsplit(text).path), where)
    if len(scheme) > 1 and "://" in text:  # a URL of another kind (ftp://, s3://)
        raise InvalidArgumentError(
            f"{where} is a {scheme}:// URL ({shown_url(text)!r}); "
            "give an http(s) URL, a data: URI or a local file path."
        )
    return _local_image(text, where)


def _web_image(url: str, where: str) -> Image:
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidArgumentError(f"{where} is not a valid URL ({shown_url(url)!r}): it has no host.")
    name = os.path.basename(parts.path.rstrip("/")) or "image"
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Image(shown_url(url), url, None, media_type, name)


def _inline_image(uri: str, where: str) -> Image:
    header, comma, payload = uri.partition(",")
    if not comma:
        raise InvalidArgumentError(f"{where} is a malformed data: URI (no ',' before the data).")
    fields = header[len("data:") :].split(";")
    media_type = fields[0].strip().lower() or "text/plain"
    if not media_type.startswith("image/"):
        raise InvalidArgumentError(
            f"{where} is a data: URI of type {media_type!r}, not an image; give data:image/<type>;base64,..."
        )
    if any(field.strip().lower() == "base64" for field in fields[1:]):
        if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
            raise _too_large(where, len(payload) * 3 // 4)
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgumentError(f"{where} is a data: URI whose base64 data is malformed.") from None
    else:
        data = unquote_to_bytes(payload)
    if not data:
        raise InvalidArgumentError(f"{where} is a data: URI with no data.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(where, len(data))
    label = f"data:{media_type};base64,... ({len(data)} bytes)"
    return Image(label, None, data, media_type, "image" + _EXTENSIONS.get(media_type, ""), data_uri=uri)


def _local_image(path: str, where: str) -> Image:
    if not path:
        raise InvalidArgumentError(f"{where} has an empty url; give an http(s) URL, a data: URI or a local file path.")
    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        what = "is a directory, not a file" if os.path.isdir(full) else "does not exist"
        raise InvalidArgumentError(
            f"{where} names a local file that {what}: {path!r}. Give an existing image file, "
            "an http(s) URL or a data: URI."
        )
    size = os.path.getsize(full)
    if size > MAX_IMAGE_BYTES:
        raise _too_large(where, size)
    try:
        with open(full, "rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise InvalidArgumentError(f"{where}: the file {path!r} cannot be read ({exc.strerror or exc}).") from None
    if not data:
        raise InvalidArgumentError(f"{where}: the file {path!r} is empty.")
    # The first bytes say more than a name (a PNG saved as "photo.bin").
    media_type = _sniff(data) or mimetypes.guess_type(full)[0]
    if media_type is None or not media_type.startswith("image/"):
        raise InvalidArgumentError(
            f"{where}: the file {path!r} is not an image ({media_type or 'unknown type'}); "
            "give a PNG, JPEG, GIF or WebP file."
        )
    return Image(path, None, data, media_type, os.path.basename(full))


def _sniff(data: bytes) -> Optional[str]:
    for offset, signature, media_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return media_type
    return None


def _too_large(where: str, size: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{where} is {size} bytes, more than the {MAX_IMAGE_BYTES} an image may have here; "
        "make it smaller (resize or compress it)."
    )
