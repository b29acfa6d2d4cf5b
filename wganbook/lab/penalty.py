r"""Chapter 4's experiment helpers: the chapter's penalty settings, a static critic's estimate against
the exact W1 over its steps, and the summary of its WGAN-GP toy GANs.

The static critics themselves are fitted by :func:`wganbook.lab.critics.fit_static_critics` and
summarised by :func:`wganbook.lab.critics.static_fit_summary`; the GANs run through
:func:`wganbook.lab.sweeps.run_grid`. What is here turns their histories into the numbers the
chapter prints.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from wganbook._util import Choice, Int, check_value
from wganbook.metrics import mode_centres
from wganbook.objectives import resolve_hparams
from wganbook.train.history import late_mean, late_values

__all__ = [
    "PENALTY_LABELS",
    "penalty_settings",
    "ratio_curve",
    "estimate_at",
    "toy_gan_summary",
]

#: The two gradient penalties chapter 4 can be run with, and how the text names them.
PENALTY_LABELS = {"wgan-gp": "gradient penalty", "wgan-lp": "one-sided penalty"}


def penalty_settings(params: Mapping[str, Any]) -> Tuple[float, float, str]:
    r"""The penalty weights and the penalty's name of a chapter-4 run.

    ``lam`` (the weight of the :math:`\lambda` fits and of the image runs) is the parameter's
    value, or, when it is ``None``, the default of the chapter's penalty ``method``
    (:math:`\lambda = 10` for both ``wgan-gp`` and ``wgan-lp``, Gulrajani et al. 2017, Algorithm 1);
    ``toy_lam`` (the toy critics' and toy GANs' weight, the toy script's 0.1) is passed through.

    The chapter's parameters are checked by ``presets.validate("ch04", ...)`` (which also refuses
    a dataset that is not an image dataset); this only resolves them.

    Parameters
    ----------
    params : mapping
        The chapter's validated parameters; reads ``method``, ``lam`` and ``toy_lam``.

    Returns
    -------
    (float, float, str)
        ``lam``, ``toy_lam`` and the penalty's name (:data:`PENALTY_LABELS`).

    Raises
    ------
    ValueError
        ``method`` is not one of the two penalties (the message names the allowed values).
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of the chapter's parameters, got {type(params).__name__}")
    method = check_value("method", params.get("method"), Choice(tuple(PENALTY_LABELS)))
    lam = resolve_hparams(method, lam=params.get("lam"))["lam"]
    return float(lam), float(params.get("toy_lam")), PENALTY_LABELS[method]


