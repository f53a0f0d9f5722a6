"""Consumer program: `pulumi config set batchscoreStack <org>/batchscore/<env>`, then up."""

import pulumi
from consumer_stack import consume

for name, value in consume(pulumi.Config().require("batchscoreStack")).items():
    pulumi.export(name, value)
