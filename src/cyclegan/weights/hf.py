"""Generators in the Hugging Face Hub layout: a folder (or Hub repository) holding

- `config.json`: what to build (`arch`: the generator's constructor arguments), the method, the
  direction it translates, the size it trained on, its training config and the metrics of its run;
- `model.safetensors`: the generator's weights (no pickle), our own key names;
- `README.md`: a model card (method, dataset, training settings, metrics with their protocol,
  licence, intended use and limits), with the Hub's YAML header.

`save_pretrained` writes one; `from_pretrained("org/name" | DIR)` reads a local folder, or downloads
a Hub repository through `huggingface_hub` (the optional `hf` extra) into its cache, honouring its
offline mode (`HF_HUB_OFFLINE=1`) and cache variables (`HF_HOME`, `HF_HUB_CACHE`). Uploading is one
`huggingface_hub` call (`HfApi().upload_folder(folder_path=DIR, repo_id="org/name")`), documented in
README rather than wrapped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..atomic import atomic_write_text, save_safetensors, verify_digest
from ..nn import generator_from_arch

CONFIG, WEIGHTS_FILE, CARD = "config.json", "model.safetensors", "README.md"
FORMAT = "cyclegan-generator"
VERSION = 1
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class HubError(ValueError):
    """A Hub-layout folder or repository that cannot be used; the message says why."""


def is_hf_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / CONFIG).is_file() and (path / WEIGHTS_FILE).is_file()


def looks_like_repo_id(text: str) -> bool:
    """`org/name`, the shape of a Hub model id (a local path of that shape is checked first)."""
    return bool(REPO_ID.match(text))


def save_pretrained(generator: nn.Module, folder: str | Path, *, method: str, direction: str, crop_size: int,
                    training: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                    dataset: str | None = None, license: str = "bsd-3-clause") -> Path:
    """Write `generator` (a ResnetGenerator or UnetGenerator, carrying `arch`) as `folder/config.json`,
    `model.safetensors` and `README.md`. Returns the folder.

    Raises:
        HubError: the generator has no `arch` (not one of this package's generators).
    """
    arch = getattr(generator, "arch", None)
    if not isinstance(arch, dict):
        raise HubError(f"{type(generator).__name__} has no architecture description (`arch`); only this package's "
                       "ResNet and U-Net generators can be saved in the Hub layout")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"library": "cyclegan", "format": FORMAT, "version": VERSION, "arch": arch, "method": method,
              "direction": direction, "crop_size": crop_size, "dataset": dataset, "training": dict(training or {}),
              "metrics": dict(metrics or {})}
    save_safetensors(generator.state_dict(), folder / WEIGHTS_FILE, metadata={"library": "cyclegan"})
    atomic_write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")
    atomic_write_text(folder / CARD, model_card(config, license=license))
    return folder


def model_card(config: Mapping[str, Any], *, license: str) -> str:
    """The README.md of a saved generator (Hub model card): YAML header, then what it is and how to use it."""
    arch, method, direction = config["arch"], config["method"], config["direction"]
    dataset = config.get("dataset") or "an unpaired image dataset (trainA / trainB)"
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    layers = (f"{arch['n_blocks']} residual blocks" if arch["type"] == "resnet" else f"{arch['num_downs']} levels")
    lines = [
        "---", "library_name: cyclegan", f"license: {license}", "pipeline_tag: image-to-image",
        f"tags: [image-to-image, {method}, unpaired-image-translation]", "---", "",
        f"# {method} generator: domain {source} → domain {target}", "",
        f"A `{method}` generator ({arch['type']}, {layers}, width {arch['ngf']}, {arch['norm']} norm, "
        f"{arch['downsample']} downsampling, {arch['upsample']} upsampling; {arch['in_channels']} → "
        f"{arch['out_channels']} channels) trained with the `cyclegan` toolkit on {dataset} at "
        f"{config['crop_size']} px crops.", "",
        "## Use", "", "```bash", "cyclegan translate ORG/NAME photos/ --out out/   # or a local copy of this folder",
        "```", "", "```python", "from cyclegan.weights.hf import from_pretrained",
        "g = from_pretrained(\"ORG/NAME\")   # an nn.Module in eval mode: (B, C, H, W) in [-1, 1] -> same size",
        "```", "",
        "## Training", "",
    ]
    training = config.get("training") or {}
    if training:
        keys = ("model", "loss", "optim", "data")
        lines += ["```yaml", *(f"{k}: {json.dumps(training[k])}" for k in keys if k in training), "```", ""]
    else:
        lines += ["Not recorded (converted from a generator file).", ""]
    lines += ["## Metrics", ""]
    metrics = config.get("metrics") or {}
    scores = metrics.get("scores") or {}
    if scores:
        lines += [f"The run's latest evaluation: {metrics.get('split')} split, step {metrics.get('step')}, "
                  f"test-time protocol {metrics.get('protocol')} (`cyclegan evaluate run`).", "",
                  "| metric | value |", "|---|---|",
                  *(f"| {k} | {v:.4g} |" for k, v in scores.items()), ""]
    else:
        lines += ["None recorded with this file.", ""]
    lines += [
        "## Intended use and limits", "",
        "Research and creative image translation between the two domains it was trained on. Unpaired "
        "translation invents plausible detail: outputs are not measurements and must not be used where "
        "factual correctness matters (medical, mapping, forensic decisions). Inputs far from the "
        "training domain give unpredictable outputs. It reproduces the biases of its training images.", "",
        f"Licence: {license}.", "",
    ]
    return "\n".join(lines)


def load_folder(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The generator (in eval mode, weights loaded strictly) and config of a Hub-layout folder.

    Raises:
        HubError: files missing, not this library's format, a corrupt weights file, or weights that do
            not fit the described architecture.
    """
    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as e:
        raise HubError(f"{folder / CONFIG} cannot be read as JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise HubError(f"{folder} is not a cyclegan generator in the Hub layout ({CONFIG} has no format {FORMAT!r})")
    if config.get("version", 0) > VERSION:
        raise HubError(f"{folder} was written by a newer cyclegan (format version {config['version']}); upgrade")
    weights = folder / WEIGHTS_FILE
    if verify_digest(weights) is False:
        raise HubError(f"{weights} does not match its checksum: the file is corrupt")
    try:
        net = generator_from_arch(config.get("arch"))
        from safetensors.torch import load_file  # lazy: only Hub-layout folders need it

        net.load_state_dict(load_file(str(weights), device="cpu"), strict=True)
    except (ValueError, RuntimeError, OSError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HubError(f"{folder}: the weights do not load into the described generator ({reason})") from None
    return net.eval(), config


def download(repo_id: str, *, revision: str | None = None) -> Path:
    """The local folder of Hub model `repo_id` (downloaded into huggingface_hub's cache if needed; with
    HF_HUB_OFFLINE=1 only the cache is read).

    Raises:
        HubError: huggingface_hub is not installed, or the model is neither cached nor downloadable.
    """
    try:
        from huggingface_hub import snapshot_download  # optional dependency (the hf extra)
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise HubError(f"{repo_id!r} looks like a Hugging Face model id, and reading one needs huggingface_hub: "
                       'pip install "cyclegan[hf]" (or give a local path)') from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG, WEIGHTS_FILE, CARD],
                                      library_name="cyclegan"))
    except LocalEntryNotFoundError:
        raise HubError(f"{repo_id} is not in the Hugging Face cache and cannot be downloaded (offline, or no "
                       "network); check the name, or give a local path") from None
    except (HfHubHTTPError, OSError, ValueError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HubError(f"cannot get {repo_id} from the Hugging Face Hub: {reason}") from None


def from_pretrained(name_or_folder: str | Path, *, revision: str | None = None) -> nn.Module:
    """A generator from a Hub-layout folder or a Hub model id ("org/name"), in eval mode, with
    `in_channels` / `out_channels` and its config as `hf_config`."""
    path = Path(name_or_folder)
    folder = path if path.exists() else download(str(name_or_folder), revision=revision)
    net, config = load_folder(folder)
    net.hf_config = config
    return net
