"""Which life of a dataset name a feed position belongs to."""

from __future__ import annotations

HEADER = "X-Entrepot-Incarnation"


def incarnation_of(dataset_id: int) -> str:
    """The incarnation of the dataset with this id.

    A dataset deleted and created again under its name is a new dataset with
    a new id and a feed counting from 1 again: positions of the old one mean
    nothing in the new one, and carrying on with them would silently diverge.
    Feed responses and exports carry it; readers send it back.
    """
    return str(dataset_id)
