"""A fake Azure SQL database for the SQL bootstrap: a DB-API connection that interprets exactly
the statement shapes the bootstrap emits, with SQL Server's rules, and fails on anything else.

Rules it enforces (as SQL Server does): an unguarded create of an existing object fails; a
grant needs the table and the user; a contained user's SID is unique in the database
(``CREATE USER`` with a SID another user holds fails, error 15063); ``DROP USER`` of a user
that does not exist fails (error 15151). Users map name -> SID (the ``0x...`` literal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IDENT = r"\[((?:[^\]]|\]\])*)\]"
_LITERAL = r"N'((?:[^']|'')*)'"
_SID = r"(0x[0-9A-F]{32})"

CREATE_TABLE = rf"IF OBJECT_ID\({_LITERAL}, N'U'\) IS NULL\nCREATE TABLE (\S+) \(.*"
ADD_KEY = (
    r"IF NOT EXISTS \(SELECT 1 FROM sys.key_constraints WHERE parent_object_id = "
    rf"OBJECT_ID\({_LITERAL}\) AND type = N'PK'\)\n"
    r"ALTER TABLE (\S+) ADD CONSTRAINT PK_SensorReadings PRIMARY KEY \(Device, Sensor, TS\);"
)
CREATE_INDEX = (
    r"IF NOT EXISTS \(SELECT 1 FROM sys.indexes WHERE object_id = "
    rf"OBJECT_ID\({_LITERAL}\) AND name = {_LITERAL}\)\n"
    r"CREATE INDEX (\S+) ON (\S+) \(TS\) INCLUDE \(.*\);"
)
REPLACE_USER = (
    rf"IF EXISTS \(SELECT 1 FROM sys.database_principals WHERE name = {_LITERAL} "
    rf"AND sid <> {_SID}\)\nDROP USER {_IDENT};"
)
CREATE_USER = (
    rf"IF NOT EXISTS \(SELECT 1 FROM sys.database_principals WHERE name = {_LITERAL}\)\n"
    rf"CREATE USER {_IDENT} WITH SID = {_SID}, TYPE = E;"
)
DROP_USER = (
    rf"IF EXISTS \(SELECT 1 FROM sys.database_principals WHERE name = {_LITERAL}\)\n"
    rf"DROP USER {_IDENT};"
)
GRANT = rf"GRANT ([A-Z, ]+) ON OBJECT::(\S+) TO {_IDENT};"


def _ident(text: str) -> str:
    return text.replace("]]", "]")


def _literal(text: str) -> str:
    return text.replace("''", "'")


@dataclass
class FakeDatabase:
    """Interprets the bootstrap's statements like SQL Server would (see the module docstring)."""

    tables: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    fail_with: Exception | None = None
    closed: bool = False

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        if self.fail_with is not None:
            raise self.fail_with
        if m := re.fullmatch(CREATE_TABLE, sql, re.S):
            assert _literal(m.group(1)) == m.group(2), "guard and CREATE name different tables"
            if m.group(2) not in self.tables:
                self.tables.add(m.group(2))
                if "PRIMARY KEY (Device, Sensor, TS)" in sql:
                    self.keys.add(m.group(2))
        elif m := re.fullmatch(ADD_KEY, sql):
            assert _literal(m.group(1)) == m.group(2)
            self._need_table(m.group(2))
            self.keys.add(m.group(2))
        elif m := re.fullmatch(CREATE_INDEX, sql):
            assert _literal(m.group(2)) == m.group(3) and _literal(m.group(1)) == m.group(4)
            self._need_table(m.group(4))
            self.indexes.add(m.group(3))
        elif m := re.fullmatch(REPLACE_USER, sql):
            guarded, sid, dropped = _literal(m.group(1)), m.group(2), _ident(m.group(3))
            assert guarded == dropped, f"guard checks {guarded!r} but drops {dropped!r}"
            if guarded in self.users and self.users[guarded] != sid:
                self._drop(dropped)
        elif m := re.fullmatch(CREATE_USER, sql):
            guarded, created, sid = _literal(m.group(1)), _ident(m.group(2)), m.group(3)
            assert guarded == created, f"guard checks {guarded!r} but creates {created!r}"
            if created not in self.users:
                if sid in self.users.values():
                    raise RuntimeError(
                        f"The login already has an account under a different user name. (15063) "
                        f"[{created} {sid}]"
                    )
                self.users[created] = sid
        elif m := re.fullmatch(DROP_USER, sql):
            assert _literal(m.group(1)) == _ident(m.group(2))
            if _ident(m.group(2)) in self.users:
                self._drop(_ident(m.group(2)))
        elif m := re.fullmatch(GRANT, sql):
            self._need_table(m.group(2))
            user = _ident(m.group(3))
            if user not in self.users:
                raise RuntimeError(f"Cannot find the user '{user}'")
            perms = {p.strip() for p in m.group(1).split(",")}
            self.grants.setdefault(user, set()).update(f"{p} ON {m.group(2)}" for p in perms)
        else:
            raise RuntimeError(f"FakeDatabase does not understand: {sql!r}")

    def _drop(self, user: str) -> None:
        if user not in self.users:
            raise RuntimeError(f"Cannot drop the user '{user}', because it does not exist (15151)")
        del self.users[user]
        self.grants.pop(user, None)

    def _need_table(self, name: str) -> None:
        if name not in self.tables:
            raise RuntimeError(f"Cannot find the object '{name}'")

    def state(self) -> tuple:
        """Everything a statement can change, for before/after comparisons."""
        return (
            set(self.tables),
            set(self.keys),
            set(self.indexes),
            dict(self.users),
            {k: set(v) for k, v in self.grants.items()},
        )

    # DB-API surface
    def cursor(self):
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class FakeCursor:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def execute(self, sql: str):
        self.db.execute(sql)

    def close(self):
        pass
