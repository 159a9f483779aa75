"""Translate images of any size at full resolution with a trained generator.

A generator comes from a cyclegan checkpoint (file or run dir) or from an official generator `.pth`
file (the plain state dict that `pytorch-CycleGAN-and-pix2pix` saves as `latest_net_G_A.pth` and
hands out as pretrained models). The official test script resizes every image to a multiple of 4
(`preprocess none`) and so changes its size; here the image is padded up to the generator's size
multiple instead, translated, and cropped back, so the output has exactly the input's size.
Pixels are converted as the official test does: ToTensor + Normalize(0.5), forward, `tensor2im`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .config import Config
from .data.image_io import DataError, find_images, load_image, save_image, to_tensor
from .nn import ResnetGenerator, UnetGenerator, build_generator, load_official
from .training.checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint

log = logging.getLogger(__name__)

DIRECTIONS = {"AtoB": "g_ab", "BtoA": "g_ba"}
MIN_SIDE = 8  # smallest padded side that every registered generator accepts


class Translated(NamedTuple):
    """What `translate_paths` did: `written, failed = translate_paths(...)`."""

    written: list[Path]  # output files, in input order
    failed: list[tuple[Path, str]]  # (input file, reason) for inputs that could not be read


# ---------------------------------------------------------------------------------------------------
# Loading


def load_generator(source: str | Path, direction: str = "AtoB", device: str | torch.device = "cpu") -> nn.Module:
    """One generator in eval mode, from a cyclegan checkpoint / run dir or an official generator `.pth`.

    `direction` ("AtoB" uses g_ab, "BtoA" uses g_ba) applies to cyclegan checkpoints; an official
    file holds one generator and is used as it is. The returned module carries `in_channels` and
    `out_channels` attributes (1 for grayscale, 3 for RGB) so the caller knows how to load images.

    Raises:
        CheckpointError: the file cannot be read, or is a checkpoint of an unknown format.
        ValueError: an unknown direction, or a state dict that is not a known generator layout.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
    path = Path(source)
    if path.is_dir():
        net = _from_checkpoint(load_checkpoint(path), direction)
    else:
        if not path.exists():
            raise CheckpointError(f"generator file {path} does not exist")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # corrupt, truncated, or holding arbitrary pickled objects
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(f"cannot read {path} as a checkpoint or state dict: {reason}") from None
        if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
            if obj.get("version", 0) > VERSION:
                raise CheckpointError(
                    f"{path} was written by a newer cyclegan (format version {obj['version']}); upgrade"
                )
            net = _from_checkpoint(obj, direction)
        elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            try:
                net = official_generator(obj)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
        else:
            raise CheckpointError(
                f"{path} is neither a cyclegan checkpoint nor an official generator state dict "
                "(a dict of tensors such as latest_net_G_A.pth)"
            )
    return net.to(device).eval()


def _from_checkpoint(ckpt: Mapping, direction: str) -> nn.Module:
    if not isinstance(ckpt.get("config"), Mapping):
        raise CheckpointError("the checkpoint holds no config: it cannot say which generator to build")
    cfg = Config.from_dict(ckpt["config"])
    m = cfg.model
    key = DIRECTIONS[direction]
    in_ch, out_ch = (m.channels_a, m.channels_b) if key == "g_ab" else (m.channels_b, m.channels_a)
    net = build_generator(m.generator, in_ch, out_ch, ngf=m.ngf, norm=m.norm, dropout=m.dropout)
    try:
        state = ckpt["nets"][key]
    except (KeyError, TypeError):
        raise CheckpointError(f"the checkpoint holds no weights for {key} (nets.{key})") from None
    net.load_state_dict(state, strict=True)
    net.in_channels, net.out_channels = in_ch, out_ch
    return net


