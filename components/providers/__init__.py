"""The Pulumi dynamic providers, each with its hidden dynamic resource and its Azure client
factory (scoring pipeline, SQL bootstrap and its T-SQL, Stream Analytics job start), and what
they share: Azure errors explained, retried Azure calls, diffs.

The components in `components/` wrap these resources; nothing here imports a component module.
Each provider class keeps its old module path as `__module__`: dill pickles it by that name
into every stack's state, and the component modules re-export it there.
"""
