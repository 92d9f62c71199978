"""The run folder every trainer writes, and the generic half of every training loop: config, step log, periodic
checkpoint, resume, loss plot. Each trainer keeps its own step and its own state; this module owns the folder.

    run = TrainingRun(RUN_DIR, checkpoint_every=N, total_steps=T)
    run.check_start(resume)                       # a new run refuses trained state; --resume refuses an empty folder
    run.write_config(config)                      # or config = run.read_config() on --resume
    step = run.resume(restore)                    # restore(Loaded) from the newest checkpoint; log cut back to it
    while step < T:
        record = trainer.step(); step += 1
        run.log(record)                           # one JSON line, flushed
        run.maybe_checkpoint(step, trainer.save)  # every N steps and at step T
    run.plot(records)                             # losses.png

A run folder (RUN_DIR is the trainer's --out / work folder):

    RUN_DIR/config.json                  the run's configuration, written atomically; --resume reads it back
    RUN_DIR/command.json                 the command line that started the run ({"command", "options", "typed"}),
                                         when the CLI started it (cli/resume.py: --resume continues it as started)
    RUN_DIR/log.jsonl                    one JSON object per line: step records ({"step": k, ...}), evaluations,
                                         events ({"event": "start" | "final", ...}); appended and flushed
    RUN_DIR/checkpoints/step-XXXXXXXX/   model.safetensors + model.json: the full state at that step
    RUN_DIR/checkpoints/latest           the commit point (core/io/run_checkpoints.py: one folder renamed into place,
                                         `latest` written last, the newest `keep` kept)
    RUN_DIR/losses.png                   loss curves (core/io/plots.py)
    RUN_DIR/...                          trainer-specific outputs (samples/, export/, model/, eval.json)

Resume contract. A kill can land anywhere, in particular after log lines were appended but before the checkpoint that
covers them was committed. `resume` loads the newest readable checkpoint (step S, or 0 when there is none) and rewrites
log.jsonl atomically without the records of steps after S, without lines cut by the kill and without "final" events, so
the resumed run appends exactly the lines an uninterrupted run would have written. A record's "step" counts the steps
done when it was written (1 for the first step); a trainer whose log counts from 0 (the index of the step taken, as
DreamFusion's does) says so with `log_step_is_index=True`. Records without "step" (a "start" event) are kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path

from .atomic import atomic_write_text
from .plots import plot_losses
from .run_checkpoints import Loaded, has_steps, load_latest

__all__ = ["COMMAND", "CONFIG", "LOG", "PLOT", "RUN_EXPORTS", "STARTING_COMMAND", "TrainingRun", "run_export"]

CONFIG, LOG, PLOT, COMMAND = "config.json", "log.jsonl", "losses.png", "command.json"

# The command line starting a run, set by the CLI around a trainer command (cli/resume.py); `check_start` records it
# in a new run's folder. None (the default) outside the CLI: nothing is recorded.
STARTING_COMMAND: ContextVar[dict | None] = ContextVar("starting_command", default=None)


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


class TrainingRun:
    """One run folder (see the module doc). `is_main=False` (a non-zero DDP rank) makes every write a no-op."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        checkpoint_every: int = 0,
        total_steps: int | None = None,
        log_step_is_index: bool = False,
        is_main: bool = True,
        warn: Callable[[str], None] | None = print,
    ):
        self.dir = Path(run_dir)
        self.checkpoint_every, self.total_steps = int(checkpoint_every or 0), total_steps
        self.log_step_is_index, self.is_main, self.warn = log_step_is_index, is_main, warn

    @property
    def log_path(self) -> Path:
        return self.dir / LOG

    # ------------------------------------------------------------------------------------------------ config
    def exists(self) -> bool:
        """Whether the folder holds a run: its config, its recorded command line or a step folder."""
        return (self.dir / CONFIG).is_file() or (self.dir / COMMAND).is_file() or has_steps(self.dir)

    def check_start(self, resume: bool) -> None:
        """The one rule every trainer applies before it writes anything.

        A new run refuses a folder whose run has a checkpoint (trained state: --resume continues it), and replaces
        one that has none (killed or refused before its first checkpoint: nothing trained is lost), saying so, when
        its command.json shows it is a run the CLI started. Any other folder that holds files is refused and left as
        it is (a config.json alone: a model folder, an older run; a user's files).
        --resume refuses a folder that holds no run, and continues one with no checkpoint yet from step 0, saying so.
        A new run started by the CLI records its command line (command.json)."""
        if resume and not self.exists():
            raise FileNotFoundError(
                f"{self.dir} holds no run to resume (no {CONFIG}, no checkpoint): drop --resume to start a new one"
            )
        checkpoint = has_steps(self.dir)  # committed or not (a lost pointer still leaves trained state)
        if not resume and checkpoint:
            other = self._other_command()
            raise FileExistsError(
                f"{self.dir} already holds a `tristudio {other}` run: choose another folder"
                if other
                else f"{self.dir} already holds a run: pass --resume to continue it, or choose another folder"
            )
        if not resume and (self.dir / CONFIG).is_file() and not (self.dir / COMMAND).is_file():
            raise FileExistsError(  # not a run this can tell is tristudio's (a model folder, say): left as it is
                f"{self.dir} holds a {CONFIG} but no run this can replace (no {COMMAND}, no checkpoint): pass --resume "
                "if it is a run to continue, or choose another folder"
            )
        if not resume and not (self.dir / COMMAND).is_file() and (others := self._entries()):
            raise FileExistsError(  # a user's folder: the run would write over their files (log.jsonl, model/, ...)
                f"{self.dir} holds files that are not a tristudio run ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}): choose a new or empty folder for the run"
            )
        if not resume and (self.dir / COMMAND).is_file():
            self.read_command()  # a command.json of ours (a run the CLI started), else ValueError naming it
        if not resume and self.exists() and self.is_main:
            if self.warn is not None:
                self.warn(
                    f"note: replacing the run in {self.dir}: it has no checkpoint yet, so nothing trained is lost"
                )
            self.log_path.unlink(missing_ok=True)  # its records are of steps that were never saved
        if resume and not checkpoint and self.warn is not None and self.is_main:
            self.warn(f"--resume: no checkpoint in {self.dir} yet; starting from step 0")
        command = STARTING_COMMAND.get()  # a new run's command line, or a resumed run's with its new FREE values
        if command is not None and self.is_main:
            self.write_command(command)

    def _other_command(self) -> str | None:
        """The command that made the folder's run when it is not the one starting (--resume would not fit it)."""
        starting = STARTING_COMMAND.get()
        try:
            recorded = self.read_command()
        except ValueError:
            return None
        if starting is None or recorded is None or recorded.get("command") == starting.get("command"):
            return None
        return str(recorded.get("command"))

    def _entries(self) -> list[str]:
        """What the folder holds that a run could write over, sorted by name: not the run's lock (taken before
        check_start), hidden files (.DS_Store) or empty folders (a folder made in a file manager is empty)."""
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if not p.name.startswith(".") and not _empty_dir(p))

    def write_command(self, command: dict) -> None:
        """RUN/command.json (see STARTING_COMMAND), atomically."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / COMMAND, json.dumps(command, indent=2) + "\n")

    def read_command(self) -> dict | None:
        """The command line that started the run (see STARTING_COMMAND), or None for a run started without one."""
        path = self.dir / COMMAND
        if not path.is_file():
            return None
        try:
            command = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(
                f"{path} is not valid JSON ({exc}); move it away to resume with the options given"
            ) from None
        if not isinstance(command, dict) or not isinstance(command.get("options"), dict):
            raise ValueError(f"{path} is not a recorded command line; move it away to resume with the options given")
        return command

    def write_config(self, config: dict) -> None:
        if self.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.dir / CONFIG, json.dumps(config, indent=2) + "\n")

    def read_config(self) -> dict:
        path = self.dir / CONFIG
        if not path.is_file():
            raise FileNotFoundError(f"no {path}: --resume needs a work folder started by the same command")
        try:
            config = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path} is not a run configuration")
        return config

    # ------------------------------------------------------------------------------------------------ resume
    def resume(self, restore: Callable[[Loaded], None] | None = None) -> int:
        """Load the newest readable checkpoint into the trainer (`restore(loaded)`), cut the log back to its step and
        return that step (0, nothing restored, when the run has no checkpoint yet)."""
        loaded = load_latest(self.dir, warn=self.warn)
        if loaded is not None and restore is not None:
            restore(loaded)
        step = loaded.step if loaded is not None else 0
        self.truncate_log(step)
        return step

    def records(self, upto_step: int | None = None) -> list[dict]:
        """The log's records (lines cut by a kill skipped); with `upto_step`, only those a checkpoint at that step
        covers, "final" events excluded."""
        if not self.log_path.is_file():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if not isinstance(record, dict):
                continue
            if upto_step is None or self._covered(record, upto_step):
                out.append(record)
        return out

    def _covered(self, record: dict, step: int) -> bool:
        if record.get("event") == "final":
            return False
        done = int(record.get("step", 0)) + (1 if self.log_step_is_index and "step" in record else 0)
        return done <= step

    def truncate_log(self, step: int) -> list[dict]:
        """Rewrite log.jsonl (atomically) with only the records a checkpoint at `step` covers; returns them."""
        kept = self.records(upto_step=step)
        if self.is_main and self.log_path.is_file():
            atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    # ------------------------------------------------------------------------------------------------ the loop
    def log(self, record: dict) -> None:
        """Append one JSON line and flush it (open per call: a kill loses at most the line being written)."""
        if self.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def checkpoint_due(self, step: int) -> bool:
        """Every `checkpoint_every` steps (0: never periodically) and at the last step."""
        every = self.checkpoint_every and step % self.checkpoint_every == 0
        return bool(every) or (self.total_steps is not None and step == self.total_steps)

    def maybe_checkpoint(self, step: int, save: Callable[[], Path | None]) -> Path | None:
        """`save()` (the trainer's checkpoint write, core/io/run_checkpoints.save_step) when `checkpoint_due(step)`."""
        return save() if self.checkpoint_due(step) else None

    def plot(self, records: Iterable[dict] | None = None, keys: tuple[str, ...] | None = None, name: str = PLOT):
        """Loss curves of `records` (default: the log) as RUN_DIR/losses.png."""
        if not self.is_main:
            return None
        records = self.records() if records is None else list(records)
        return plot_losses(records, self.dir / name, **({"keys": keys} if keys else {}))


# What a training run exports, by the kind of model: (subfolder of RUN, the file that marks a finished export).
RUN_EXPORTS = {
    "eg3d": ("model", "model.json"),  # train eg3d: G_ema as a tristudio model folder
    "prior": ("export", "model_index.json"),  # train prior: a diffusers folder
    "clip": ("export", "config.json"),  # train clip: a transformers CLIPModel folder
}


def run_export(folder: str | os.PathLike, kind: str) -> Path:
    """Where a model of `kind` (RUN_EXPORTS) is, for a folder given as one: a training run (`--out RUN`, it has
    checkpoints/) stands for the model it exports; any other folder is itself. Raises FileNotFoundError for a run that
    has exported no such model (yet)."""
    sub, marker = RUN_EXPORTS[kind]
    folder = Path(folder)
    if not (folder / "checkpoints").is_dir():  # a model folder never has one
        return folder
    if (folder / sub / marker).is_file():
        return folder / sub
    try:
        kind = f"a `tristudio {json.loads((folder / COMMAND).read_text())['command']}` run"
    except (OSError, ValueError, KeyError, TypeError):
        kind = "a training run"
    raise FileNotFoundError(
        f"{folder} is {kind} without {folder / sub / marker}: a run of another kind of model, or one that has not "
        "exported its model yet"
    )
