"""``aggregate``: Stream Analytics tumbling windows into SensorReadings, replace on re-run."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from batchscore.aggregate import aggregate_readings, window_end
from batchscore.cli import main
from scoring.data import db
from scoring.data.files import write_table
from scoring.data.schema import COUNT, DEVICE, MAX_VALUE, MIN_VALUE, SENSOR, SQL_COLUMNS, TS, VALUE


def _raw(rows: list[tuple[str, str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["TS", "Device", "Sensor", "Value"])


def _table(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(sa.select(db.sensor_readings), conn)
    finally:
        engine.dispose()
    return frame.sort_values([DEVICE, SENSOR, TS], ignore_index=True)


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sensors.db'}"


BOUNDARY = _raw(
    [
        ("2024-01-01 09:55:00", "001", "temp", 1.0),  # exactly on a boundary: window 09:55
        ("2024-01-01 09:55:01", "001", "temp", 2.0),  # window 10:00
        ("2024-01-01 09:58:00", "001", "temp", 4.0),  # window 10:00
        ("2024-01-01 10:00:00", "001", "temp", 6.0),  # window 10:00 (end is inclusive)
        ("2024-01-01 10:00:00.5", "001", "temp", 10.0),  # window 10:05
        ("2024-01-01 10:00:00", "002", "temp", 7.0),  # another device, same window end
    ]
)


def test_windows_cover_start_exclusive_end_inclusive():
    readings = BOUNDARY.assign(TS=pd.to_datetime(BOUNDARY["TS"], format="ISO8601"))
    ends = window_end(readings[TS], 5).dt.strftime("%H:%M:%S").tolist()
    assert ends == ["09:55:00", "10:00:00", "10:00:00", "10:00:00", "10:05:00", "10:00:00"]
    windows = aggregate_readings(readings, 5)
    assert list(windows.columns) == list(SQL_COLUMNS)
    row = windows[(windows[DEVICE] == "001") & (windows[TS] == pd.Timestamp("2024-01-01 10:00"))]
    assert row[[VALUE, MIN_VALUE, MAX_VALUE, COUNT]].iloc[0].tolist() == [4.0, 2.0, 6.0, 3]
    assert len(windows) == 4


def test_cli_writes_the_table_with_its_key(tmp_path, url):
    write_table(BOUNDARY, tmp_path / "raw.csv")
    assert main(["aggregate", "--input", str(tmp_path / "raw.csv"), "--db", url]) == 0
    table = _table(url)
    assert len(table) == 4
    assert table[DEVICE].tolist() == ["001", "001", "001", "002"], "device ids stay strings"
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("SensorReadings")["constrained_columns"] == [
        DEVICE,
        SENSOR,
        TS,
    ]
    ts_type = {c["name"]: c["type"] for c in inspector.get_columns("SensorReadings")}[TS]
    assert isinstance(ts_type, sa.DateTime)
    engine.dispose()


def test_reaggregating_replaces_and_never_duplicates(tmp_path, url):
    start = pd.Timestamp("2024-01-01 00:00:01")
    times = [start + pd.Timedelta(minutes=i) for i in range(60)]
    first = _raw([(t.isoformat(), "d1", "s1", 1.0) for t in times])
    write_table(first, tmp_path / "first.parquet")
    for _ in range(2):
        assert main(["aggregate", "--input", str(tmp_path / "first.parquet"), "--db", url]) == 0
    table = _table(url)
    assert len(table) == 12 and not table.duplicated([DEVICE, SENSOR, TS]).any()

    # Re-aggregate 20 minutes of corrected readings in the middle: those windows change.
    corrected = _raw([(t.isoformat(), "d1", "s1", 5.0) for t in times[20:40]])
    write_table(corrected, tmp_path / "fix.parquet")
    assert main(["aggregate", "--input", str(tmp_path / "fix.parquet"), "--db", url]) == 0
    table = _table(url).set_index(TS)
    assert len(table) == 12
    assert table[VALUE].tolist() == [1.0] * 4 + [5.0] * 4 + [1.0] * 4


def test_replace_windows_is_one_transaction(url, monkeypatch):
    engine = db.open_database(url, create=True)
    db.ensure_table(engine)
    good = aggregate_readings(
        _raw([("2024-01-01 00:01", "d", "s", 1.0)]).assign(TS=lambda f: pd.to_datetime(f["TS"])),
        5,
    )
    db.replace_windows(engine, good)

    def broken(_chunk, _columns):
        raise RuntimeError("insert failed")

    monkeypatch.setattr(db, "_records", broken)
    with pytest.raises(RuntimeError):
        db.replace_windows(engine, good.assign(**{VALUE: 9.0}))
    assert db.count_rows(engine) == 1, "the delete was rolled back with the failed insert"
    engine.dispose()


def test_bad_rows_are_rejected_with_a_warning_per_reason(tmp_path, url, caplog, capsys):
    raw = _raw(
        [
            ("2024-01-01 00:01", "d", "s", "1.5"),
            ("2024-01-01 00:02", "d", "s", "n/a"),
            ("2024-01-01 00:03", "d", "s", ""),
            ("garbage", "d", "s", "3"),
            ("2024-01-01 00:04", "d", "s", "2.5"),
        ]
    )
    path = tmp_path / "dirty.csv"
    write_table(raw, path)
    caplog.set_level(logging.WARNING)
    assert main(["aggregate", "--input", str(path), "--db", url]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(str(path) in w for w in warnings)
    assert "rejected 1 of 5 row(s): missing_ts" in warnings[0]
    assert "rejected 2 of 5 row(s): invalid_value" in warnings[1]
    assert "rejected: 1 missing_ts, 2 invalid_value;" in capsys.readouterr().out
    table = _table(url)
    assert table[[VALUE, COUNT]].iloc[0].tolist() == [2.0, 2]


def test_input_columns_match_case_insensitively(tmp_path, url):
    raw = _raw([("2024-01-01 00:01", "d", "s", 1.0)]).rename(columns=str.lower)
    raw["site"] = "extra"
    write_table(raw, tmp_path / "lower.csv")
    assert main(["aggregate", "--input", str(tmp_path / "lower.csv"), "--db", url]) == 0
    assert len(_table(url)) == 1


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("r.json", "{}", "'.json'"),
        ("empty.csv", "", "empty.csv: the file is empty"),
        ("head.csv", "TS,Device,Sensor,Value\n", "head.csv: the file has no readings"),
        ("cols.csv", "TS,Device\n2024-01-01,d\n", "missing column(s) Sensor, Value"),
        ("bad.csv", "TS,Device,Sensor,Value\nx,d,s,y\n", "bad.csv: no valid readings"),
    ],
)
def test_bad_inputs_exit_2_naming_the_file(tmp_path, url, capsys, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["aggregate", "--input", str(path), "--db", url]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("bad_url", "expected", "secret"),
    [
        ("nosuchdb://user:hunter2@host/db", "unknown database kind 'nosuchdb'", "hunter2"),
        ("this is not a url", "not a database URL", None),
        ("sqlite:///{tmp}/no/such/folder/s.db", "does not exist", None),
        (
            "postgresql://bob:hunter2@localhost:1/db",
            "postgresql://bob:***@localhost:1/db",
            "hunter2",
        ),
    ],
)
def test_unusable_database_urls_exit_2_without_leaking_passwords(
    tmp_path, capsys, bad_url, expected, secret
):
    write_table(BOUNDARY, tmp_path / "raw.csv")
    url = bad_url.replace("{tmp}", str(tmp_path))
    assert main(["aggregate", "--input", str(tmp_path / "raw.csv"), "--db", url]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    if secret:
        assert secret not in err


@pytest.mark.parametrize(
    ("failure", "where"),
    [
        ("create_engine", "libodbc.so.2: cannot open shared object file"),
        ("connect", "[unixODBC][Driver Manager]Can't open lib 'ODBC Driver 18 for SQL Server'"),
    ],
)
def test_azure_sql_without_the_odbc_layers_names_what_to_install(monkeypatch, failure, where):
    """This machine may or may not have unixODBC and the driver: their absence is stubbed."""
    url = "mssql+pyodbc://u:pw@server.database.windows.net/db?driver=ODBC+Driver+18+for+SQL+Server"

    class Engine:
        def connect(self):
            raise RuntimeError(where)

        def dispose(self):
            pass

    def create_engine(*_, **__):
        if failure == "create_engine":
            raise ImportError(where)
        return Engine()

    monkeypatch.setattr(db.sa, "create_engine", create_engine)
    with pytest.raises(db.DatabaseError) as raised:
        db.open_database(url)
    message = str(raised.value)
    assert where in message and "needs unixODBC and Microsoft's ODBC Driver 18" in message
    assert db.ODBC_DRIVER_GUIDE in message and "pw" not in message


def test_redact_url_hides_passwords_even_when_the_url_does_not_parse():
    assert db.redact_url("mssql+pyodbc://u:pw@h/d") == "mssql+pyodbc://u:***@h/d"
    assert "pw" not in db.redact_url("weird://u:pw@[bad")


def test_azure_sql_urls_without_credentials_use_an_entra_token():
    uses = db._uses_entra_token
    make = sa.engine.make_url
    server = "mssql+pyodbc://@srv.database.windows.net/sensors?driver=ODBC+Driver+18+for+SQL+Server"
    assert uses(make(server))
    assert not uses(make(server + "&Authentication=ActiveDirectoryMsi"))
    assert not uses(make("mssql+pyodbc://user:pw@srv/db?driver=x"))
    assert not uses(make("sqlite:///x.db"))


def test_token_hook_sets_the_odbc_access_token_and_drops_windows_auth():
    class FakeCredential:
        scopes: list[str] = []

        def get_token(self, scope):
            self.scopes.append(scope)
            return type("Token", (), {"token": "abc"})()

    credential = FakeCredential()
    cargs = ["DRIVER={ODBC Driver 18};Server=srv;Trusted_Connection=Yes"]
    cparams: dict = {}
    db._token_hook(credential)(None, None, cargs, cparams)
    assert "Trusted_Connection" not in cargs[0]
    assert credential.scopes == ["https://database.windows.net/.default"]
    token = cparams["attrs_before"][1256]
    length = struct.unpack("<I", token[:4])[0]
    assert token[4:].decode("utf-16-le") == "abc" and length == 6


# --- files one after the other: every reading counts exactly once --------------------------


def _hourly(start: str, hours: int, device: str = "d1", value=lambda i: float(i)) -> pd.DataFrame:
    """A reading every minute in (start, start + hours], as hourly files cut them: the reading
    at the full hour is the file's last."""
    first = pd.Timestamp(start)
    times = [first + pd.Timedelta(minutes=i) for i in range(1, 60 * hours + 1)]
    return _raw([(t.isoformat(), device, "s1", value(i)) for i, t in enumerate(times)])


