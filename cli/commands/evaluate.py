"""`tristudio eval fid|kid|consistency|pose|floaters|id-sw|id-sw-train|arcface-id`: image-quality, geometry and
identity metrics of a trained EG3D model (thin CLI layer)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tristudio.cli.errors import at_least, clean_errors, fail, finite, fresh_folder, out_folder
from tristudio.cli.options import trunc_option

app = typer.Typer(
    help="Evaluate models: image quality, geometry, identity (the group's help lists the commands: cli/app.py)",
    no_args_is_help=True,
)

_MODEL = typer.Option(..., "--model", help="model folder / run's model/ / EG3D pickle")
_FEATURES = typer.Option("inception", "--features", help="inception (FID/KID) | sw (FID-sw/KID-sw)")
_INCEPTION = typer.Option(None, "--inception", help="pt_inception-2015-12-05-6726825d.pth (or its folder)")
_EXTRACTOR = typer.Option(
    None, "--extractor", help="small-world extractor folder for --features sw (default: the shipped one)"
)
_WORLD = typer.Option("heads", "--world", help="the heads world the model was trained on: heads (v1) | heads2")


def print_report(report: dict, why: str, indent: int | None = None) -> str:
    """Print `report` as JSON on stdout and return the text. A number that is not finite (NaN: the metric had nothing
    to measure) becomes null, JSON having no NaN, and a `note:` line on stderr names it and says `why`."""
    from tristudio.core.io.atomic import without_nan

    report, undefined = without_nan(report)
    text = json.dumps(report, indent=indent, allow_nan=False)
    typer.echo(text)
    if undefined:
        typer.echo(f"note: {', '.join(undefined)}: null, undefined: {why}", err=True)
    return text


def _check_world(world: str) -> None:
    if world not in ("heads", "heads2"):
        fail(f"--world must be heads or heads2, not {world!r}")


def _generator(model: Path):
    from tristudio.core.eg3d.load import LOAD_ERRORS, load_generator

    try:
        return load_generator(model)
    except LOAD_ERRORS as exc:
        fail(str(exc))


def _extractor(features: str, inception: Path | None, extractor: Path | None):
    """The --features net, with the weights option that belongs to it (the other one is refused, named)."""
    from tristudio.core.metrics.features import load_extractor

    weights = {"inception": ("--inception", inception), "sw": ("--extractor", extractor)}
    if features not in weights:
        raise typer.BadParameter(f"{features!r} is not inception or sw", param_hint="--features")
    for kind, (name, value) in weights.items():
        if kind != features and value is not None:
            raise typer.BadParameter(f"it applies to --features {kind}, not {features}", param_hint=name)
    try:
        return load_extractor(features, weights[features][1])
    except (OSError, ValueError) as exc:  # missing or unreadable weights (CheckpointError is a ValueError)
        hint = " (or --features sw: the shipped small-world extractor)" if features == "inception" else ""
        fail(f"{exc}{hint}" if "--inception" in str(exc) else str(exc))


def _features(model: Path, data: Path, num: int, features: str, inception: Path | None, extractor: Path | None):
    """(real, fake) features: the first `num` images of the dataset `data` (checked as `train eg3d` checks it) and
    `num` images of the model, posed with the dataset's labels."""
    from tristudio.core.metrics.features import dataset_features, generator_features, open_dataset

    net = _extractor(features, inception, extractor)
    G = _generator(model)
    with clean_errors():  # a missing or broken dataset, NaN features
        ds = open_dataset(data)
        if len(ds) < num:
            typer.echo(f"note: {data} holds {len(ds)} images, fewer than --num {num}: all {len(ds)} are used", err=True)
        real = dataset_features(net, ds, num)
        fake = generator_features(net, G, ds.labels, num)
    return real, fake


def _fid(name: str, real, fake) -> dict:
    from tristudio.core.metrics.fid import fid_from_features

    return {name: fid_from_features(real, fake)}


def _kid(name: str, real, fake) -> dict:
    from tristudio.core.metrics.kid import kernel_inception_distance

    mean, std = kernel_inception_distance(real, fake)
    return {name: mean, f"{name}_std": std}


def _distance_command(metric: str, report, summary: str) -> None:
    """Register `eval fid` / `eval kid`: one set of options and features, `report(name, real, fake)` the distance."""

    def command(
        model: Path = _MODEL,
        data: Path = typer.Option(..., "--data"),
        num: int = typer.Option(1000, "--num", min=2, help="images per side (dataset and generator)"),
        features: str = _FEATURES,
        inception: Path = _INCEPTION,
        extractor: Path = _EXTRACTOR,
    ) -> None:
        from tristudio.core.metrics.features import metric_name

        real, fake = _features(model, data, num, features, inception, extractor)
        scores = {**report(metric_name(metric, features), real, fake), "num_real": len(real), "num_fake": len(fake)}
        print_report(scores, "the features are degenerate")

    app.command(metric.lower(), help=summary)(command)


_distance_command("FID", _fid, "Frechet distance between dataset and generated features.")
_distance_command("KID", _kid, "Kernel Inception Distance (unbiased MMD^2, cubic kernel, 100 subsets).")


