"""Config: presets, YAML files and dotted overrides that must name existing fields."""

from __future__ import annotations

import pytest

from cyclegan.config import Config, ConfigError, build_config, list_presets, merge


def test_defaults_are_the_papers():
    cfg = Config()
    assert (cfg.model.generator, cfg.model.discriminator, cfg.model.norm) == ("resnet_9blocks", "basic", "instance")
    assert (cfg.loss.gan_mode, cfg.loss.lambda_a, cfg.loss.lambda_b, cfg.loss.lambda_identity) == ("lsgan", 10.0, 10.0, 0.5)
    assert (cfg.loss.pool_size, cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2) == (50, 2e-4, 0.5, 0.999)
    assert (cfg.optim.n_epochs, cfg.optim.n_epochs_decay, cfg.data.batch_size) == (100, 100, 1)
    assert (cfg.data.load_size, cfg.data.crop_size, cfg.data.flip) == (286, 256, True)


def test_presets_files_and_overrides_compose_in_order(tmp_path):
    assert {"demo", "maps_128", "paper_128", "paper_256"} <= set(list_presets())
    user = tmp_path / "user.yaml"
    user.write_text("model:\n  ngf: 48\noptim:\n  lr: 1.0e-4\n")
    cfg = build_config(["maps_128", user], ["model.ngf=32", "data.max_dataset_size=100", "data.flip=false"])
    assert cfg.model.generator == "resnet_6blocks" and cfg.data.crop_size == 128  # preset
    assert cfg.optim.lr == 1e-4  # file
    assert cfg.model.ngf == 32 and cfg.data.max_dataset_size == 100 and cfg.data.flip is False  # overrides win
    assert Config.from_dict(cfg.to_dict()) == cfg
    saved = tmp_path / "saved.yaml"
    cfg.save(saved)
    assert build_config([saved]) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.nfg=3", "unknown config key 'model.nfg'"),
        ("modle.ngf=3", "unknown config key 'modle'"),
        ("model=3", "is a section"),
        ("model.ngf=3.5", "must be an integer"),
        ("model.ngf=true", "must be an integer"),
        ("data.flip=maybe", "must be true or false"),
        ("optim.lr=fast", "must be a number"),
        ("model.generator=resnet_12blocks", "choose one of"),
        ("data.load_size=100", "must be >= data.crop_size"),
        ("model.ngf", "must look like section.key=value"),
        ("train.sample_every=0", "train.sample_every must be at least 1"),
        ("optim.n_epochs=-1", "optim.n_epochs must be at least 0"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=[override])


def test_config_is_immutable():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.model.ngf = 3  # type: ignore[misc]
    assert merge(cfg, {"model": {"ngf": 3}}).model.ngf == 3 and cfg.model.ngf == 64
