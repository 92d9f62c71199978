"""Progress bars that report the true rate: steps done in this session / wall time since the bar started. The
training loops' bars (train eg3d / clip / prior, dreamfusion) are `step_progress` bars.

rich's own speed (`Task.speed`) averages the last 30 s of updates and counts nothing before the first one; a run
resumed at step 400 of 1000, or one whose steps take minutes, then shows a rate that is not what the clock says. Here
the rate is (completed - first) / elapsed, with `first` the step the bar began at (a resumed run's step) and elapsed
from rich's clock (`Progress(get_time=...)`, which tests replace by a fake one); the ETA divides what is left by it.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
)
from rich.text import Text

__all__ = ["true_rate", "RateColumn", "EtaColumn", "step_progress", "quiet_loader_bars"]


def true_rate(task: Task) -> float | None:
    """Steps per second since the bar started: (completed - fields["first"]) / elapsed; None before any time passed."""
    elapsed = task.elapsed
    if not elapsed or elapsed <= 0:
        return None
    return (task.completed - float(task.fields.get("first", 0))) / elapsed


class RateColumn(ProgressColumn):
    """'12.3 steps/s' (or 's/step' when slower than one step a second), from true_rate."""

    def __init__(self, unit: str = "steps"):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        rate = true_rate(task)
        if rate is None or rate <= 0:
            return Text(f"-- {self.unit}/s", style="progress.data.speed")
        if rate < 1:
            return Text(f"{1 / rate:.2f} s/{self.unit.rstrip('s')}", style="progress.data.speed")
        return Text(f"{rate:.2f} {self.unit}/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """Time left at the true rate, as h:mm:ss."""

    def render(self, task: Task) -> Text:
        rate = true_rate(task)
        if task.total is None or not rate or rate <= 0:
            return Text("-:--:--", style="progress.remaining")
        left = max(0.0, (task.total - task.completed) / rate)
        h, rem = divmod(int(round(left)), 3600)
        return Text(f"{h}:{rem // 60:02d}:{rem % 60:02d}", style="progress.remaining")


def step_progress(
    console=None, *extra: ProgressColumn, get_time=None, unit: str = "steps", disable: bool = False
) -> Progress:
    """A Progress with description, bar, n/total, the caller's extra columns, the true rate and its ETA (`disable`:
    draw nothing, e.g. on the non-main processes of a torchrun job).

    Add tasks with `first=<first step>` among the fields (0 for a fresh run)."""
    kwargs = {"get_time": get_time} if get_time is not None else {}
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        RateColumn(unit),
        EtaColumn(),
        console=console,
        transient=False,
        disable=disable,
        **kwargs,
    )


def quiet_loader_bars() -> None:
    """No 'Loading weights' / 'Writing model shards' bars from transformers / diffusers: the command's own output is
    the one shown."""
    import diffusers.utils.logging
    import transformers.utils.logging

    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.disable_progress_bar()
