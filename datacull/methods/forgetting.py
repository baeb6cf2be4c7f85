"""Forgetting events."""

from __future__ import annotations

import torch

from ..importance import ImportanceScores, TrajectoryImportance, fill_unseen
from ..registry import register_importance


@register_importance("forgetting")
class ForgettingImportance(TrajectoryImportance):
    """Number of forgetting events (correct -> incorrect between presentations); never learned ranks hardest.

    Toneva et al. (ICLR 2019), as the official ``example_forgetting`` code: a sample is correct in an epoch
    when the argmax of its training-step logits (train mode, augmented, before the update) is its label; a
    forgetting event is a correct presentation followed by an incorrect one; the first presentation is
    compared with nothing. A sample never classified correctly gets the number of epochs read added (the
    official ``sort_examples_by_forgetting`` adds the number of presentations), which ranks it above every
    learned sample (those forget at most half as often) and stands in for the paper's "infinitely
    forgettable". Higher = harder = kept; unforgettable samples (0) are pruned first.

    Differences: the paper counts over the whole training run; we count over the first
    ``trajectory_length`` epochs of the scoring run (set it to the full length for the paper's setting).
    Counts are not summed over several runs. DeepCore and CCS give never-learned samples 0 (easy); we follow
    the official code. Epochs that did not train a sample are skipped (presentations are consecutive
    trained epochs); a sample never trained is neutral (the mean score).
    """

    paper = "Toneva et al., An Empirical Study of Example Forgetting during Deep Neural Network Learning, ICLR 2019"
    higher_is_harder = True
    requires = ("logits",)

    def compute_importance(self) -> ImportanceScores:
        labels = self.labels_tensor
        epochs = self.trajectory_epochs(self.trajectory_length)
        events = torch.zeros(self.num_samples, dtype=torch.float64)
        was_correct = torch.zeros(self.num_samples, dtype=torch.bool)
        presented = torch.zeros(self.num_samples, dtype=torch.bool)
        learned = torch.zeros(self.num_samples, dtype=torch.bool)
        for epoch in epochs:  # a loop over epochs, vectorized over samples
            logits, seen = self.read_epochs([epoch])
            seen = seen[0]
            correct = torch.nan_to_num(logits[0]).argmax(dim=-1) == labels
            events += seen & presented & was_correct & ~correct
            learned |= seen & correct
            was_correct = torch.where(seen, correct, was_correct)
            presented |= seen
        counts = events + torch.where(learned, 0.0, float(len(epochs)))
        return self.scores(fill_unseen(counts, presented))