def official_generator(state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Build the generator an official state dict describes and load it (strict, shape-checked).

    The architecture is read from the keys: ResNet (`model.N.conv_block...`: number of blocks, width,
    channels, dropout from the `conv_block.6` conv, norm from the parameters in slot 2) or U-Net
    (`model.model...`: depth from the nesting). Raises ValueError for anything else.
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "model.1.weight" in sd and any(".conv_block." in k for k in sd):
        net = _official_resnet(sd)
    elif "model.model.0.weight" in sd:
        net = _official_unet(sd)
    else:
        raise ValueError(
            "not an official generator state dict: expected ResNet keys (model.1.weight, "
            f"model.N.conv_block...) or U-Net keys (model.model.0.weight); found {list(sd)[:4]}..."
        )
    load_official(net, sd)
    return net


def _official_norm(sd: Mapping[str, torch.Tensor], norm_weight: str, first_conv_bias: str) -> str:
    # Batch norm has an affine weight (1-D) after the first conv; the official code gives convs a
    # bias only before instance norm, so no bias and no norm weight means norm "none".
    w = sd.get(norm_weight)
    if w is not None and w.dim() == 1:
        return "batch"
    return "instance" if first_conv_bias in sd else "none"


def _official_resnet(sd: Mapping[str, torch.Tensor]) -> nn.Module:
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    first = sd["model.1.weight"]  # (ngf, in, 7, 7)
    convs = sorted(
        (int(m.group(1)), v)
        for k, v in sd.items()
        if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and v.dim() == 4
    )
    w6 = sd.get(f"model.{blocks[0]}.conv_block.6.weight")
    net = ResnetGenerator(
        first.shape[1],
        convs[-1][1].shape[0],  # last conv: (out, ngf, 7, 7)
        ngf=first.shape[0],
        n_blocks=len(blocks),
        norm=_official_norm(sd, "model.2.weight", "model.1.bias"),
        dropout=w6 is not None and w6.dim() == 4,
    )
    net.in_channels, net.out_channels = first.shape[1], convs[-1][1].shape[0]
    return net


def _official_unet(sd: Mapping[str, torch.Tensor]) -> nn.Module:
    # Level d >= 1 has its down conv at "model.model.1.model." + "3.model." * (d - 1) + "1.weight".
    num_downs = 1
    while f"model.model.1.model.{'3.model.' * (num_downs - 1)}1.weight" in sd:
        num_downs += 1
    first, last = sd["model.model.0.weight"], sd.get("model.model.3.weight")  # (ngf, in, 4, 4), (2ngf, out, 4, 4)
    if last is None or num_downs < 5:
        raise ValueError(f"incomplete or too shallow U-Net state dict ({num_downs} levels; at least 5 expected)")
    net = UnetGenerator(
        first.shape[1],
        last.shape[1],
        num_downs=num_downs,
        ngf=first.shape[0],
        norm=_official_norm(sd, "model.model.1.model.2.weight", "model.model.0.bias"),
    )
    net.in_channels, net.out_channels = first.shape[1], last.shape[1]
    return net


def generator_channels(generator: nn.Module) -> tuple[int, int]:
    """(input, output) channels of a generator: its attributes, else its first and last conv."""
    if hasattr(generator, "in_channels") and hasattr(generator, "out_channels"):
        return int(generator.in_channels), int(generator.out_channels)
    convs = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convs:
        raise ValueError(f"cannot tell the channels of {type(generator).__name__}: it has no conv layer")
    return convs[0].in_channels, convs[-1].out_channels


# ---------------------------------------------------------------------------------------------------
# Translating


def _pad_dim(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    if before == 0 and after == 0:
        return x
    pad = (before, after, 0, 0) if dim == -1 else (0, 0, before, after)
    # Reflection (no new edge colours) needs the pad to be smaller than the side; else replicate.
    mode = "reflect" if max(before, after) < x.shape[dim] else "replicate"
    return F.pad(x, pad, mode=mode)


def padded_side(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n and >= MIN_SIDE.

    MIN_SIDE because a ResNet's blocks reflection-pad their 1/4-size features, which needs 2 pixels.
    """
    return max(-(-n // multiple), -(-MIN_SIDE // multiple)) * multiple


def translate_tensor(generator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Translate (B, C, H, W) (or (C, H, W)) images in [-1, 1] of any size; the output has size H x W.

    The input is padded (split evenly on both sides, see `padded_side`), run under
    `torch.inference_mode()` on the generator's device, and cropped back.
    """
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) or (C, H, W) tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    multiple = int(getattr(generator, "size_multiple", 1))
    ph, pw = padded_side(h, multiple) - h, padded_side(w, multiple) - w
    top, left = ph // 2, pw // 2
    param = next(generator.parameters(), None)
    device = param.device if param is not None else x.device
    with torch.inference_mode():
        xp = x.to(device=device, dtype=torch.float32)
        xp = _pad_dim(_pad_dim(xp, -2, top, ph - top), -1, left, pw - left)  # (B, C, H + ph, W + pw)
        y = generator(xp)[..., top : top + h, left : left + w]
    return y.squeeze(0) if squeeze else y


def _plan(inputs: Iterable[str | Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs; folders are expanded recursively, keeping relative sub-folders."""
    pairs = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            pairs += [(f, out_dir / f.relative_to(item).with_suffix(".png")) for f in find_images(item)]
        elif item.is_file():
            pairs.append((item, out_dir / f"{item.stem}.png"))
        else:
            raise DataError(f"input {item} does not exist; check the path")
    sources = {p.resolve(): p for p, _ in pairs}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        real = dst.resolve()
        if real in sources:
            raise ValueError(
                f"the output {dst} for {src} would overwrite the input {sources[real]}; choose another output folder"
            )
        if real in seen:
            raise ValueError(
                f"{seen[real]} and {src} would both be written to {dst}; rename one or translate them separately"
            )
        seen[real] = src
    return pairs


def translate_paths(
    generator: nn.Module,
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    channels_in: int | None = None,
    progress: bool = True,
) -> Translated:
    """Translate image files and folders (recursively) into `out_dir`, each as `<stem>.png`.

    Outputs keep the input's name with the extension changed to `.png` (lossless, so a JPEG input
    gives `photo.png`) and, for folder inputs, the sub-folder relative to that folder. A file that
    cannot be read is logged as a warning and skipped; the others are still translated, and the
    failures are returned (deciding an exit status is the caller's business).

    Args:
        channels_in: 1 to load images as grayscale, 3 as RGB; default: the generator's input channels.

    Raises:
        DataError: an input path does not exist, or a folder holds no images.
        ValueError: an output would overwrite an input, or two inputs map to the same output.
    """
    out_dir = Path(out_dir)
    if channels_in is None:
        channels_in = generator_channels(generator)[0]
    pairs = _plan(inputs, out_dir)
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for src, dst in tqdm(pairs, desc="translate", unit="img", disable=not progress):
        try:
            x = to_tensor(load_image(src, channels_in))
        except DataError as e:
            log.warning("skipping %s", e)
            failed.append((src, str(e)))
            continue
        y = translate_tensor(generator, x)  # (C, H, W)
        written.append(save_image(y.cpu(), dst))
    if failed:
        log.warning("%d of %d images could not be read and were skipped", len(failed), len(pairs))
    return Translated(written, failed)
