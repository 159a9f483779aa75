"""Small builders shared by the tests: tiny datasets and tiny configs."""

from __future__ import annotations

from pathlib import Path

from cyclegan.config import build_config
from cyclegan.data.synthetic import write_city_dataset

TINY = [
    "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
    "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
    "optim.n_epochs=1", "optim.n_epochs_decay=1",
    "train.log_every=1", "train.sample_every=3", "train.checkpoint_every=1000",
]


def tiny_dataset(root: Path, n_train: int = 6, n_test: int = 2, size: int = 32) -> Path:
    return write_city_dataset(root, n_train=n_train, n_test=n_test, size=size, seed=1)


def tiny_config(*extra: str):
    return build_config(overrides=[*TINY, *extra])
