"""The NAS-Bench-201 table's three datasets: each reads its own column, with its data shape."""

from __future__ import annotations

import pytest
from shared_data import SHARED, needs_shared

from nago_pl.search.nb201_table import Nb201Table

TABLE = SHARED / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
FIRST_ROW = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@needs_shared(TABLE)
@pytest.mark.parametrize(("dataset", "classes", "size", "best", "first_row"), [
    ("cifar10", 10, 32, 0.9437, 0.8586),
    ("cifar100", 100, 32, 0.7351, 0.5291),
    ("ImageNet16-120", 120, 16, 0.4731, 0.2663),
])
def test_each_dataset_reads_its_own_column(dataset: str, classes: int, size: int, best: float,
                                           first_row: float) -> None:
    """The best accuracies are the table README's 94.37 / 73.51 / 47.31 %; the first row's
    values are its three columns (a swapped column or a wrong shape fails)."""
    table = Nb201Table.load(TABLE, dataset)
    assert (table.shape.in_channels, table.shape.num_classes, table.shape.image_size) == \
        (3, classes, size)
    assert max(table.accuracy.values()) == pytest.approx(best, abs=1e-4)
    assert table.accuracy[FIRST_ROW] == pytest.approx(first_row, abs=1e-4)
    assert min(table.accuracy.values()) >= 1 / classes - 1e-6  # chance level at worst
    if dataset == "cifar100":  # the best CIFAR-100 cell is NB201's well-known best cell
        assert max(table.accuracy, key=table.accuracy.get) == BEST
