"""One-shot architecture search (SNAS, a DARTS control): a weight-sharing supernet trained as
a LightningModule whose derived cells become trials of the Study."""

#: The one-shot methods ``search=`` names: SNAS (Gumbel-softmax samples, one loss for the
#: weights and the architecture on the training batch) and DARTS (softmax mixture,
#: first-order bilevel: the architecture on a held-out batch).
METHODS = ("snas", "darts")
