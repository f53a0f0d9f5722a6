"""Per-sensor batch scoring: only what runs on the Azure ML cluster (and the same on a laptop).

Everything in this folder ships: it is the scoring image's build context, the Azure ML code
snapshot of the pipeline steps and the content hash their versions derive from
(:mod:`scoring.code_snapshot`). The tooling around it (the ``batchscore`` command line,
simulate, demo, bench, uploads, the Azure ML definitions) lives in the ``batchscore``
package and never ships. Nothing here imports Pulumi, azure-ai-ml or ``batchscore``.

* :mod:`scoring.steps`: the pipeline's steps (extract, score = the parallel entry script,
  publish), each run the same way: ``python -m scoring.steps.<step>`` or the entry script.
* :mod:`scoring.models`: model store, pack, kernel, predictor, training.
* :mod:`scoring.data`: the column contract, files, the extract folder, the database.
* :mod:`scoring.runner`: the local stand-in for Azure ML's parallel driver.
"""

__version__ = "0.1.0"