def _aggregate(tmp_path, url, frame: pd.DataFrame, name: str) -> None:
    write_table(frame, tmp_path / name)
    assert main(["aggregate", "--input", str(tmp_path / name), "--db", url]) == 0


def test_consecutive_files_give_what_the_same_readings_give_at_once(tmp_path):
    # a reading every minute from 00:00:00: the one at 01:00:00 opens the second file, yet
    # it belongs to the window (00:55, 01:00] whose other four readings came in the first
    readings = _raw(
        [
            ((pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=i)).isoformat(), "d", "s", i)
            for i in range(0, 121)
        ]
    )
    whole = f"sqlite:///{tmp_path / 'whole.db'}"
    split = f"sqlite:///{tmp_path / 'split.db'}"
    _aggregate(tmp_path, whole, readings, "all.csv")
    times = pd.to_datetime(readings["TS"])
    for hour, (lo, hi) in enumerate([("2023", "2024-01-01 01:00"), ("2024-01-01 01:00", "2025")]):
        part = readings[(times >= pd.Timestamp(lo)) & (times < pd.Timestamp(hi))]
        _aggregate(tmp_path, split, part, f"hour-{hour}.csv")
    expected, got = _table(whole), _table(split)
    pd.testing.assert_frame_equal(got, expected)
    boundary = got[got[TS] == pd.Timestamp("2024-01-01 01:00")]
    assert boundary[[COUNT, MIN_VALUE, MAX_VALUE]].iloc[0].tolist() == [5, 56.0, 60.0]


