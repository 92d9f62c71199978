"""MP4 writing with imageio-ffmpeg (libx264), atomically: frames go to a temp file renamed on success."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .atomic import atomic_path

__all__ = ["write_video", "read_video_info"]


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: int = 30,
    on_frame: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path | None:
    """Write (H, W, 3) uint8 frames to an H.264 MP4. Sizes should be multiples of 16 (macro blocks).

    `on_frame(i)` is called after each frame; `should_stop()` cancels: the partial file is removed and None returned.
    """
    path = Path(path)
    try:
        return _write(path, frames, fps, on_frame, should_stop)
    except _Cancelled:
        return None


def _write(path: Path, frames, fps, on_frame, should_stop) -> Path:
    import imageio.v2 as imageio

    cancelled = False
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio.get_writer(
            str(tmp),
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            macro_block_size=16,
            ffmpeg_params=["-preset", "veryfast", "-crf", "18"],
            pixelformat="yuv420p",
        )
        try:
            for i, frame in enumerate(frames):
                if should_stop is not None and should_stop():
                    cancelled = True
                    break
                writer.append_data(np.ascontiguousarray(frame))
                if on_frame is not None:
                    on_frame(i)
        finally:
            writer.close()
        if cancelled:
            raise _Cancelled
    return path


class _Cancelled(Exception):
    pass


def read_video_info(path: str | os.PathLike) -> dict:
    """Frame count, size and fps of a video, by decoding it (for tests and checks)."""
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        meta = reader.get_meta_data()
        n = 0
        first = None
        for frame in reader:
            if first is None:
                first = frame
            n += 1
    finally:
        reader.close()
    return {"frames": n, "height": first.shape[0], "width": first.shape[1], "fps": meta.get("fps")}
