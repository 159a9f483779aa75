"""Load a generator for translation: from a run dir, a checkpoint, an official `.pth`, or a pretrained name.

An official file is the plain state dict that `pytorch-CycleGAN-and-pix2pix` saves as
`latest_net_G_A.pth` and hands out as pretrained models; its architecture is read from its keys and
shapes (timm-style: a table of names, a key remap, a strict, shape-checked load).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import Config
from ..methods import DIRECTIONS, Method, get_method
from ..nn import ResnetGenerator, UnetGenerator, load_official, with_channels
from ..atomic import verify_digest
from ..safe_load import load_tensors
from ..weights import hf
from ..weights.hf import looks_like_repo_id
from ..weights.pretrained import download_pretrained
from ..checkpoint import FORMAT, CheckpointError, checked_checkpoint, load_checkpoint

log = logging.getLogger(__name__)

OFFICIAL_CROP_SIZE = 256  # the official code's default --crop_size


# ---------------------------------------------------------------------------------------------------
# Loading


def source_path(source: str | Path) -> Path:
    """The file or folder `source` names: an existing path, an official pretrained model's name
    (downloaded into the cache on first use, see `cyclegan.weights.pretrained`), or a Hugging Face
    model id "org/name" (its Hub-layout folder in huggingface_hub's cache, `cyclegan.weights.hf`)."""
    path = Path(source)
    if path.exists():
        return path
    if isinstance(source, str) and "/" not in source and "\\" not in source and not path.suffix:
        return download_pretrained(source)  # raises ValueError with the valid names for an unknown one
    if isinstance(source, str) and looks_like_repo_id(source):
        return hf.download(source)
    raise CheckpointError(f"{source} does not exist; give a run dir, a checkpoint, .pth or .safetensors file, a "
                          "pretrained name or a Hugging Face model id (org/name)")


def load_generator(source: str | Path, direction: str | None = "AtoB",
                   device: str | torch.device = "cpu") -> nn.Module:
    """One translator in eval mode, from a cyclegan checkpoint / run dir (of any method), an official
    generator `.pth` or an official pretrained model name (e.g. "horse2zebra").

    `direction` ("AtoB" / "BtoA") applies to cyclegan checkpoints (None: AtoB, or the one direction
    a one-way run learns); an official file holds one generator and is used as it is. The returned
    module carries `in_channels` and `out_channels` attributes (1 for grayscale, 3 for RGB) so the
    caller knows how to load images.

    Raises:
        CheckpointError: the source does not exist, cannot be read, or is of an unknown format.
        ValueError: an unknown direction, one the run's method does not learn, or a state dict that
            is not a known generator layout.
    """
    return load_translation(source, direction, device, reverse=False).generator


@dataclass(frozen=True)
class Translation:
    """What `load_translation` loads: the translator, the opposite one (or None), and the run's
    config (None for an official generator file)."""

    generator: nn.Module
    reverse: nn.Module | None
    config: Config | None
    trained_size: int | None = None  # the crop size a Hub-layout folder records
    direction: str = "AtoB"  # what `generator` translates (a run's chosen direction, or a file's recorded one)

    @property
    def crop_size(self) -> int:
        """The size the run trained on (the official protocol's test size); 256, the official
        default, for an official generator file."""
        if self.config is not None:
            return self.config.data.crop_size
        return self.trained_size or OFFICIAL_CROP_SIZE


def load_generator_pair(
    source: str | Path, direction: str | None = "AtoB", device: str | torch.device = "cpu", *, reverse: bool = True
) -> tuple[nn.Module, nn.Module | None]:
    """`load_generator(source, direction)` and, if `source` is a cyclegan run or checkpoint whose
    method learns both directions and `reverse` is set, the translator of the opposite direction,
    else None (an official `.pth` holds one generator). The source is read once."""
    loaded = load_translation(source, direction, device, reverse=reverse)
    return loaded.generator, loaded.reverse


def load_translation(
    source: str | Path, direction: str | None = "AtoB", device: str | torch.device = "cpu", *, reverse: bool = True,
    ema: bool = True,
) -> Translation:
    """`load_generator_pair`, with the run's config; `ema=False` takes a run's raw generator weights
    instead of their moving average (`train.ema`)."""
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
    path = source_path(source)
    if hf.is_hf_folder(path):  # one generator in the Hugging Face layout
        net, config = hf.load_folder(path)  # one generator, used as it is (like an official .pth)
        return Translation(with_channels(net.to(device), net.in_channels, net.out_channels), None, None,
                           trained_size=config.get("crop_size"), direction=config.get("direction") or "AtoB")
    obj = read_source(path)
    if obj.get("format") == FORMAT:
        model = method_from_checkpoint(obj, device, ema=ema)
        direction = direction or model.directions[0]
        other = "BtoA" if direction == "AtoB" else "AtoB"
        model.check_direction(direction)
        back = model.translator(other) if reverse and other in model.directions else None
        return Translation(model.translator(direction), back, model.cfg, direction=direction)
    try:
        net = official_generator(obj)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return Translation(net.to(device).eval(), None, None)


def read_source(source: str | Path) -> Mapping:
    """The cyclegan checkpoint (a run dir's latest, or a file) or official state dict `source` names."""
    path = source_path(source)
    return load_checkpoint(path) if path.is_dir() else _read_file(path)


def method_from_checkpoint(ckpt: Mapping, device: str | torch.device = "cpu", *, ema: bool = True) -> Method:
    """The method of a cyclegan checkpoint with every network loaded (strict), in eval mode on
    `device`; the generators hold their moving average (`train.ema`) when the run kept one, unless
    `ema` is False (the raw weights)."""
    if not isinstance(ckpt.get("config"), Mapping) or not isinstance(ckpt.get("nets"), Mapping):
        raise CheckpointError("the checkpoint holds no config or no networks: it cannot say what to build")
    cfg = Config.from_dict(ckpt["config"])
    model = get_method(cfg.model.method).from_config(cfg)
    nets = model.networks()
    for name, state in ckpt["nets"].items():
        if name not in nets:
            raise CheckpointError(f"the checkpoint holds a network {name!r} that model.method={model.name} does not "
                                  f"have (it has {', '.join(nets)})")
        nets[name].load_state_dict(state, strict=True)
    if ema and isinstance(ckpt.get("ema"), Mapping):
        for name, state in ckpt["ema"].items():
            nets[name].load_state_dict(state, strict=True)
    model.load_extra_state(ckpt.get("method", {}))
    return model.to(device).eval()


def generators_from_checkpoint(
    ckpt: Mapping, device: str | torch.device = "cpu"
) -> tuple[nn.Module, nn.Module | None]:
    """(A -> B, B -> A) translators of a cyclegan checkpoint, in eval mode on `device`; the second is
    None for a method that learns A -> B only (pix2pix)."""
    model = method_from_checkpoint(ckpt, device)
    return tuple(model.translator(d) if d in model.directions else None for d in DIRECTIONS)


def _read_file(path: Path) -> Mapping:
    """A cyclegan checkpoint or an official generator state dict, read with `weights_only=True`,
    checked against its sha256 when one was written beside it."""
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): a write that never finished; it cannot be used")
    if verify_digest(path) is False:
        raise CheckpointError(f"{path} does not match its checksum ({path.name}.sha256): the file is corrupt")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    obj = load_tensors(path, error=CheckpointError, message=f"cannot read {path} as a checkpoint or state dict")
    if isinstance(obj, Mapping) and "format" in obj:
        return checked_checkpoint(obj, path)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise CheckpointError(
        f"{path} is neither a cyclegan checkpoint nor an official generator state dict "
        "(a dict of tensors such as latest_net_G_A.pth)"
    )


