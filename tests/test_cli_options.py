"""cli/options.py: configs built from a command's options."""

from __future__ import annotations

from dataclasses import dataclass, field

from tristudio.cli.options import config_from


@dataclass
class _Config:
    steps: int = 10
    lr: float = 1e-3
    batch_size: int = 8
    layers: list = field(default_factory=list)


def test_config_from_takes_options_named_like_fields_and_the_given_rest():
    options = {"steps": 5, "lr": None, "batch": 4, "threads": "auto", "out": "runs/x"}
    cfg = config_from(_Config, options, batch_size=options["batch"])
    assert cfg == _Config(steps=5, lr=None, batch_size=4)  # None is passed on as the command gave it
    assert config_from(_Config, options, steps=7).steps == 7  # a given field wins over the option of that name
    assert config_from(_Config, {}) == _Config()  # fields no option names keep their defaults
