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


def test_every_trainer_has_the_same_run_options():
    """The run options are one definition (cli/options.py): every command of the tree with --resume is a trainer and
    has --resume, --seed, --ckpt-every and --threads with the very same help, so `train features` cannot again lack
    --resume nor `dreamfusion` call its cadence something else."""
    import typer.main
    from test_threads import _leaf_commands

    from tristudio.cli import options as O
    from tristudio.cli.app import app

    trainers = {}
    for path, command in _leaf_commands(typer.main.get_command(app)):
        params = {p.name: p for p in command.params}
        if "resume" in params:
            trainers[" ".join(path)] = {
                opt: (p.help, p.default) for p in command.params for opt in p.opts if opt.startswith("--")
            }
    assert set(trainers) == {"train eg3d", "train clip", "train prior", "train features", "fit", "dreamfusion"}
    from tristudio.cli.resume import ResumeCommand

    for path, command in _leaf_commands(typer.main.get_command(app)):  # one resume rule: cli/resume.py
        assert isinstance(command, ResumeCommand) == (" ".join(path) in trainers), path
    for name, opts in trainers.items():
        assert opts["--resume"] == (O.RESUME_HELP, False), name
        assert opts["--seed"] == (O.SEED_HELP, 0), name
        assert opts["--ckpt-every"][0] == O.CKPT_EVERY_HELP and opts["--ckpt-every"][1] >= 1, name
        assert "--threads" in opts, name


def test_every_command_names_its_output_folder_with_out():
    """One CLI style: a command that writes a folder takes it as `--out`, never as a positional argument (train
    clip / prior / features and renders make took WORK / OUT before)."""
    import typer.main
    from test_threads import _leaf_commands

    from tristudio.cli.app import app

    writers = []
    for path, command in _leaf_commands(typer.main.get_command(app)):
        for param in command.params:
            if param.name in ("out", "work", "run", "run_dir", "out_dir", "output"):
                writers.append(" ".join(path))
                assert param.param_type_name == "option" and "--out" in param.opts, (path, param.opts)
    assert {"train clip", "train prior", "train features", "renders make", "train eg3d", "fit"} <= set(writers)


def test_the_models_a_command_reads_have_one_name_and_one_help():
    """--prior, --clip (a judging CLIP) and --trunc are one definition each (cli/options.py): the same help everywhere
    and the shipped model as the default; the eval commands' old `--psi` still works as an alias of --trunc."""
    import typer.main
    from test_threads import _leaf_commands

    from tristudio.cli import options as O
    from tristudio.cli.app import app

    seen: dict[str, list[str]] = {"--prior": [], "--clip": [], "--trunc": []}
    for path, command in _leaf_commands(typer.main.get_command(app)):
        for p in command.params:
            for opt in set(p.opts) & set(seen):
                name = " ".join(path)
                if name == "train prior" or command.hidden:  # train prior's --clip is the conditioning CLIP;
                    continue  # the hidden bench rows take --prior auto
                seen[opt].append(name)
                want = {"--prior": O.PRIOR_HELP, "--clip": O.CLIP_HELP, "--trunc": O.TRUNC_HELP}[opt]
                assert p.help == want, (name, opt, p.help)
                assert (p.default is None) == (opt != "--trunc"), (name, opt, p.default)
                if opt == "--trunc":
                    assert "--psi" in p.opts, name
    assert {"dreamfusion", "sample", "eval prior-acceptance", "eval dreamfusion-acceptance"} <= set(seen["--prior"])
    assert {"eval rprecision", "eval prior-acceptance"} <= set(seen["--clip"])
    assert {"generate", "eval id-sw", "eval floaters"} <= set(seen["--trunc"])


def test_every_seed_option_is_the_shared_64_bit_one():
    """--seed is one definition (cli/options.py seed_option) with torch's 64-bit range on the trainers, sample and
    prior-acceptance: a larger seed is refused naming --seed, not an OverflowError deep in torch."""
    import typer.main
    from test_threads import _leaf_commands

    from tristudio.cli import options as O
    from tristudio.cli.app import app

    seeded = []
    for path, command in _leaf_commands(typer.main.get_command(app)):
        for p in command.params:
            if "--seed" in p.opts and " ".join(path) not in ("dataset make", "view"):  # (their own seed meanings)
                seeded.append(" ".join(path))
                assert (p.min, p.max) == (O.SEED_MIN, O.SEED_MAX) == (-(2**63), 2**63 - 1), path
    assert {"dreamfusion", "sample", "eval prior-acceptance", "train prior", "fit"} <= set(seeded)
