"""Networks known before training: a proposal whose network an earlier complete trial of the
study already trained takes that trial's result instead of training it again.

A trial's network is fixed before it trains by its Architecture (its canonical JSON, sampled
from the generator config and the trial's seed, less the ``generator`` field that records
them), its width (the channel multiplier its parameter
budget gives) and the settings that define a trial's result (:func:`result_settings`: data,
model, epochs, ...). Different generator configs often give one network (e.g. at 3 nodes per
level every WS K and P give the same graph; neighbouring budgets round to one multiplier).
"""

from __future__ import annotations

import hashlib
import json

from nago_pl.network.budget import choose_multiplier
from nago_pl.search.constraints import FeasibilityCheck
from nago_pl.search.settings import result_settings
from nago_pl.search.study import Study, Trial
from nago_pl.search.trial import trial_config
from nago_pl.space import Architecture

#: The trial ``info`` entries: the network's fingerprint, the trial whose result it reused.
NETWORK = "network"
DUPLICATE_OF = "duplicate_of"


def network_key(check: FeasibilityCheck, trial: Trial) -> str:
    """A fingerprint of the network ``trial`` would train and how: equal for two trials iff
    they train the same architecture at the same width with the same settings (the sample seed
    aside: it only chose the architecture, and a reused result counts as another sample)."""
    cfg = trial_config(check.base, trial.params, trial.seed, trial.budget)
    arch = check.architecture(trial.seed, trial.params)
    structure = arch.to_dict()
    width = None
    if isinstance(arch, Architecture):
        structure.pop("generator")  # where it came from (config, seed): not the network
        spec = check.network_spec(cfg)
        limit = cfg.network.get("param_limit")
        width = spec.multiplier if limit is None else choose_multiplier(arch, spec, int(limit))
    settings = {k: v for k, v in result_settings(cfg).items() if k != "seed"}
    text = json.dumps([structure, width, settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def trained_twin(study: Study, key: str) -> Trial | None:
    """The first complete trial of ``study`` that trained the network ``key`` itself (not a
    reuse), or None."""
    for trial in study.trials(("complete",)):
        if trial.info.get(NETWORK) == key and DUPLICATE_OF not in trial.info:
            return trial
    return None
