"""``require_output_folder`` / ``require_output_file``: an output path that cannot be written
is refused before any work, in one line naming the flag, the path and what is in the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.data import files
from scoring.data.files import require_output_file, require_output_folder
from scoring.errors import UsageError


@pytest.fixture
def blocker(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


def test_a_new_folder_under_existing_folders_is_fine(tmp_path):
    require_output_folder("--out", tmp_path / "new" / "deeper")
    require_output_file("--out", tmp_path / "new" / "x.parquet")
    assert list(tmp_path.iterdir()) == [], "checking creates nothing"


@pytest.mark.parametrize(
    ("check", "target", "message"),
    [
        (require_output_folder, "{f}", "--out {f}: exists and is not a folder"),
        (require_output_folder, "{f}/out", "--out {f}/out: {f} is a file, not a folder"),
        (require_output_file, "{f}/x.csv", "--out {f}/x.csv: {f} is a file, not a folder"),
        (require_output_file, "{d}", "--out {d}: is a folder; give a file name"),
    ],
)
def test_what_is_in_the_way_is_named(blocker, tmp_path, check, target, message):
    fill = {"f": blocker, "d": tmp_path}
    with pytest.raises(UsageError) as raised:
        check("--out", target.format(**fill))
    assert str(raised.value) == message.format(**fill)


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    # (root writes anywhere, so the permission itself is what is stubbed here)
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match=r"--out .*/new: cannot write in .* \(Permission denied"):
        require_output_folder("--out", tmp_path / "new")
    with pytest.raises(UsageError, match=r"--out .*: cannot write there \(Permission denied\)$"):
        require_output_folder("--out", tmp_path)


def test_the_callers_error_class_is_raised(blocker):
    class Refused(UsageError):
        pass

    with pytest.raises(Refused):
        require_output_folder("--out", blocker, Refused)


def test_identifiers_stored_as_numbers_are_read_as_their_text_never_through_floats(tmp_path):
    """An integer Device column with a missing value reaches pandas as floats: device 1 was
    looked up as '1.0'. Keys are converted from the values as stored."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scoring.data.files import read_table
    from scoring.data.schema import normalize_readings

    stored = pa.table(
        {
            "TS": pa.array([1, 2, 3], pa.timestamp("us")),
            "Device": pa.array([1, None, 30], pa.int64()),  # as another tool writes it
            "Sensor": pa.array([7.0, 7.0, 7.5]),
            "Value": pa.array([1.0, 2.0, np.nan]),
        }
    )
    pq.write_table(stored, tmp_path / "r.parquet")
    frame = normalize_readings(read_table(tmp_path / "r.parquet"), "r.parquet")
    assert frame["Device"].tolist()[::2] == ["1", "30"] and pd.isna(frame["Device"][1])
    assert frame["Sensor"].tolist() == ["7", "7", "7.5"]
    assert frame["Value"].dtype == "float64"


@pytest.mark.parametrize("numeric_device", [False, True])
def test_keys_read_as_categories_are_the_text_read_otherwise(tmp_path, numeric_device):
    """Training reads a Parquet file's keys as categoricals (Arrow dictionaries, one string
    per distinct key): row for row the same text, missing where missing, the index and the
    other columns as ever; a key stored as numbers too."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scoring.data.files import read_table

    devices = [1, None, 30, 1] if numeric_device else [" d1", None, "d2", " d1"]
    stored = pd.DataFrame(
        {
            "TS": pd.to_datetime([1, 2, 3, 4], unit="h"),
            "Device": pd.array(devices, dtype="Int64") if numeric_device else devices,
            "sensor": ["t", "p", "t", None],
            "Value": [1.0, 2.0, 3.0, 4.0],
        },
        index=[10, 11, 12, 13],
    )
    pq.write_table(pa.Table.from_pandas(stored), tmp_path / "r.parquet")
    plain = read_table(tmp_path / "r.parquet")
    coded = read_table(tmp_path / "r.parquet", keys_as_categories=True)
    for name in ("Device", "sensor"):
        assert isinstance(coded[name].dtype, pd.CategoricalDtype)
        assert not isinstance(plain[name].dtype, pd.CategoricalDtype)
        assert coded[name].isna().tolist() == plain[name].isna().tolist()
        assert coded[name].dropna().astype(str).tolist() == plain[name].dropna().tolist()
    assert coded.index.tolist() == plain.index.tolist()
    pd.testing.assert_frame_equal(coded[["TS", "Value"]], plain[["TS", "Value"]])


def test_memory_arrow_kept_after_a_table_is_let_go_goes_back_to_the_system():
    """In a fresh interpreter (this one's memory is the other tests'): 320 MB of Arrow arrays
    in many pieces, as a Parquet read makes them, let go, leave the process that much larger
    until release_unused_memory."""
    import subprocess
    import sys

    code = """
import numpy as np, pyarrow as pa
from scoring.data.files import release_unused_memory
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
parts = [pa.compute.add(pa.array(np.arange(20_000, dtype=np.float64)), i) for i in range(2000)]
del parts
before = rss(); release_unused_memory(); print(before - rss())
"""
    root = Path(__file__).resolve().parents[3]
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert int(shown.stdout) > 200_000  # KiB handed back