def test_the_same_file_twice_counts_once(tmp_path, url):
    readings = _hourly("2024-01-01", 2)
    _aggregate(tmp_path, url, readings, "a.csv")
    once = _table(url)
    _aggregate(tmp_path, url, readings, "a.csv")
    pd.testing.assert_frame_equal(_table(url), once)
    assert once[COUNT].sum() == 120


def test_overlapping_files_give_their_union(tmp_path, url):
    readings = _hourly("2024-01-01", 3)
    whole = f"sqlite:///{tmp_path / 'whole.db'}"
    _aggregate(tmp_path, whole, readings, "all.csv")
    _aggregate(tmp_path, url, readings.iloc[:130], "first.csv")  # 00:01 .. 02:10
    _aggregate(tmp_path, url, readings.iloc[52:], "second.csv")  # 00:53 .. 03:00: splits a window
    pd.testing.assert_frame_equal(_table(url), _table(whole))


def test_a_reading_given_again_with_another_value_replaces_it(tmp_path, url):
    _aggregate(tmp_path, url, _hourly("2024-01-01", 1, value=lambda i: 1.0), "a.csv")
    correction = _raw([("2024-01-01T00:05:00", "d1", "s1", 11.0)])
    _aggregate(tmp_path, url, correction, "fix.csv")
    first = _table(url).iloc[0]
    assert first[TS] == pd.Timestamp("2024-01-01 00:05")
    assert (first[COUNT], first[VALUE], first[MAX_VALUE]) == (5, 3.0, 11.0)


