"""Training: the configuration, one small loop with callbacks, the history, checkpoints and critic fitting.

- :mod:`wganbook.train.config` -- :class:`TrainConfig` (checked once, from the schema) and :class:`TrainResult`
- :mod:`wganbook.train.loop` -- :func:`train` (the run resolved once) and :func:`run_loop`, the loop every method shares
- :mod:`wganbook.train.callbacks` -- what the loop does besides training: exact W1, metrics, checkpoints, progress
- :mod:`wganbook.train.history` -- the per-step recorder, the divergence guard, statistics of a history
- :mod:`wganbook.train.checkpoint` -- bit-identical resume, automatic run folders, safe output folders
- :mod:`wganbook.train.critic` -- :func:`fit_critic` (a static critic) and :func:`best_response`
"""

from wganbook.models import resolve_device, sample_noise
from wganbook.train.callbacks import Callback
from wganbook.train.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    TrainingInterrupted,
    check_output_dir,
    check_output_file,
    load_checkpoint,
    params_sha256,
    remove_stale_temp_files,
    run_folder_name,
)
from wganbook.train.config import DEFAULT_BATCH_SIZE, METRICS, TOY_OVERRIDES, TrainConfig, TrainResult, toy_overrides
from wganbook.train.critic import best_response, fit_critic
from wganbook.train.history import (
    DIVERGENCE_THRESHOLD,
    TrainingDiverged,
    estimate_vs_exact,
    late_mean,
    late_values,
    plateau_change,
)
from wganbook.train.loop import train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "CheckpointError",
    "DIVERGENCE_THRESHOLD",
    "check_output_dir",
    "check_output_file",
    "remove_stale_temp_files",
    "train",
    "Callback",
    "run_folder_name",
    "fit_critic",
    "best_response",
    "resolve_device",
    "params_sha256",
    "sample_noise",
    "toy_overrides",
    "TOY_OVERRIDES",
    "DEFAULT_BATCH_SIZE",
    "METRICS",
    "CHECKPOINT_NAME",
    "load_checkpoint",
    "estimate_vs_exact",
    "late_mean",
    "late_values",
    "plateau_change",
]
