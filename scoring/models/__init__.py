"""Models: the store of per-pair model files (:mod:`.store`), its packed form (:mod:`.pack`),
the exact fast kernel (:mod:`.kernel`), the predictor that scores partitions
(:mod:`.predictor`) and training (:mod:`.training`)."""