# --- readings no window can hold -----------------------------------------------------------


def test_readings_that_would_overflow_or_have_no_window_are_rejected_alone(
    tmp_path, url, capsys, caplog
):
    raw = _raw(
        [
            ("2024-01-01 00:01", "d", "s", 1e308),
            ("2024-01-01 00:02", "d", "s", 1e308),
            ("2024-01-01 00:03", "d", "s", 2.0),
            ("9999-12-31 23:59:00", "d", "s", 1.0),
            ("2024-01-01 00:04", "d", "s2", 4.0),
        ]
    )
    path = tmp_path / "extreme.csv"
    write_table(raw, path)
    caplog.set_level(logging.WARNING)
    assert main(["aggregate", "--input", str(path), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "5 row(s), 2 aggregated" in out
    assert "rejected: 2 value_out_of_range, 1 ts_out_of_range;" in out
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "rejected 2 of 5 row(s): value_out_of_range (|Value| above 1e+150)" in warnings
    table = _table(url)
    assert table[[SENSOR, VALUE, COUNT]].values.tolist() == [["s", 2.0, 1], ["s2", 4.0, 1]]
    assert np.isfinite(table[[VALUE, MIN_VALUE, MAX_VALUE]].to_numpy()).all()


def test_repeated_rows_of_one_file_count_once_and_are_reported(tmp_path, url, capsys):
    raw = _raw([("2024-01-01 00:01", "d", "s", 1.0), ("2024-01-01 00:01", "d", "s", 3.0)])
    _aggregate(tmp_path, url, raw, "twice.csv")
    assert "rejected: 1 repeated_reading;" in capsys.readouterr().out
    assert _table(url)[[VALUE, COUNT]].iloc[0].tolist() == [3.0, 1]  # the last one counts


def test_the_tables_and_statements_render_for_azure_sql():
    statements = []
    engine = sa.create_mock_engine(
        "mssql+pyodbc://", lambda sql, *a, **k: statements.append(str(sql.compile(engine)))
    )
    db.metadata.create_all(engine, checkfirst=False)
    ddl = "\n".join(statements)
    assert "CREATE TABLE [SensorReadingsRaw]" in ddl and "[TS] DATETIME2 NOT NULL" in ddl
    assert "PRIMARY KEY ([Device], [Sensor], [TS])" in ddl
    delete = db._delete_by_key(db.raw_readings).compile(dialect=engine.dialect)
    assert str(delete).startswith("DELETE FROM [SensorReadingsRaw] WHERE")
