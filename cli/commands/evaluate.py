"""`tristudio eval fid|kid|consistency`: image-quality and geometry metrics of a trained EG3D model (thin CLI layer)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Evaluate models: fid, kid (Inception or small-world features), consistency.", no_args_is_help=True
)

_MODEL = typer.Option(..., "--model", help="model folder / run's model/ / EG3D pickle")
_FEATURES = typer.Option("inception", "--features", help="inception (FID/KID) | sw (FID-sw/KID-sw)")
_INCEPTION = typer.Option(None, "--inception", help="pt_inception-2015-12-05-6726825d.pth (or its folder)")
_EXTRACTOR = typer.Option(
    None, "--extractor", help="small-world extractor folder for --features sw (default: the shipped one)"
)


def _fail(msg: str) -> None:
    from tristudio.cli.errors import fail

    fail(msg)


def _features(model: Path, data: Path, num: int, features: str, inception: Path | None, extractor: Path | None):
    from tristudio.core.eg3d.load import LOAD_ERRORS, load_generator
    from tristudio.core.metrics.features import dataset_features, generator_features, load_extractor

    try:
        net = load_extractor(
            features, str(inception if features == "inception" else extractor) if (inception or extractor) else None
        )
        G = load_generator(model)
    except (FileNotFoundError, ValueError, *LOAD_ERRORS) as exc:
        _fail(str(exc))
    real, ds = dataset_features(net, str(data), num)
    fake = generator_features(net, G, ds.labels, num)
    return real, fake


@app.command("fid")
def fid(
    model: Path = _MODEL,
    data: Path = typer.Option(..., "--data"),
    num: int = typer.Option(1000, "--num"),
    features: str = _FEATURES,
    inception: Path = _INCEPTION,
    extractor: Path = _EXTRACTOR,
) -> None:
    """Frechet distance between dataset and generated features."""
    from tristudio.core.metrics.features import metric_name
    from tristudio.core.metrics.fid import fid_from_features

    real, fake = _features(model, data, num, features, inception, extractor)
    typer.echo(json.dumps({metric_name("FID", features): fid_from_features(real, fake), "num": len(fake)}))


@app.command("kid")
def kid(
    model: Path = _MODEL,
    data: Path = typer.Option(..., "--data"),
    num: int = typer.Option(1000, "--num"),
    features: str = _FEATURES,
    inception: Path = _INCEPTION,
    extractor: Path = _EXTRACTOR,
) -> None:
    """Kernel Inception Distance (unbiased MMD^2, cubic kernel, 100 subsets)."""
    from tristudio.core.metrics.features import metric_name
    from tristudio.core.metrics.kid import kernel_inception_distance

    real, fake = _features(model, data, num, features, inception, extractor)
    mean, std = kernel_inception_distance(real, fake)
    name = metric_name("KID", features)
    typer.echo(json.dumps({name: mean, f"{name}_std": std, "num": len(fake)}))


@app.command("consistency")
def consistency(
    model: Path = _MODEL,
    num: int = typer.Option(8, "--num", help="seeds"),
    resolution: int = typer.Option(None, "--resolution", help="render size (default: model's)"),
) -> None:
    """Multi-view depth / normal reprojection error of generated heads (adjacent yaws)."""
    from tristudio.core.eg3d.load import LOAD_ERRORS, load_generator
    from tristudio.core.metrics.consistency import generator_consistency

    try:
        G = load_generator(model)
    except LOAD_ERRORS as exc:
        _fail(str(exc))
    typer.echo(json.dumps(generator_consistency(G, list(range(num)), resolution=resolution)))
