"""The training history: the per-step recorder, the divergence guard, and statistics of a history (late-training mean, estimate against exact W1)."""

from __future__ import annotations

import math
import numbers
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = [
    "estimate_vs_exact",
    "late_mean",
    "late_values",
    "plateau_change",
    "DIVERGENCE_THRESHOLD",
    "TrainingDiverged",
]


def estimate_vs_exact(history: Mapping[str, Sequence]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The critic's estimate and the exact batch W1 at the same generator steps.

    ``wganbook.train.train`` records the critic estimate
    :math:`\hat W_t = \bar f(x) - \bar f(G(z))` at every generator step :math:`t` (``"step"``) and,
    with ``w1_every``, the exact :math:`W_1` of the *same* last real and fake minibatches at the steps
    ``"w1_step"``. This pairs them: :math:`(t_k, \hat W_{t_k}, W_1^{(k)})`; the ratio
    :math:`\hat W / W_1` is the factor the critic's loss carries (:math:`K` for a :math:`K`-Lipschitz
    optimal critic).

    Parameters
    ----------
    history : dict
        A training history with ``"step"``, ``"w1_estimate"``, ``"w1_step"`` and ``"w1_exact"``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Steps, estimates and exact W1 values (float64, equal lengths).

    Raises
    ------
    ValueError
        If the history has no exact W1 records (train with ``w1_every > 0``).
    """
    w1_steps = list(history.get("w1_step", []) or [])
    if not w1_steps:
        raise ValueError("history has no exact W1 records; train with w1_every > 0")
    index = {int(s): i for i, s in enumerate(history["step"])}
    missing = [s for s in w1_steps if int(s) not in index]
    if missing:
        raise ValueError(f"w1_step {missing[0]} has no matching entry in history['step']")
    est = np.asarray([history["w1_estimate"][index[int(s)]] for s in w1_steps], dtype=np.float64)
    return (
        np.asarray(w1_steps, dtype=np.int64),
        est,
        np.asarray(history["w1_exact"][: len(w1_steps)], dtype=np.float64),
    )


def late_mean(history: Mapping[str, Sequence], key: str, fraction: float = 0.5) -> float:
    r"""Mean of an evaluated metric over the last ``fraction`` of training (:func:`late_values`).

    With the evaluations :math:`v_k` of ``history[key]`` at the generator steps
    :math:`t_k` = ``history["eval_step"]`` and :math:`T = \max_k t_k`, the mean of the
    :math:`v_k` with :math:`t_k \ge (1 - \text{fraction})\,T` (e.g. steps 3 000-6 000 of a 6 000-step
    run for the default 0.5). A GAN trained with a constant learning rate need not settle: its
    generator can keep moving (chapter 5's Dirac-GAN never converges), so a metric of the last
    snapshot alone can fluctuate from one evaluation to the next; this is its level over late
    training.

    Parameters
    ----------
    history : dict
        A training history with ``"eval_step"`` and ``key`` (``TrainConfig(eval_every=...)``).
    key : str
        The evaluated metric, e.g. ``"high_quality"``.
    fraction : float, optional
        Share of training (0 < fraction <= 1) whose evaluations are averaged.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        A bad ``fraction``, no evaluations of ``key``, or evaluations that do not match the steps.
    """
    return float(late_values(history, key, fraction).mean())


def late_values(history: Mapping[str, Sequence], key: str, fraction: float = 0.5) -> np.ndarray:
    r"""The evaluations of ``key`` over the last ``fraction`` of training, in step order.

    Those :math:`v_k` of ``history[key]`` whose step :math:`t_k` (``history["eval_step"]``) is
    :math:`\ge (1 - \text{fraction})\,T`, :math:`T = \max_k t_k`. Arguments and errors as
    :func:`late_mean`.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    steps = np.asarray(history.get("eval_step", []) or [], dtype=float)
    values = np.asarray(history.get(key, []) or [], dtype=float)
    if values.size == 0:
        raise ValueError(
            f"history has no evaluations of {key!r}; train with eval_every > 0 and a metric that records {key!r}"
        )
    if values.shape != steps.shape:
        raise ValueError(f"history[{key!r}] has {values.size} values but history['eval_step'] {steps.size}")
    start = (1 - fraction) * steps.max()
    return values[steps >= start - 1e-9 * abs(start)]  # (1 - 1/3) * 1800 is 1200.0000000000002


def plateau_change(values: Sequence[float], parts: int = 5) -> float:
    r"""How much a curve still moves at its end: the relative change of its mean between the last
    two ``1/parts`` of its records.

    With :math:`k = \max(1, \lfloor n / \text{parts} \rfloor)` records per part, the last part
    :math:`L = v_{n-k:n}` and the one before :math:`B = v_{n-2k:n-k}`,

    .. math::

        \text{plateau change} = \frac{|\bar L - \bar B|}{|\bar L|}.

    A curve that has levelled off gives a value near 0; one still rising by 10 % per part, 0.1/1.1.
    The book's one definition of "trained to a plateau" (the static critics of chapters 1, 3 and 4).

    Parameters
    ----------
    values : sequence of float
        The curve (e.g. ``history["w1_estimate"]``), at least 2 records.
    parts : int, optional
        Into how many parts the curve is cut (default 5: the last two fifths).

    Returns
    -------
    float
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    if isinstance(parts, bool) or not isinstance(parts, numbers.Integral) or parts < 2:
        raise ValueError(f"parts must be an int >= 2, got {parts!r}")
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 records, got {v.size}")
    k = max(1, v.size // parts)
    last, before = v[-k:].mean(), v[-2 * k : -k].mean()
    if last == 0:
        raise ValueError("the mean of the last part is 0: the relative change is undefined")
    return float(abs(last - before) / abs(last))


#: The divergence guard; training stops when the critic loss, the generator loss or the W1 estimate
#: exceeds this in absolute value. A heuristic: the book's runs stay within O(1)-O(1e3) (and
#: weight-clipped critics give tiny values), an exploded run (e.g. ``lr=1e6``) reaches 1e20 and
#: more; 1e12 is nine orders of magnitude above the largest normal value and far below float32
#: overflow (3.4e38).
DIVERGENCE_THRESHOLD = 1e12


class TrainingDiverged(RuntimeError):
    """Raised by :func:`~wganbook.train.loop.train` / :func:`~wganbook.train.critic.fit_critic` when a loss becomes NaN or infinite, or when
    a loss or the W1 estimate exceeds ``DIVERGENCE_THRESHOLD`` in absolute value (``value``)."""

    def __init__(self, step: int, what: str, method: str = "", value: Optional[float] = None):
        self.step = step
        self.value = value
        self._args = (step, what, method, value)
        hint = (
            "lower the learning rate (lr)",
            "check the penalty weight lam",
            "for wgan-clip check the clipping bound clip",
            "check the data scale and the critic's norm",
        )
        if value is None or not math.isfinite(value):
            why = "is not finite"
        else:
            why = (
                f"reached {value:.3g}, beyond the divergence threshold {DIVERGENCE_THRESHOLD:.0e} "
                f"(a heuristic: normal runs stay below 1e4)"
            )
        super().__init__(
            f"training diverged at generator step {step}: {what} {why}"
            f"{' (method ' + method + ')' if method else ''}; try to " + ", ".join(hint)
        )

    def __reduce__(self):  # picklable across process pools (run_grid workers)
        return (type(self), self._args)


def _exploded(x: float) -> bool:
    return not math.isfinite(x) or abs(x) > DIVERGENCE_THRESHOLD


# ---------------------------------------------------------------------------------------------
# statistics buffer and divergence guard
# ---------------------------------------------------------------------------------------------
#: The loop's per-step columns (``fit_critic`` records all but ``generator_loss``).
_STEP_KEYS = ("critic_loss", "generator_loss", "w1_estimate", "penalty", "grad_norm")


def _empty_history() -> Dict[str, list]:
    h = {"step": []}
    for k in _STEP_KEYS:
        h[k] = []
    h["w1_step"] = []
    h["w1_exact"] = []
    h["eval_step"] = []
    return h


class _Recorder:
    """Per-step statistics kept on the device, copied to the host (and guarded) at :meth:`flush`.

    The one recorder of :func:`~wganbook.train.loop.train` and :func:`~wganbook.train.critic.fit_critic`: each
    :meth:`add` keeps a row of scalar tensors (no host-device synchronisation); :meth:`flush` copies
    all rows in one transfer, appends them to ``history["step"]`` and ``history[column]``, and then
    applies the divergence guard: a non-finite value in any column but ``grad_norm``, or a loss or
    W1 estimate beyond ``DIVERGENCE_THRESHOLD`` in absolute value, raises :class:`TrainingDiverged`
    naming the first such step and column.

    Parameters
    ----------
    history : dict
        Lists by column; ``"step"`` and every column of ``columns`` must be present.
    method : str
        Named in the divergence message.
    columns : tuple of str, optional
        The recorded statistics, in order (default: the loop's five, ``_STEP_KEYS``).
    """

    def __init__(self, history: dict, method: str, columns: Tuple[str, ...] = _STEP_KEYS):
        self.history = history
        self.method = method
        self.columns = tuple(columns)
        self.rows: List[Tuple[int, tuple]] = []
        self._nan: Optional[torch.Tensor] = None

    def add(self, step: int, **values) -> None:
        """Keep one row: ``values[column]`` is a scalar tensor (or a float; missing/None: NaN)."""
        row = []
        for c in self.columns:
            v = values.get(c)
            if isinstance(v, torch.Tensor):
                row.append(v.detach().reshape(()))
            elif v is None:
                if self._nan is None:
                    like = next(t for t in values.values() if isinstance(t, torch.Tensor))
                    self._nan = torch.full((), float("nan"), device=like.device)
                row.append(self._nan)
            else:
                row.append(torch.tensor(float(v)))
        self.rows.append((step, tuple(row)))

    def flush(self) -> None:
        """Copy the kept rows to ``history``; raise :class:`TrainingDiverged` if one is exploded."""
        if not self.rows:
            return
        flat = [t for _, row in self.rows for t in row]
        vals = torch.stack([t.to(flat[0].device) for t in flat]).float().cpu().view(len(self.rows), -1).tolist()
        steps = [s for s, _ in self.rows]
        self.rows = []
        h = self.history
        for s, v in zip(steps, vals):
            h["step"].append(s)
            for k, x in zip(self.columns, v):
                h[k].append(x)
        for s, v in zip(steps, vals):
            for name, x in zip(self.columns, v):
                if _diverged(name, x):
                    raise TrainingDiverged(s, name, self.method, value=x)


def _diverged(column: str, x: float) -> bool:
    """The divergence guard of one recorded value (``grad_norm`` is not guarded, a penalty only
    for finiteness)."""
    if column == "grad_norm":
        return False
    if column == "penalty":
        return not math.isfinite(x)
    return _exploded(x)


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [float(x) for x in v]
    return v


def _record_eval(history: dict, step: int, value) -> None:
    items = value.items() if isinstance(value, dict) else [("metric", value)]
    history["eval_step"].append(step)
    for k, v in items:
        history.setdefault(k, []).append(float(v))
