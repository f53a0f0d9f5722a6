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