def _read_safetensors(path: Path) -> Mapping:
    """A generator's official-layout state dict from a safetensors file (no pickle involved)."""
    try:
        from safetensors.torch import load_file  # lazy: only safetensors files need it
    except ImportError:
        raise CheckpointError(f"reading {path} needs the safetensors package: pip install safetensors") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # noqa: BLE001  (any failure to read is the file's fault)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"cannot read {path} as a safetensors file: {reason}") from None


def official_generator(state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Build the generator an official state dict describes and load it (strict, shape-checked).

    The architecture is read from the keys: ResNet (`model.N.conv_block...`: number of blocks, width,
    channels, dropout from the `conv_block.6` conv, norm from the parameters in slot 2, CUT's
    anti-aliased sampling from its `filt` buffers) or U-Net (`model.model...`: depth from the
    nesting). Raises ValueError for anything else.
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
    """The official ResNet layout, or CUT's: its blur filters (`model.N.filt`, 3x3 going down, 4x4
    going up) say that the sampling is anti-aliased."""
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    first = sd["model.1.weight"]  # (ngf, in, 7, 7)
    convs = sorted(
        (int(m.group(1)), v)
        for k, v in sd.items()
        if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and v.dim() == 4
    )
    filters = {int(m.group(1)): v.shape[-1] for k, v in sd.items() if (m := re.fullmatch(r"model\.(\d+)\.filt", k))}
    w6 = sd.get(f"model.{blocks[0]}.conv_block.6.weight")
    net = ResnetGenerator(
        first.shape[1],
        convs[-1][1].shape[0],  # last conv: (out, ngf, 7, 7)
        ngf=first.shape[0],
        n_blocks=len(blocks),
        norm=_official_norm(sd, "model.2.weight", "model.1.bias"),
        dropout=w6 is not None and w6.dim() == 4,
        downsample="antialias" if any(i < blocks[0] for i in filters) else "conv",
        upsample="antialias" if any(i > blocks[-1] for i in filters) else "transpose",
    )
    return with_channels(net, first.shape[1], convs[-1][1].shape[0])


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
    return with_channels(net, first.shape[1], last.shape[1])


def generator_channels(generator: nn.Module) -> tuple[int, int]:
    """(input, output) channels of a generator: its attributes, else its first and last conv."""
    if hasattr(generator, "in_channels") and hasattr(generator, "out_channels"):
        return int(generator.in_channels), int(generator.out_channels)
    convs = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convs:
        raise ValueError(f"cannot tell the channels of {type(generator).__name__}: it has no conv layer")
    return convs[0].in_channels, convs[-1].out_channels
