"""An Entra access token in the form Microsoft's ODBC driver for SQL Server takes it.

Used by every connection to Azure SQL: the extract step's (SQLAlchemy over pyodbc, as the
cluster's managed identity) and the deployment's SQL bootstrap (mssql-python, as the
deployer). No password ever exists: the driver gets a short-lived token before connecting.
"""

from __future__ import annotations

import struct

#: the connection attribute that carries the token (msodbcsql.h: SQL_COPT_SS_ACCESS_TOKEN)
SQL_COPT_SS_ACCESS_TOKEN = 1256
#: the scope of a token for Azure SQL Database
AZURE_SQL_SCOPE = "https://database.windows.net/.default"


def access_token_struct(token: str) -> bytes:
    """The token as the driver expects it: a 4-byte little-endian length, then UTF-16-LE."""
    raw = token.encode("utf-16-le")
    return struct.pack(f"<I{len(raw)}s", len(raw), raw)
