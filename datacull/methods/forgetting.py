"""Forgetting events."""

from __future__ import annotations

import torch

from ..importance import ImportanceScores, TrajectoryImportance, fill_unseen
from ..registry import register_importance


@register_importance("forgetting")
class ForgettingImportance(TrajectoryImportance):
    """Number of forgetting events (correct -> incorrect between presentations); never learned ranks hardest.

    Toneva et al. (ICLR 2019), as the official ``example_forgetting`` code: forgetting events of the training-step
    predictions over the scoring run's first ``trajectory_length`` epochs (null: all of it, as the paper); a
    sample never classified correctly gets the number of epochs read added. Definition, defaults and differences
    from the paper: docs/methods.md#forgetting.
    """

    paper = "Toneva et al., An Empirical Study of Example Forgetting during Deep Neural Network Learning, ICLR 2019"
    higher_is_harder = True
    requires = ("logits",)

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """1 where the training step classified the sample correctly, else 0."""
        return (logits.argmax(dim=-1) == labels).float()

    def compute_importance(self) -> ImportanceScores:
        epochs = self.trajectory_epochs(self.trajectory_length)
        events = torch.zeros(self.num_samples, dtype=torch.float64)
        was_correct = torch.zeros(self.num_samples, dtype=torch.bool)
        presented = torch.zeros(self.num_samples, dtype=torch.bool)
        learned = torch.zeros(self.num_samples, dtype=torch.bool)
        for correctness, seen in self.epoch_values(epochs):  # a loop over epochs, vectorized over samples
            correct = correctness > 0.5
            events += seen & presented & was_correct & ~correct
            learned |= seen & correct
            was_correct = torch.where(seen, correct, was_correct)
            presented |= seen
        counts = events + torch.where(learned, 0.0, float(len(epochs)))
        return self.scores(fill_unseen(counts, presented))
