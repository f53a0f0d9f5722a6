"""Parse T-SQL offline with sqlfluff's `tsql` dialect, plus the one option it lacks.

sqlfluff 4.5.0 parses `CREATE USER ... WITH SID = 0x...` (sqlfluff PR #6608) but not the
`TYPE = E | X` option that CREATE USER (Transact-SQL) documents for Microsoft Entra
principals in Azure SQL Database ("TYPE = [ E | X ] ... E indicates the principal is a user or
a service principal (an application or a managed identity). X indicates the principal is a
group"). :func:`parse` uses a copy of the tsql dialect whose CREATE USER options add exactly
that, after SID as the docs order them; everything else is sqlfluff's grammar untouched.
"""

from __future__ import annotations

from functools import cache

from sqlfluff.core import FluffConfig, Linter
from sqlfluff.core.dialects import Dialect, load_raw_dialect
from sqlfluff.core.parser import AnyNumberOf, Delimited, OneOf, Ref, Sequence
from sqlfluff.core.parser.segments import BaseSegment
from sqlfluff.dialects import dialect_tsql


class _CreateUserWithEntraType(dialect_tsql.CreateUserStatementSegment):
    """tsql's CREATE USER, its `WITH` options extended by `TYPE = E | X`."""

    _base = dialect_tsql.CreateUserStatementSegment
    _options_list = Delimited(
        _base._default_schema,
        _base._default_language,
        Sequence("SID", Ref("EqualsSegment"), Ref("HexadecimalLiteralSegment")),
        Sequence("TYPE", Ref("EqualsSegment"), OneOf("E", "X")),
        _base._allow_encrypted_value,
        Sequence("PASSWORD", Ref("EqualsSegment"), Ref("QuotedLiteralSegment")),
    )
    match_grammar = Sequence(
        "CREATE",
        "USER",
        Ref("RoleReferenceSegment"),
        AnyNumberOf(Sequence("WITH", _options_list), _base._external_provider),
    )


@cache
def _dialect() -> Dialect:
    dialect = load_raw_dialect("tsql").copy_as("tsql_entra_users")
    dialect.sets("unreserved_keywords").update(["E", "X", "TYPE"])
    dialect.replace(CreateUserStatementSegment=_CreateUserWithEntraType)
    return dialect.expand()


def parse(sql: str) -> tuple[BaseSegment, list[str]]:
    """The parse tree of `sql` and the parse errors (empty when every statement parsed)."""
    config = FluffConfig(overrides={"dialect": "tsql"})
    config._configs["core"]["dialect_obj"] = _dialect()
    parsed = Linter(config=config).parse_string(sql)
    errors = [str(v) for v in parsed.violations]
    errors += [f"unparsable: {s.raw[:80]!r}" for s in parsed.tree.recursive_crawl("unparsable")]
    return parsed.tree, errors