@app.command("consistency")
def consistency(
    model: Path = _MODEL,
    num: int = typer.Option(8, "--num", min=1, help="seeds"),
    resolution: int = typer.Option(None, "--resolution", help="render size (default: model's)"),
) -> None:
    """Multi-view depth / normal reprojection error of generated heads (adjacent yaws)."""
    from tristudio.core.metrics.consistency import generator_consistency

    at_least(resolution, 8, "--resolution")
    G = _generator(model)
    report = generator_consistency(G, list(range(num)), resolution=resolution)
    print_report(report, "no two adjacent views shared foreground pixels (opacity > 0.5) to compare")


@app.command("pose")
def pose(
    model: Path = _MODEL,
    num: int = typer.Option(4, "--num", min=1, help="seeds"),
    world: str = _WORLD,
    floor: bool = typer.Option(False, "--floor", help="also measure the floor on ground-truth world renders"),
) -> None:
    """Pose error (deg): re-estimate each generated view's camera from its depth against the world's heads."""
    from tristudio.core.metrics.pose import generator_pose_error, world_pose_floor

    _check_world(world)
    G = _generator(model)
    report = {"model": generator_pose_error(G, list(range(num)), world=world)}
    if floor:
        report["ground_truth_floor"] = world_pose_floor(world)
    print_report(report, "no view had the 20 foreground pixels (opacity > 0.5) a pose is fitted to")


@app.command("floaters")
def floaters(
    model: Path = _MODEL,
    num: int = typer.Option(1000, "--num", min=1, help="samples (seed i with the FFHQ camera of seed i)"),
    seconds: float = typer.Option(None, "--seconds", help="stop after this long (reports how many were done)"),
    threshold: float = typer.Option(0.05, "--threshold", help="opacity above which a pixel is a floater, in (0, 1)"),
    psi: float = trunc_option(1.0),
) -> None:
    """Floater fraction: background pixels (outside the dilated head silhouette) with opacity > threshold."""
    from tristudio.core.metrics.floaters import generator_floaters

    if not 0 < threshold < 1:  # NaN too: at 0 every background pixel would count, at 1 none
        raise typer.BadParameter(f"{threshold} is not an opacity in (0, 1)", param_hint="--threshold")
    finite(psi, "--psi")
    at_least(seconds, 0, "--seconds")
    G = _generator(model)
    report = generator_floaters(G, num, truncation_psi=psi, threshold=threshold, time_budget_s=seconds)
    print_report(report, "no background pixels to count")


_ID_CHANCE_WHY = "ID_chance compares the frontal views of different seeds: it needs --num 2 or more"


@app.command("id-sw")
def id_sw(
    model: Path = _MODEL,
    num: int = typer.Option(16, "--num", min=1, help="seeds"),
    psi: float = trunc_option(0.7),
    world: str = _WORLD,
    id_net: Path = typer.Option(None, "--id-net", help="ID-sw net folder (default: the shipped one for --world)"),
) -> None:
    """ID-sw: mean cosine (small-world identity net) of each seed's frontal view with its views at +-20..60 deg."""
    from tristudio.core.io.checkpoint import CheckpointError
    from tristudio.core.metrics.identity import generator_id_sw, load_identity_net, world_id_sw

    _check_world(world)
    try:
        net, meta = load_identity_net(id_net, world)
    except (FileNotFoundError, ValueError, CheckpointError) as exc:
        fail(str(exc))
    G = _generator(model)
    report = {
        "model": generator_id_sw(G, net, list(range(num)), truncation_psi=psi),
        "ground_truth": world_id_sw(net, meta.get("world", world), list(range(800_000, 800_000 + num))),
    }
    print_report(report, _ID_CHANCE_WHY)


@app.command("id-sw-train")
def id_sw_train(
    out: Path = typer.Option(..., "--out", help="folder for the ID-sw net"),
    world: str = _WORLD,
    identities: int = typer.Option(160, "--identities", min=2, help="heads rendered (InfoNCE contrasts them)"),
    steps: int = typer.Option(600, "--steps", min=1),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the net (or other files) in --out"),
) -> None:
    """Train the small-world identity embedding (InfoNCE over views of the world's heads)."""
    from tristudio.core.metrics.identity import train_identity_net

    _check_world(world)
    fresh_folder(out_folder(out), overwrite, "model.json", "a model")
    try:  # a folder that cannot be written is said before the training, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"{out} cannot be made: {exc.strerror or exc}", param_hint="--out") from None
    typer.echo(str(train_identity_net(world, out, identities=identities, steps=steps, log=typer.echo)))


@app.command("arcface-id")
def arcface_id(
    model: Path = _MODEL,
    num: int = typer.Option(16, "--num", min=1, help="seeds"),
    psi: float = trunc_option(0.7),
    arcface: Path = typer.Option(None, "--arcface", help="ArcFace weights: insightface .onnx or iresnet .pth"),
) -> None:
    """EG3D's ID metric with a user's ArcFace: frontal vs +-20..60 deg views of each seed, mean cosine."""
    from tristudio.core.metrics.arcface import ArcFaceError, load_arcface
    from tristudio.core.metrics.identity import generator_id_sw

    try:
        net = load_arcface(arcface)
    except ArcFaceError as exc:
        fail(str(exc))
    G = _generator(model)
    r = generator_id_sw(G, net, list(range(num)), truncation_psi=psi)
    report = {"ID": r["ID"], "ID_by_view": r["ID_by_view"], "ID_chance": r["ID_chance"], "num": num}
    print_report(report, _ID_CHANCE_WHY)
