"""The scoring pipeline from the command line: ``export`` writes the Azure ML definitions of
:mod:`components.aml` as YAML and validates them offline; ``run`` submits the deployed
schedule's job now and follows it. Tooling only: the definitions themselves live with the
stack that deploys them."""