def ratio_curve(history: Mapping[str, Sequence], window: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    r"""A static critic's estimate over the exact W1 of the same minibatches, as a running mean.

    With the records :math:`\hat W_k` (``history["w1_estimate"]``) and :math:`W_1^{(k)}`
    (``history["w1_exact"]``) at the critic steps :math:`t_k` (``history["step"]``), the ratio
    :math:`\rho_k = \hat W_k / W_1^{(k)}` and its running mean over
    :math:`w = \min(\text{window}, n)` records,

    .. math::

        \bar\rho_k = \frac1w \sum_{j=k-w+1}^{k} \rho_j, \qquad k = w, \dots, n,

    returned at the steps :math:`t_w, \dots, t_n` (the last step of each window). A critic that
    estimates the batch :math:`W_1` exactly gives 1; a :math:`K`-Lipschitz optimal critic,
    :math:`K`.

    Parameters
    ----------
    history : dict
        A :func:`~wganbook.train.critic.fit_critic` history recorded with ``exact_w1=True``.
    window : int, optional
        Records per running mean (fewer when the history is shorter).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Steps and running-mean ratios, of length :math:`n - w + 1`.
    """
    window = check_value("window", window, Int(lo=1))
    est = np.asarray(history.get("w1_estimate", []) or [], dtype=np.float64)
    exact = np.asarray(history.get("w1_exact", []) or [], dtype=np.float64)
    steps = np.asarray(history.get("step", []) or [])
    if exact.size == 0 or est.size != exact.size or steps.size != exact.size:
        raise ValueError(
            f"history must hold as many 'step', 'w1_estimate' and 'w1_exact' records "
            f"(at least one; fit with exact_w1=True), got {steps.size}, {est.size} and "
            f"{exact.size}"
        )
    ratio = est / exact
    w = min(window, ratio.size)
    return steps[w - 1 :], np.convolve(ratio, np.ones(w) / w, mode="valid")


def estimate_at(history: Mapping[str, Sequence], step: int, key: str = "w1_estimate") -> Tuple[float, int]:
    r"""The recorded value at the last record at or before a step.

    With records :math:`v_k` of ``history[key]`` at the steps :math:`t_k` (``history["step"]``),
    the value :math:`v_{k^\ast}` and the step :math:`t_{k^\ast}` for
    :math:`k^\ast = \max\{k : t_k \le \text{step}\}`; the first record when every record lies
    after ``step``.

    Parameters
    ----------
    history : dict
        A training history with ``"step"`` and ``key``.
    step : int
        The step asked for.
    key : str, optional
        The recorded quantity (default: the critic's W1 estimate).

    Returns
    -------
    (float, int)
        The value and the step it was recorded at.
    """
    step = check_value("step", step, Int())
    steps = list(history.get("step", []) or [])
    values = list(history.get(key, []) or [])
    if not steps or len(values) != len(steps):
        raise ValueError(
            f"history must hold as many {key!r} as 'step' records (at least one), got {len(values)} and {len(steps)}"
        )
    i = max([j for j, s in enumerate(steps) if s <= step], default=0)
    return float(values[i]), int(steps[i])


def toy_gan_summary(records: Sequence[Mapping], last: int = 50) -> Dict[str, Optional[float]]:
    r"""What the chapter reports about its toy GANs (runs of :func:`wganbook.lab.sweeps.run_grid`).

    Over the runs :math:`r = 1..R` (on Gaussian-mixture toys):

    * ``"grad_norm"``: :math:`\operatorname{median}_r \operatorname{median}` of run :math:`r`'s last
      ``last`` recorded gradient norms at the penalty points (``history["grad_norm"]``);
    * ``"high_quality_last"``: the mean over the runs of the last snapshot's high-quality share
      (``metrics["high_quality"]``);
    * ``"high_quality_late"``: the mean over the runs of
      :func:`wganbook.train.history.late_mean` of ``"high_quality"`` (second half of training);

    and for the first run, on a toy of :math:`K` modes: ``"late_min"`` / ``"late_max"``, the
    smallest and largest high-quality share over its second half
    (:func:`wganbook.train.history.late_values`), ``"modes_step"``, the first evaluation step at
    which all :math:`K` modes are covered (``None`` if never), and ``"high_quality_at_modes"``,
    the high-quality share at that evaluation (``nan`` if never).

    Parameters
    ----------
    records : list of dict
        Records with ``"combo"["data"]`` (the toy), ``"metrics"["high_quality"]`` and a
        ``"history"`` with ``"grad_norm"``, ``"eval_step"``, ``"modes"`` and ``"high_quality"``.
    last : int, optional
        Gradient-norm records per run in the late median.

    Returns
    -------
    dict
    """
    last = check_value("last", last, Int(lo=1))
    if isinstance(records, (str, Mapping)) or not isinstance(records, Sequence) or not records:
        raise ValueError("records must be a non-empty list of run records")
    n_modes = int(mode_centres(records[0]["combo"]["data"])[0].shape[0])
    h = records[0]["history"]
    late = late_values(h, "high_quality")
    full = [i for i, m in enumerate(h["modes"]) if m == n_modes]
    return {
        "grad_norm": float(np.median([np.median(r["history"]["grad_norm"][-last:]) for r in records])),
        "high_quality_last": float(np.mean([r["metrics"]["high_quality"] for r in records])),
        "high_quality_late": float(np.mean([late_mean(r["history"], "high_quality") for r in records])),
        "late_min": float(late.min()),
        "late_max": float(late.max()),
        "modes_step": int(h["eval_step"][full[0]]) if full else None,
        "high_quality_at_modes": float(h["high_quality"][full[0]]) if full else float("nan"),
    }
