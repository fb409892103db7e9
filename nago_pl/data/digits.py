"""scikit-learn's 8x8 handwritten digits as a DataModule (no download needed)."""

from __future__ import annotations

import numpy as np
import torch

from nago_pl.data.base import (
    FIXED_TEST_FRACTION,
    FIXED_TEST_SEED,
    ImageDataModule,
    RawSplits,
    stratified_split,
)


class DigitsDataModule(ImageDataModule):
    """``sklearn.datasets.load_digits``: 1,797 grey 8x8 images, 10 classes.

    ``root`` is ignored. A fixed stratified 20 % test split (seed independent of
    ``split_seed``) is held out; the validation split comes from the rest.
    """


    def _load(self) -> RawSplits:
        from sklearn.datasets import load_digits  # deferred: sklearn is slow to import

        digits = load_digits()
        pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        images = torch.from_numpy(pixels).unsqueeze(1)
        labels = torch.from_numpy(digits.target.astype(np.int64))
        train_idx, test_idx = stratified_split(
            digits.target.astype(np.int64), FIXED_TEST_FRACTION, FIXED_TEST_SEED
        )
        return RawSplits(
            train_x=images[train_idx],
            train_y=labels[train_idx],
            test_x=images[test_idx],
            test_y=labels[test_idx],
            class_names=[str(d) for d in range(10)],
        )
