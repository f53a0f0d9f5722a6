"""The Azure stack of batchscore as Pulumi components.

One ComponentResource per module here, plus `config` (the typed stack config), `naming` and
`stack_files` (the one reader of the Pulumi project and stack files). `shared/` holds what
the components share, `providers/` the dynamic providers, `offline/` the offline plan and
its mocks (tooling; the program never imports it).

Kept import-free on purpose: `components.config` (pure validation) and the dynamic
providers must be importable without pulling in every pulumi-azure-native module.
"""
