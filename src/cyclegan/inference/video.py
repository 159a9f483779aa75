"""Translate a video file frame by frame (optional extra: `pip install "cyclegan[video]"`).

Frames are streamed: one is decoded, translated and encoded at a time, so memory does not grow with
the video's length. The output keeps the input's frame rate; it is H.264 (libx264, yuv420p), which
needs even frame sizes: an odd width or height is padded by one pixel (edge colour) by the encoder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..data.image_io import DataError
from .loading import generator_channels
from .tiling import translate_tiled


def _imageio():
    try:
        import imageio.v2 as imageio  # optional dependency (the video extra)
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary the plugin needs)
    except ImportError:
        raise ImportError('video translation needs imageio and imageio-ffmpeg: pip install "cyclegan[video]"') from None
    return imageio


def translate_video(
    generator: nn.Module,
    src: str | Path,
    dst: str | Path,
    *,
    tiles: dict[str, Any] | None = None,
    quality: float = 8.0,
    progress: bool = True,
) -> Path:
    """Translate every frame of `src` and write the video `dst` (same frame rate), atomically.

    Args:
        tiles: `translate_tiled` options (tile, overlap, stats_pixels) for frames larger than the tile.
        quality: imageio-ffmpeg quality, 0 (worst) to 10 (best).
    """
    imageio = _imageio()
    src, dst = Path(src), Path(dst)
    channels = generator_channels(generator)[0]
    try:
        reader = imageio.get_reader(src, format="FFMPEG")
        meta = reader.get_meta_data()
    except Exception as e:  # noqa: BLE001  (imageio raises many types for unreadable files)
        raise DataError(f"cannot read video {src} ({type(e).__name__}: {e}); is it a video file?") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.tmp{dst.suffix}")
    writer = imageio.get_writer(tmp, format="FFMPEG", fps=meta.get("fps", 25), quality=quality, macro_block_size=2)
    n = meta.get("nframes")
    try:
        with tqdm(total=n if isinstance(n, int) else None, desc=src.name, unit="frame", disable=not progress) as bar:
            for frame in reader:
                frame = np.asarray(frame)[:, :, :3]
                if channels == 1:
                    frame = np.asarray(Image.fromarray(frame).convert("L"))  # as load_image does
                options = {**(tiles or {}), "tile": (tiles or {}).get("tile") or max(frame.shape[:2])}
                out = translate_tiled(generator, frame, **options)
                writer.append_data(out if out.ndim == 3 else np.repeat(out[:, :, None], 3, axis=2))
                bar.update(1)
        writer.close()
        os.replace(tmp, dst)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    return dst
