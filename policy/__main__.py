"""The `batchscore-security` policy pack: `pulumi preview --policy-pack policy`.

Constructing `PolicyPack` starts the analyzer server and blocks, so this file only wires
things together; the rules live in `rules.py` and their adapter in `policies.py`.
"""

from policies import build_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="batchscore-security",
    description="Security baseline of the batchscore stacks: TLS 1.2, no public blobs, "
    "no shared keys or admin users, Entra-only SQL, managed identities, required tags, "
    "scale-to-zero outside prod.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
