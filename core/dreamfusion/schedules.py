"""Schedules over the optimisation steps, each a closed form of the step index k (0-based), so a resumed run (or a run
whose --steps grows on resume) follows the same curve: nothing here keeps state.

    ramp(k; v0, v1, K)        = v0 + (v1 - v0) * min(k / K, 1)            (v1 from the start when K = 0)
    t_range(k)                = (t_min, ramp(k; t_max, t_max_final, K_t))  timestep annealing: the noise levels the
                                guidance draws from shrink from coarse (shape) to fine (detail), as DreamTime /
                                threestudio's max_step_percent schedules do
    lr(k)                     = lr * r ** clamp((k - S) / (K_lr - S), 0, 1)  constant to step S, then exponential
                                decay to r * lr at step K_lr (stable-dreamfusion's 0.1 ** min(k / iters, 1) is
                                S = 0, K_lr = iters, r = 0.1; here in absolute steps)

Steps are absolute (not fractions of the run), like threestudio's [start_step, start_value, end_value, end_step]
schedules: the first 300 steps of a 2000-step run are the same as a 300-step run.
"""

from __future__ import annotations

__all__ = ["ramp", "annealed_t_range", "lr_factor"]


def ramp(k: int, start: float, end: float, steps: int) -> float:
    """Linear from `start` at step 0 to `end` at step `steps`, then constant (end from the start if steps <= 0)."""
    if steps <= 0:
        return float(end)
    return float(start + (end - start) * min(max(k, 0) / steps, 1.0))


def annealed_t_range(k: int, t_range: tuple[float, float], t_max_final: float, steps: int) -> tuple[float, float]:
    """(t_min, t_max) at step k, as fractions of the prior's T: t_max goes linearly from t_range[1] to t_max_final
    over `steps` steps (steps <= 0: no annealing, t_range as given)."""
    t_min, t_max = t_range
    if steps <= 0:
        return float(t_min), float(t_max)
    return float(t_min), max(float(t_min), ramp(k, t_max, t_max_final, steps))


def lr_factor(k: int, final_ratio: float, steps: int, start: int = 0) -> float:
    """1 up to step `start`, then final_ratio ** ((k - start) / (steps - start)), final_ratio from step `steps` on
    (1 throughout if steps <= start)."""
    if steps <= start:
        return 1.0
    return float(final_ratio) ** min(max(k - start, 0) / (steps - start), 1.0)
