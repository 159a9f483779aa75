"""What the web app does with untrusted input: upload limits, image decoding limits, safe paths, tokens.

- Uploads: the request body is counted as it arrives (`BodyLimitMiddleware`), so a client cannot make
  the server buffer more than `max_upload_bytes`; a larger `Content-Length` is refused before reading.
- Images: opened lazily, the header's size is checked against `max_pixels` *before* any pixel is
  decoded (a 50 kB PNG can claim 100,000 x 100,000 pixels: a decompression bomb), the format must be
  one of `ALLOWED_FORMATS`, and truncated or corrupt files are refused.
- Paths: a file named by a request is looked up only inside a given folder: no absolute paths, no
  `..`, no backslashes, and the resolved path (symlinks followed) must still lie inside the folder.
- Tokens: random, URL-safe, compared in constant time.
- Origins: a request that changes something (not GET/HEAD/OPTIONS) from a browser page of another
  origin is refused (403): a plain HTML form on any site could otherwise post uploads here. Every
  response carries the security headers. (A pure ASGI middleware, so that a handler can still notice
  its client leaving.)
"""

from __future__ import annotations

import hmac
import io
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..data.image_io import _to_8bit

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "PPM")
ALLOWED_CONTENT_TYPES = re.compile(r"image/[a-z0-9.+-]+|application/octet-stream")


@dataclass(frozen=True)
class Limits:
    """Upload limits of the web app."""

    max_upload_bytes: int = 20 * 1024 * 1024  # whole request body
    max_pixels: int = 36_000_000  # width x height of an uploaded image (6000 x 6000)
    max_active: int = 1  # translations running at once (serve.work.WorkSlots)
    max_waiting: int = 4  # translations waiting for a slot; more get 503 + Retry-After
    max_seconds: float = 300.0  # a translation running longer is stopped (503)


class UploadError(Exception):
    """An upload or request the app refuses; `status` is the HTTP status, the message says why
    (the app answers it as JSON `{"detail": message}`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def decode_image(data: bytes, *, max_pixels: int, channels: int = 3, content_type: str | None = None) -> Image.Image:
    """An uploaded file as a mode "RGB" (or "L" for `channels=1`) image, converted as `load_image` does.

    Raises:
        UploadError: 415 for a content type or format that is not an accepted image, 413 for more
            than `max_pixels` pixels, 400 for a file that is not an image, truncated or corrupt.
    """
    if content_type and not ALLOWED_CONTENT_TYPES.fullmatch(content_type.split(";")[0].strip().lower()):
        raise UploadError(415, f"expected an image upload, got content type {content_type!r}")
    if not data:
        raise UploadError(400, "the uploaded file is empty")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global PIL switch some libraries turn on
        raise UploadError(500, "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: refusing to decode uploads")
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        raise UploadError(400, "the uploaded file is not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError:
        raise UploadError(413, f"the image is too large (more than {max_pixels:,} pixels)") from None
    with img:
        if img.format not in ALLOWED_FORMATS:
            raise UploadError(415, f"image format {img.format} is not accepted; use one of: {', '.join(ALLOWED_FORMATS)}")
        w, h = img.size
        if w * h > max_pixels:
            raise UploadError(413, f"the image has {w} x {h} = {w * h:,} pixels; the limit is {max_pixels:,}")
        if w < 1 or h < 1:
            raise UploadError(400, f"the image has no pixels ({w} x {h})")
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
            img = _to_8bit(img)
            if img.mode in ("P", "PA"):
                img = img.convert("RGBA")
            rgb = img if img.mode == "RGB" else img.convert("RGB")
        except Image.DecompressionBombError:
            raise UploadError(413, f"the image is too large (more than {max_pixels:,} pixels)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise UploadError(400, f"the image cannot be decoded ({e}); the file may be truncated or corrupt") from None
    return rgb.convert("L") if channels == 1 else rgb


def safe_path(root: str | Path, relative: str) -> Path:
    """The existing file `relative` (a POSIX path) inside folder `root`.

    Raises:
        UploadError (404): an empty, absolute, or `..` path, a backslash or NUL in it, a path that
            leaves `root` once symlinks are resolved, or no such file.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise UploadError(404, "no such file")
    rel = PurePosixPath(relative)
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or re.match(r"^[A-Za-z]:", relative):
        raise UploadError(404, "no such file")
    base = Path(root).resolve()
    try:
        path = (base / rel).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise UploadError(404, "no such file") from None
    if not path.is_relative_to(base) or not path.is_file():
        raise UploadError(404, "no such file")
    return path


def new_token() -> str:
    """A random URL-safe token (128 bits)."""
    return secrets.token_urlsafe(16)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison (a timing side channel cannot guess the token byte by byte)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class BodyLimitMiddleware:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, counting as they arrive."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _json_error(send, 413, self._message())
            return
        seen, exceeded, sent = 0, False, False

        async def counted_receive():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message):
            # Whatever the app makes of the aborted body (FastAPI turns it into a 400), answer 413.
            nonlocal sent
            if exceeded:
                if not sent:
                    sent = True
                    await _json_error(send, 413, self._message())
                return
            sent = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _TooLarge:
            pass
        if exceeded and not sent:
            await _json_error(send, 413, self._message())

    def _message(self) -> str:
        return f"the upload is larger than the limit of {self.max_bytes / 2**20:.3g} MB"


class _TooLarge(Exception):
    pass


async def _json_error(send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same_origin(headers: dict[bytes, bytes]) -> bool:
    """Whether a request comes from this server's own pages: no `Origin` header (not a browser
    cross-site request, e.g. curl) or one naming the host the request was sent to."""
    origin = headers.get(b"origin")
    if origin is None:
        return True
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return origin.decode("latin-1").lower() in (f"http://{host}", f"https://{host}")


class SecurityMiddleware:
    """ASGI middleware: cross-origin changes refused (403), security headers on every response."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not same_origin(dict(scope.get("headers") or [])):
            await _json_error(send, 403, "cross-origin request refused: this server accepts changes and uploads "
                                         "only from its own pages", extra=self.headers)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k, v) for k, v in self.headers if k not in present)]}
            await send(message)

        await self.app(scope, receive, with_headers)
