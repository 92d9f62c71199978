"""The DreamFusion panel's settings (viewer.dreamfusion.DreamFusionSettings): a snapshot of the panel's state, the
"changed since Start" rule the panel shows, and the engine config it starts (no GUI, no prior needed)."""

from __future__ import annotations

import numpy as np
import pytest

from tristudio.viewer.dreamfusion import DreamFusionSettings
from tristudio.viewer.state import DreamFusionState


def _state(**kw) -> DreamFusionState:
    base = dict(prompt="a blue cone", guidance="csd", scale=7, steps=123, lr=0.02, prior_path="/p", resolution=0)
    return DreamFusionState(**{**base, "seed": 4, "extra": {"hidden": 8, "not_a_config_field": 1}, **kw})


def test_settings_are_a_snapshot_of_the_panel_state_with_loose_widget_types_made_exact():
    state = _state(steps=123.0, seed=4.0)  # ImGui hands back floats where ints are meant
    s = DreamFusionSettings.from_state(state)
    assert (s.prompt, s.guidance, s.guidance_scale, s.steps, s.lr, s.prior_path, s.resolution, s.seed) == (
        "a blue cone", "csd", 7.0, 123, 0.02, "/p", 0, 4,
    )  # fmt: skip
    assert type(s.guidance_scale) is float and type(s.steps) is int and type(s.seed) is int
    state.extra["hidden"] = 16  # editing the panel later does not reach the running object's settings
    state.prompt = "a red cube"
    assert s.extra["hidden"] == 8 and s.prompt == "a blue cone"


@pytest.mark.parametrize(
    "field, value",
    [("prompt", "x"), ("guidance", "vsd"), ("scale", 9.0), ("lr", 0.5), ("prior_path", "/q"), ("resolution", 32),
     ("seed", 5)],
)  # fmt: skip
def test_every_setting_that_decides_the_object_counts_as_a_change(field, value):
    running = DreamFusionSettings.from_state(_state())
    assert not DreamFusionSettings.from_state(_state()).differs(running)
    assert DreamFusionSettings.from_state(_state(**{field: value})).differs(running)
    assert not DreamFusionSettings.from_state(_state(extra={"hidden": 99})).differs(running)
    # the run's length is applied by Start (a finished object trains further), and ImGui's float32 is no change
    assert not DreamFusionSettings.from_state(_state(steps=5000)).differs(running)
    assert not DreamFusionSettings.from_state(_state(lr=float(np.float32(0.02)))).differs(running)


def test_config_maps_the_panel_to_the_engine():
    from tristudio.core.dreamfusion.optimize import DreamFusionConfig

    cfg = DreamFusionSettings.from_state(_state()).config()  # "not_a_config_field" would be a TypeError if passed
    assert isinstance(cfg, DreamFusionConfig)
    assert (cfg.prompt, cfg.guidance, cfg.guidance_scale, cfg.steps, cfg.lr, cfg.seed) == (
        "a blue cone", "csd", 7.0, 123, 0.02, 4,
    )  # fmt: skip
    assert cfg.resolution is None  # 0 in the panel: the prior's own size
    assert cfg.hidden == 8  # extra fields that DreamFusionConfig has are passed on
    assert DreamFusionSettings.from_state(_state(resolution=48)).config().resolution == 48


class _FakeDialog:
    """What portable-file-dialogs returns: ready() turns true when the user closes it; result() is what was chosen."""

    def __init__(self, result, polls_until_ready: int):
        self._result, self._left = result, polls_until_ready

    def ready(self) -> bool:
        self._left -= 1
        return self._left < 0

    def result(self):
        return self._result


@pytest.mark.parametrize(
    "result, chosen",
    [(["/m/a.pkl", "/m/b.pkl"], "/m/a.pkl"), ([], None), ("/priors/p", "/priors/p"), ("", None)],
)
def test_a_file_dialog_yields_its_choice_once_on_the_frame_it_closes(result, chosen):
    """The one file-dialog button of the Model and DreamFusion panels: nothing while the dialog is open, then the
    first file (open_file) or the folder (select_folder) exactly once; a cancelled dialog yields nothing."""
    from tristudio.viewer.panels.widgets import DialogButton

    button = DialogButton("Open...", lambda start: _FakeDialog(result, 2), "type a path")
    assert button.poll() is None  # no dialog open
    button.pending = button.open_dialog(".")
    assert [button.poll() for _ in range(4)] == [None, None, chosen, None]
    assert button.pending is None
