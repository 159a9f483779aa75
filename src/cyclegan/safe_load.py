"""Reading torch files without unpickling code: every `.pt`/`.pth` the library reads goes through
`load_tensors` (tensors, numbers, strings and containers only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


def load_tensors(path: str | Path, *, error: type[Exception] = ValueError, message: str | None = None) -> Any:
    """`torch.load(path, weights_only=True)` onto the CPU.

    Raises:
        error: the file is missing, not a torch file, truncated, or pickles objects other than
            tensors and plain data; the message is `message` (default "cannot read PATH") and the reason.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (any failure to read is the file's fault)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise error(f"{message or f'cannot read {path}'}: {reason}") from None


def load_state_dict_file(path: str | Path, *, what: str, network: str, error: type[Exception] = ValueError) -> Mapping:
    """A downloaded or given weights file as a mapping (`load_tensors`), or `error` saying what it
    is instead: an HTML page (a server's error or login page), not a torch file, or not a mapping.

    Args:
        what: the file, for the message; network: what it should hold ("the vgg16 weights").
    """
    from .weights.download import looks_like_html

    if looks_like_html(path):
        raise error(f"{what} is an HTML page, not {network} (an error or login page?)")
    state = load_tensors(path, error=error, message=f"{what} is not a readable torch weights file")
    if not isinstance(state, Mapping):
        raise error(f"{what} holds a {type(state).__name__}, not a state dict of {network}")
    return state
