"""The intermediate representation: the typed *withholding graph* of a model.

:mod:`dtg.ir.space` holds the one :class:`Space` type; :mod:`dtg.ir.model` the model, its
channels, nets, reward and objective.
"""

from .model import (
    Channel,
    DataSourceSpec,
    Direction,
    Family,
    Message,
    ModelIR,
    NetSpec,
    ObjectiveKind,
    ObjectiveSpec,
    RewardSpec,
    ScheduleDef,
)
from .space import Space, SpaceKind

__all__ = [
    "Space",
    "SpaceKind",
    "Family",
    "Direction",
    "ObjectiveKind",
    "Channel",
    "NetSpec",
    "Message",
    "RewardSpec",
    "ObjectiveSpec",
    "ModelIR",
    "ScheduleDef",
    "DataSourceSpec",
]
