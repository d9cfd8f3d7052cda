"""Loss terms, one per file, registered by name (``loss.terms[*].name``)."""

from scaling.losses import contrastive, distill, regularizers  # noqa: F401  (registers)
from scaling.losses.base import LOSSES, LossInputs, LossTerm, WeightedLoss, build_loss  # noqa: F401
