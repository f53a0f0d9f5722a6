"""SqlBootstrap: the table, contained users and grants a fresh sensor database needs, applied
by the deployment itself through the dynamic resource of
:mod:`components.providers.sql_bootstrap` (the T-SQL is
:mod:`components.providers.sql_bootstrap_script`).

``SqlBootstrapProvider`` stays importable from here: deployed stacks know it by this module
(:func:`components.providers.common.pickled_as`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.providers.sql_bootstrap import SqlBootstrapProvider, SqlBootstrapResource

__all__ = ["SqlBootstrap", "SqlBootstrapArgs", "SqlBootstrapProvider"]


@dataclass
class SqlBootstrapArgs:
    """Where to connect and whose users to create.

    ``job_identity_name`` is the Stream Analytics job's name (its system-assigned identity
    carries it); ``cluster_identity_name`` the name of the cluster's user-assigned identity.
    The client ids are those identities' application ids: each user's SID.
    """

    server_fqdn: pulumi.Input[str]
    database: pulumi.Input[str]
    job_identity_name: pulumi.Input[str]
    job_identity_client_id: pulumi.Input[str]
    cluster_identity_name: pulumi.Input[str]
    cluster_identity_client_id: pulumi.Input[str]


class SqlBootstrap(pulumi.ComponentResource):
    """Table, contained users and grants in the sensor database (see the module docstring).

    ``script_hash`` identifies the applied script. Make the Stream Analytics start depend on
    this component so the job never starts before its table and user exist.
    """

    script_hash: pulumi.Output[str]

    def __init__(
        self, name: str, args: SqlBootstrapArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:SqlBootstrap", name, None, opts)
        self.script = SqlBootstrapResource(
            f"{name}-tsql",
            {
                "serverFqdn": args.server_fqdn,
                "database": args.database,
                "jobIdentityName": args.job_identity_name,
                "jobIdentityClientId": args.job_identity_client_id,
                "clusterIdentityName": args.cluster_identity_name,
                "clusterIdentityClientId": args.cluster_identity_client_id,
            },
            pulumi.ResourceOptions(parent=self),
        )
        self.script_hash = self.script.scriptHash
        self.register_outputs({"scriptHash": self.script_hash})
