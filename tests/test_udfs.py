"""Python UDFs: the shipped modules in <repo>/udfs, and CREATE / SHOW / DROP FUNCTION.

Every check goes through SQL on a real connection to a fresh warehouse.
"""

from __future__ import annotations

import math
import shutil
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lakesql

REPO_UDFS = Path(__file__).resolve().parents[1] / "udfs"
SHIPPED = {"haversine_km", "bearing_deg", "normalize_text", "slugify", "token_jaccard"}
EARTH_RADIUS_KM = 6371.0088

PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)


@pytest.fixture
def connect(tmp_path: Path) -> Iterator[Callable[..., lakesql.dbapi.Connection]]:
    """Open connections to tmp_path/'wh' (by default with the shipped UDFs); close them afterwards."""
    opened: list[Any] = []

    def open_(udfs: Path = REPO_UDFS, warehouse: Path | None = None) -> Any:
        con = lakesql.connect(str(warehouse or tmp_path / "wh"), udfs=str(udfs))
        opened.append(con)
        return con

    yield open_
    for con in opened:
        if con.session is not None:
            con.close()


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One shared connection with the shipped UDFs, for the read-only tests."""
    shared = lakesql.connect(str(tmp_path_factory.mktemp("shared") / "wh"), udfs=str(REPO_UDFS))
    yield shared
    shared.close()


def one(con: Any, sql: str, params: Any = None) -> Any:
    rows = con.execute(sql, params).fetchall()
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def functions(con: Any) -> dict[str, dict[str, Any]]:
    cur = con.execute("SHOW FUNCTIONS")
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def reference_haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


# -- the shipped UDF folder -------------------------------------------------------------------------


def test_shipped_udfs_are_listed_with_their_docstrings(con: Any) -> None:
    listed = functions(con)
    assert SHIPPED <= listed.keys()
    for name in SHIPPED:
        assert listed[name]["kind"] == "module"
        assert listed[name]["description"], f"{name} has no docstring line"
    assert listed["haversine_km"]["params"] == "DOUBLE, DOUBLE, DOUBLE, DOUBLE"
    assert listed["haversine_km"]["returns"] == "DOUBLE"
    assert listed["normalize_text"]["returns"] == "VARCHAR"


def test_default_udf_folder_is_udfs_under_the_current_directory(
    connect: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKESQL_UDFS", raising=False)
    monkeypatch.chdir(REPO_UDFS.parent)
    con = lakesql.connect(str(tmp_path / "wh"))
    try:
        assert SHIPPED <= functions(con).keys()
        assert one(con, "SELECT round(haversine_km(0, 0, 0, 1), 3)") == pytest.approx(
            111.195, abs=1e-3
        )
    finally:
        con.close()


# -- geo ------------------------------------------------------------------------------------------


def test_haversine_paris_london(con: Any) -> None:
    km = one(con, "SELECT haversine_km(?, ?, ?, ?)", [*PARIS, *LONDON])
    assert km == pytest.approx(343.5, abs=0.5)
    back = one(con, "SELECT haversine_km(?, ?, ?, ?)", [*LONDON, *PARIS])
    assert back == pytest.approx(km, rel=1e-12)


@pytest.mark.parametrize(
    ("points", "expected_km"),
    [
        ((0, 0, 0, 0), 0.0),
        ((45.5, -73.6, 45.5, -73.6), 0.0),
        ((0, 0, 0, 1), 2 * math.pi * EARTH_RADIUS_KM / 360),  # one degree along the equator
        ((0, 0, 90, 0), math.pi * EARTH_RADIUS_KM / 2),  # equator to pole
        ((90, 0, -90, 0), math.pi * EARTH_RADIUS_KM),  # pole to pole
        ((0, 0, 0, 180), math.pi * EARTH_RADIUS_KM),  # antipodes on the equator
        ((0, 179.5, 0, -179.5), 2 * math.pi * EARTH_RADIUS_KM / 360),  # across the antimeridian
        ((-33.8688, 151.2093, -37.8136, 144.9631), 713.4),  # Sydney - Melbourne
    ],
)
def test_haversine_known_distances(con: Any, points: tuple[float, ...], expected_km: float) -> None:
    km = one(con, "SELECT haversine_km(?, ?, ?, ?)", list(points))
    assert km == pytest.approx(expected_km, abs=1.0 if expected_km > 500 else 1e-6)


def test_haversine_is_within_half_a_percent_of_the_ellipsoid(con: Any) -> None:
    # JFK - LAX is 3983 km on the WGS 84 ellipsoid; the sphere is documented to be within 0.5 %
    km = one(con, "SELECT haversine_km(40.6413, -73.7781, 33.9416, -118.4085)")
    assert km == pytest.approx(3983.0, rel=0.005)
    assert km == pytest.approx(
        reference_haversine(40.6413, -73.7781, 33.9416, -118.4085), rel=1e-12
    )


def test_haversine_accepts_integer_and_decimal_columns(con: Any) -> None:
    km = one(con, "SELECT haversine_km(0::INTEGER, 0::BIGINT, 0::DECIMAL(9, 6), 1::SMALLINT)")
    assert km == pytest.approx(111.195, abs=1e-3)


def test_haversine_over_many_batches_matches_a_scalar_reference(con: Any) -> None:
    # 5000 rows: DuckDB calls the function in several ~2048-row batches
    rows = con.execute(
        """
        SELECT i, haversine_km(lat1, lon1, lat2, lon2), lat1, lon1, lat2, lon2
        FROM (
            SELECT i,
                   (i * 37 % 180) - 89.5 AS lat1, (i * 53 % 360) - 179.5 AS lon1,
                   (i * 71 % 180) - 89.5 AS lat2, (i * 97 % 360) - 179.5 AS lon2
            FROM range(5000) t(i)
        )
        ORDER BY i
        """
    ).fetchall()
    assert len(rows) == 5000
    for _, km, *coords in rows:
        assert km == pytest.approx(reference_haversine(*coords), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("position", range(4))
def test_haversine_null_in_any_argument_gives_null(con: Any, position: int) -> None:
    args = ["48.8566", "2.3522", "51.5074", "-0.1278"]
    args[position] = "CASE WHEN i % 2 = 0 THEN NULL ELSE " + args[position] + " END"
    rows = con.execute(
        f"SELECT i, haversine_km({', '.join(args)}), bearing_deg({', '.join(args)}) "
        "FROM range(6) t(i) ORDER BY i"
    ).fetchall()
    for i, km, deg in rows:
        if i % 2 == 0:
            assert km is None and deg is None
        else:
            assert km == pytest.approx(343.56, abs=0.01)
            assert deg == pytest.approx(330.0, abs=0.5)


def test_haversine_all_null(con: Any) -> None:
    assert one(con, "SELECT haversine_km(NULL, NULL, NULL, NULL)") is None


def test_bearing_paris_london(con: Any) -> None:
    assert one(con, "SELECT bearing_deg(?, ?, ?, ?)", [*PARIS, *LONDON]) == pytest.approx(
        330.0, abs=0.5
    )
    assert one(con, "SELECT bearing_deg(?, ?, ?, ?)", [*LONDON, *PARIS]) == pytest.approx(
        148.1, abs=0.5
    )


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ((0, 0, 1, 0), 0.0),  # north
        ((0, 0, 0, 1), 90.0),  # east
        ((1, 0, 0, 0), 180.0),  # south
        ((0, 1, 0, 0), 270.0),  # west
        ((0, 0, 1, 1), 45.0),  # north-east, near the equator
        ((0, 179.5, 0, -179.5), 90.0),  # east across the antimeridian
    ],
)
def test_bearing_compass_points(con: Any, points: tuple[float, ...], expected: float) -> None:
    assert one(con, "SELECT bearing_deg(?, ?, ?, ?)", list(points)) == pytest.approx(
        expected, abs=0.01
    )


def test_bearing_is_always_in_0_360(con: Any) -> None:
    low, high = con.execute(
        """
        SELECT min(b), max(b) FROM (
            SELECT bearing_deg((i % 179) - 89, (i * 7 % 359) - 179, (i * 3 % 179) - 89, (i * 11 % 359) - 179) AS b
            FROM range(3000) t(i)
        )
        """
    ).fetchone()
    assert 0.0 <= low and high < 360.0


# -- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Crème\u00a0 BRÛLÉE\n\t", "creme brulee"),
        ("Straße", "strasse"),  # casefold, not just lower
        ("\ufb01nance", "finance"),  # NFKC: the 'fi' ligature
        (
            "\uff21\uff22\uff23\u3000\uff11\uff12\uff13",
            "abc 123",
        ),  # NFKC: full-width letters, digits and space
        ("Łódź  Ørsted", "lodz orsted"),  # letters with a stroke have no decomposition
        ("Ἀθῆναι", "αθηναι"),  # Greek accents and breathings
        ("Zoë\u2028Saldaña", "zoe saldana"),  # line separator is whitespace
        ("e\u0301", "e"),  # decomposed accent
        ("हिन्दी", "हिन्दी"),  # marks of other scripts are letters' parts: kept
        ("already normal", "already normal"),
        ("   ", ""),
        ("", ""),
    ],
)
def test_normalize_text(con: Any, text: str, expected: str) -> None:
    assert one(con, "SELECT normalize_text(?)", [text]) == expected


def test_normalize_text_null_and_idempotence(con: Any) -> None:
    assert one(con, "SELECT normalize_text(NULL)") is None
    rows = con.execute(
        """
        SELECT s, normalize_text(s), normalize_text(normalize_text(s))
        FROM (VALUES ('  Crème BRÛLÉE '), (NULL), ('Straße'), ('plain'), (NULL), ('ÉCOLE\tNormale')) v(s)
        """
    ).fetchall()
    assert [r[1] for r in rows] == ["creme brulee", None, "strasse", "plain", None, "ecole normale"]
    assert all(r[1] == r[2] for r in rows)


def test_normalize_text_groups_spelling_variants(con: Any) -> None:
    rows = con.execute(
        """
        SELECT normalize_text(name) AS key, count(*) AS n
        FROM (VALUES ('José  García'), ('JOSE GARCIA'), ('jose\u0301 garci\u0301a'), (' josé garcía '),
                     ('Ana'), (NULL)) v(name)
        GROUP BY key ORDER BY n DESC, key
        """
    ).fetchall()
    assert rows == [("jose garcia", 4), ("ana", 1), (None, 1)]


def test_normalize_text_over_many_batches(con: Any) -> None:
    rows = con.execute(
        """
        SELECT i, normalize_text(CASE WHEN i % 5 = 0 THEN NULL ELSE ' Élan  ' || i || ' ' END)
        FROM range(5000) t(i) ORDER BY i
        """
    ).fetchall()
    for i, value in rows:
        assert value == (None if i % 5 == 0 else f"elan {i}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Héllo, Wörld!", "hello-world"),
        ("Don't Stop Me Now", "dont-stop-me-now"),
        ("  --Rock & Roll--  ", "rock-roll"),
        ("snake_case and CamelCase", "snake-case-and-camelcase"),
        ("Crème brûlée: 3.5 €", "creme-brulee-3-5"),
        ("東京 タワー", "東京-タワー"),  # letters of any script are kept
        ("!!!", ""),
        ("", ""),
    ],
)
def test_slugify(con: Any, text: str, expected: str) -> None:
    assert one(con, "SELECT slugify(?)", [text]) == expected


def test_slugify_null(con: Any) -> None:
    assert con.execute("SELECT slugify(s) FROM (VALUES (NULL), ('A b')) v(s)").fetchall() == [
        (None,),
        ("a-b",),
    ]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("Smith, John", "john SMITH", 1.0),  # order, case and punctuation ignored
        ("a b c", "a b d", 0.5),  # 2 shared of 4 distinct words
        ("the the cat", "cat the", 1.0),  # sets: repeats count once
        ("Crème brûlée", "creme brulee recipe", 2 / 3),
        ("apple", "orange", 0.0),
        ("x", "", 0.0),
        ("", "", 1.0),  # two texts without words are alike
    ],
)
def test_token_jaccard(con: Any, a: str, b: str, expected: float) -> None:
    assert one(con, "SELECT token_jaccard(?, ?)", [a, b]) == pytest.approx(expected)


def test_token_jaccard_nulls_and_batches(con: Any) -> None:
    rows = con.execute(
        """
        SELECT i, token_jaccard(CASE WHEN i % 3 = 0 THEN NULL ELSE 'w' || i || ' common' END,
                                CASE WHEN i % 7 = 0 THEN NULL ELSE 'common W' || (i % 2) END)
        FROM range(4500) t(i) ORDER BY i
        """
    ).fetchall()
    for i, value in rows:
        if i % 3 == 0 or i % 7 == 0:
            assert value is None
        elif i in (0, 1):
            assert value == 1.0
        else:
            assert value == pytest.approx(1 / 3)


def test_shipped_udfs_do_not_shadow_duckdb_builtins() -> None:
    import duckdb

    with duckdb.connect() as plain:
        builtins = {
            r[0] for r in plain.execute("SELECT function_name FROM duckdb_functions()").fetchall()
        }
    assert "levenshtein" in builtins and "jaro_winkler_similarity" in builtins
    assert not SHIPPED & builtins


# -- a UDF's results stored by CREATE TABLE AS ------------------------------------------------------


def test_udf_in_create_table_as(connect: Callable[..., Any], tmp_path: Path) -> None:
    con = connect()
    con.execute(
        """
        CREATE TABLE cities AS SELECT * FROM (VALUES
            ('Paris', 48.8566, 2.3522), ('London', 51.5074, -0.1278),
            ('Berlin', 52.52, 13.405), ('Atlantis', NULL, NULL)) v(name, lat, lon)
        """
    )
    con.execute(
        """
        CREATE TABLE legs AS
        SELECT a.name AS src, b.name AS dst,
               haversine_km(a.lat, a.lon, b.lat, b.lon) AS km,
               slugify(a.name || ' to ' || b.name) AS slug
        FROM cities a JOIN cities b ON a.name < b.name
        """
    )
    con.close()

    # A session without any UDF reads the stored values back from the Delta table.
    empty = tmp_path / "no_udfs"
    empty.mkdir()
    plain = connect(udfs=empty)
    assert not SHIPPED & functions(plain).keys()
    assert plain.execute("DESCRIBE legs").fetchall()[2][:2] == ("km", "DOUBLE")
    rows = {(r[0], r[1]): (r[2], r[3]) for r in plain.execute("SELECT * FROM legs").fetchall()}
    assert len(rows) == 6
    assert rows[("London", "Paris")][0] == pytest.approx(343.5, abs=0.5)
    assert rows[("Berlin", "Paris")][0] == pytest.approx(878.0, abs=1.0)
    assert rows[("Berlin", "London")][0] == pytest.approx(931.0, abs=1.0)
    assert rows[("Atlantis", "Paris")] == (None, "atlantis-to-paris")
    assert rows[("London", "Paris")][1] == "london-to-paris"


# -- CREATE / SHOW / DROP FUNCTION ------------------------------------------------------------------

PLUS_ONE = '''
import pyarrow as pa
import pyarrow.compute as pc


def plus_one(x):
    """Adds one; NULL stays NULL."""
    return pc.add(x, 1)


def times_ten(x):
    """Multiplies by ten."""
    return pc.multiply(x, 10)


def null_count(x):
    """1 where x is NULL, else 0: shows that NULLs reach the function."""
    return pc.cast(pc.is_null(x), pa.int64())


NOT_A_FUNCTION = 42
'''


@pytest.fixture
def udf_dir(tmp_path: Path) -> tuple[Path, str]:
    """A UDF folder holding one module, with a name unique to the test (modules are cached by name)."""
    folder = tmp_path / "my_udfs"
    folder.mkdir()
    module = f"mathmod_{uuid.uuid4().hex[:10]}"
    (folder / f"{module}.py").write_text(textwrap.dedent(PLUS_ONE))
    return folder, module


@pytest.fixture
def site_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package `<name>.ops` (the functions above) importable from sys.path, not from a UDF folder."""
    package = f"pkg_{uuid.uuid4().hex[:10]}"
    (tmp_path / "site" / package).mkdir(parents=True)
    (tmp_path / "site" / package / "__init__.py").write_text("")
    ops = "import lakesql\n" + textwrap.dedent(PLUS_ONE).replace(
        "def times_ten", '@lakesql.udf(returns="BIGINT", params=["BIGINT"])\ndef times_ten'
    )
    (tmp_path / "site" / package / "ops.py").write_text(ops)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package


