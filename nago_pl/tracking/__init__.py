"""Experiment tracking with Weights & Biases.

- :mod:`~nago_pl.tracking.mode`: online / offline / error, decided without a network or a prompt.
- :mod:`~nago_pl.tracking.loggers`: the ``logger=wandb`` and ``logger=auto`` config targets.
- :mod:`~nago_pl.tracking.run_info`: a training run's config, result and clean finish.
- :mod:`~nago_pl.tracking.search_run`: a search's own run (Pareto front, plots, artifacts).
- :mod:`~nago_pl.tracking.sweep_config`: checks of the W&B sweep files in ``conf/sweep/``.
- :mod:`~nago_pl.tracking.sweep_adapter`: Study trials <-> W&B sweep runs (plain functions).
- :mod:`~nago_pl.tracking.sweep_driver`: ``search.wandb_sweep=true``, agents train the trials.
"""
