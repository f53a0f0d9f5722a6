"""The Pulumi dynamic providers, each with its hidden dynamic resource and its Azure client
factory (scoring pipeline, SQL bootstrap and its T-SQL, Stream Analytics job start), and what
they share: Azure errors explained, retried Azure calls, diffs.

The components in `components/` wrap these resources; nothing here imports a component module.
Each provider class keeps the module path deployed stacks know it by (`common.pickled_as`).
"""
