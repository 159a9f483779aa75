"""Reading torch files without unpickling code: every `.pt`/`.pth` the library reads goes through
`load_tensors` (tensors, numbers, strings and containers only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_tensors(path: str | Path, *, error: type[Exception] = ValueError, message: str | None = None) -> Any:
    """`torch.load(path, weights_only=True)` onto the CPU.

    Raises:
        error: the file is missing, not a torch file, truncated, or pickles objects other than
            tensors and plain data; the message is `message` (default "cannot read PATH") and the reason.
    """
    import pickle

    import torch  # lazy: modules with name tables import this one, and `cyclegan --help` loads no torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests unsafe loading; never repeat that advice.
        reason = ("it holds Python objects or code, not only tensors and plain data, and is refused (loading it "
                  "could run code); use a file saved as a plain state dict: torch.save(model.state_dict(), path)")
    except PermissionError:
        reason = "permission denied; check the file's permissions"
    except EOFError:
        reason = "the file is empty or cut short"
    except Exception as e:  # noqa: BLE001  (any other failure to read is the file's fault)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise error(f"{message or f'cannot read {path}'}: {reason}")
