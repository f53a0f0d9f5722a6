"""How an extract is cut into the score step's mini-batches: the one definition of the
layouts and their partition keys, read by the runtime (the extract step, the local runner)
and by the stack (the config's ``scoringPartitioning``, the parallel step's
``partition_keys``). Imports nothing, so the stack's config reads it without pandas.

* ``shard`` (default): files of many whole pairs, one mini-batch per ``Shard`` value.
* ``pair``: one folder per (Device, Sensor), one mini-batch per pair.
"""

from __future__ import annotations

SHARD = "Shard"
DEVICE, SENSOR = "Device", "Sensor"
PAIR_LAYOUT, SHARD_LAYOUT = "pair", "shard"
LAYOUTS = (SHARD_LAYOUT, PAIR_LAYOUT)
#: the partition keys of each layout (the parallel step's ``partition_keys``)
LAYOUT_KEYS: dict[str, tuple[str, ...]] = {PAIR_LAYOUT: (DEVICE, SENSOR), SHARD_LAYOUT: (SHARD,)}
#: rows per shard, about: a shard closes at the first pair boundary once it holds this many
#: (the extract step's default, and a single readings file's under the product's entry script)
DEFAULT_SHARD_ROWS = 200_000


def shard_value(index: int) -> str:
    """The ``Shard`` key of the index-th shard (its folder: ``Shard=<value>``)."""
    return f"{index:05d}"