def test_create_function_and_call_it(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, module = udf_dir
    con = connect(udfs=folder)
    cur = con.execute(
        f"CREATE FUNCTION plus_one(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:plus_one'"
    )
    assert cur.rowcount in (-1, 0)
    rows = con.execute("SELECT i, plus_one(i) FROM range(3000) t(i) ORDER BY i").fetchall()
    assert all(out == i + 1 for i, out in rows)
    assert one(con, "SELECT plus_one(NULL)") is None

    con.execute(
        f"CREATE FUNCTION nulls(x DOUBLE) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:null_count'"
    )
    assert (
        one(con, "SELECT sum(nulls(CASE WHEN i % 4 = 0 THEN NULL ELSE i END)) FROM range(100) t(i)")
        == 25
    )


def test_create_function_is_persisted_in_the_warehouse(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, module = udf_dir
    first = connect(udfs=folder)
    first.execute(
        f"CREATE FUNCTION plus_one(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:plus_one'"
    )
    second = connect(udfs=folder)
    assert one(second, "SELECT plus_one(41)") == 42
    listed = functions(second)["plus_one"]
    assert listed["kind"] == "catalog"
    assert listed["origin"] == f"{module}:plus_one"
    assert listed["params"] == "BIGINT"
    assert listed["returns"] == "BIGINT"


def test_show_functions_distinguishes_folder_and_catalog_functions(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, module = udf_dir
    for shipped in REPO_UDFS.glob("*.py"):  # the shipped folder plus one module
        shutil.copy(shipped, folder)
    con = connect(udfs=folder)
    con.execute(
        f"CREATE FUNCTION inc(x DOUBLE) RETURNS DOUBLE LANGUAGE PYTHON AS '{module}:times_ten'"
    )
    assert one(con, "SELECT inc(-2.5)") == -25.0
    listed = functions(con)
    assert listed["inc"]["kind"] == "catalog"
    assert listed["inc"]["origin"] == f"{module}:times_ten"
    assert listed["haversine_km"]["kind"] == "module"
    assert list(listed) == sorted(listed)


def test_create_function_twice_and_or_replace(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, module = udf_dir
    con = connect(udfs=folder)
    sql = "CREATE {} FUNCTION f(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{}'"
    con.execute(sql.format("", f"{module}:plus_one"))
    with pytest.raises(lakesql.ObjectExistsError, match="already exists"):
        con.execute(sql.format("", f"{module}:times_ten"))
    assert one(con, "SELECT f(5)") == 6
    con.execute(sql.format("OR REPLACE", f"{module}:times_ten"))
    assert one(con, "SELECT f(5)") == 50
    assert one(connect(udfs=folder), "SELECT f(5)") == 50  # the replacement is what is persisted
    assert functions(con)["f"]["origin"] == f"{module}:times_ten"


def test_create_function_refuses_a_module_on_sys_path(
    connect: Callable[..., Any], tmp_path: Path, site_package: str
) -> None:
    """Functions come from the UDF folder only (issue 15): a module on sys.path, even with marked
    functions, is refused before it is imported."""
    empty = tmp_path / "none"
    empty.mkdir()
    con = connect(udfs=empty)
    for target in (f"{site_package}.ops:times_ten", f"{site_package}:ops"):
        with pytest.raises(lakesql.ProgrammingError, match=r"invalid function target|UDF folder"):
            con.execute(
                f"CREATE FUNCTION tens(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{target}'"
            )
    assert site_package not in sys.modules
    assert f"{site_package}.ops" not in sys.modules
    assert "tens" not in functions(con)


def test_drop_function(connect: Callable[..., Any], udf_dir: tuple[Path, str]) -> None:
    folder, module = udf_dir
    con = connect(udfs=folder)
    con.execute(
        f"CREATE FUNCTION plus_one(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:plus_one'"
    )
    con.execute("DROP FUNCTION plus_one")
    assert "plus_one" not in functions(con)
    with pytest.raises(lakesql.Error):
        con.execute("SELECT plus_one(1)")
    with pytest.raises(lakesql.UnknownObjectError, match="plus_one"):
        con.execute("DROP FUNCTION plus_one")
    con.execute("DROP FUNCTION IF EXISTS plus_one")
    con.execute("DROP FUNCTION IF EXISTS never_existed")

    later = connect(udfs=folder)
    assert "plus_one" not in functions(later)
    with pytest.raises(lakesql.Error):
        later.execute("SELECT plus_one(1)")


def test_drop_function_seen_by_another_open_session_is_gone_for_new_ones(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, module = udf_dir
    a = connect(udfs=folder)
    a.execute(
        f"CREATE FUNCTION plus_one(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:plus_one'"
    )
    b = connect(udfs=folder)
    b.execute("DROP FUNCTION plus_one")
    with pytest.raises(lakesql.UnknownObjectError):
        a.execute("DROP FUNCTION plus_one")  # the catalog entry is gone
    assert "plus_one" not in functions(connect(udfs=folder))


def test_a_folder_udf_cannot_be_dropped_with_sql(con: Any) -> None:
    with pytest.raises(lakesql.ProgrammingError, match="UDF folder"):
        con.execute("DROP FUNCTION haversine_km")
    assert "haversine_km" in functions(con)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nocolon", r"invalid function target 'nocolon'"),
        ("{module}:", r"invalid function target"),
        (":plus_one", r"invalid function target"),
        ("missing_module_7f3a:f", r"cannot import module 'missing_module_7f3a'"),
        ("{module}:missing_fn", r"has no function 'missing_fn'"),
        ("{module}:NOT_A_FUNCTION", r"is not callable"),
    ],
)
def test_bad_targets_raise_and_leave_nothing_behind(
    connect: Callable[..., Any], udf_dir: tuple[Path, str], target: str, message: str
) -> None:
    folder, module = udf_dir
    con = connect(udfs=folder)
    target = target.format(module=module)
    with pytest.raises(lakesql.ProgrammingError, match=message):
        con.execute(f"CREATE FUNCTION bad(x DOUBLE) RETURNS DOUBLE LANGUAGE PYTHON AS '{target}'")
    assert "bad" not in functions(con)
    with pytest.raises(lakesql.Error):
        con.execute("SELECT bad(1.0)")
    assert "bad" not in functions(connect(udfs=folder))  # nothing persisted
    # the name is still free
    con.execute(
        f"CREATE FUNCTION bad(x DOUBLE) RETURNS DOUBLE LANGUAGE PYTHON AS '{module}:plus_one'"
    )
    assert one(con, "SELECT bad(1.5)") == 2.5


def test_bad_target_does_not_replace_an_existing_function(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, module = udf_dir
    con = connect(udfs=folder)
    con.execute(
        f"CREATE FUNCTION f(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:plus_one'"
    )
    with pytest.raises(lakesql.ProgrammingError):
        con.execute(
            f"CREATE OR REPLACE FUNCTION f(x BIGINT) RETURNS BIGINT LANGUAGE PYTHON AS '{module}:nope'"
        )
    assert one(con, "SELECT f(1)") == 2
    assert one(connect(udfs=folder), "SELECT f(1)") == 2


def test_folder_module_that_fails_to_import_is_a_clear_error(
    connect: Callable[..., Any], udf_dir: tuple[Path, str]
) -> None:
    folder, _ = udf_dir
    con = connect(udfs=folder)
    broken = f"broken_{uuid.uuid4().hex[:10]}"
    (folder / f"{broken}.py").write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(lakesql.ProgrammingError, match="boom at import"):
        con.execute(f"CREATE FUNCTION g(x DOUBLE) RETURNS DOUBLE LANGUAGE PYTHON AS '{broken}:f'")
    assert "g" not in functions(con)


def test_create_function_refuses_unmarked_code_outside_the_udf_folder(
    connect: Callable[..., Any], tmp_path: Path, site_package: str
) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    con = connect(udfs=empty)
    for target, why in (
        ("os:system", "standard-library"),
        ("subprocess:getoutput", "standard-library"),
        (f"{site_package}.ops:plus_one", "invalid function target"),
        (f"{site_package}:plus_one", "not a module of the UDF folder"),
    ):
        with pytest.raises(lakesql.ProgrammingError, match=why):
            con.execute(
                f"CREATE FUNCTION f(x VARCHAR) RETURNS BIGINT LANGUAGE PYTHON AS '{target}'"
            )
    assert site_package not in sys.modules
    assert "f" not in functions(con)
