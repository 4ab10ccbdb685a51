"""The sandbox's Athena runs statements on DuckDB and its EMR checks steps: without Airflow."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

pytest.importorskip("duckdb")
moto = pytest.importorskip("moto")

from mwaa_elt.run import emulation  # noqa: E402

REGION = "eu-west-1"
LAKE = "lake"
RESULTS = "s3://lake/athena-results/"

MOVIES = (
    "movieId,title,genres\n"
    '1,"Matrix, The (1999)",Action|Sci-Fi\n'
    "2,Toy Story (1995),Animation|Comedy\n"
    "3,Blade Runner (1982),Sci-Fi|Thriller\n"
)
RATINGS = "userId,movieId,rating\n1,1,5.0\n2,1,4.0\n1,3,4.5\n2,2,3.0\nnot-a-number,3,x\n"


class Athena:
    """A boto3 Athena client in moto with helpers to run a statement to its end."""

    def __init__(self) -> None:
        self.client = boto3.client("athena", region_name=REGION)

    def run(self, sql: str, database: str = "default") -> dict[str, Any]:
        execution_id = self.client.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": database},
            ResultConfiguration={"OutputLocation": RESULTS},
        )["QueryExecutionId"]
        return self.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]

    def ok(self, sql: str, database: str = "default") -> dict[str, Any]:
        execution = self.run(sql, database)
        assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
        return execution

    def rows(self, sql: str) -> list[list[str | None]]:
        execution = self.ok(sql)
        result = self.client.get_query_results(QueryExecutionId=execution["QueryExecutionId"])
        return [[c.get("VarCharValue") for c in r["Data"]] for r in result["ResultSet"]["Rows"]]

    def failure(self, sql: str) -> str:
        status = self.run(sql)["Status"]
        assert status["State"] == "FAILED", status
        return status["StateChangeReason"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws(), emulation.installed():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=LAKE, Key="landing/movies/movies.csv", Body=MOVIES.encode())
        s3.put_object(Bucket=LAKE, Key="landing/movies/_SUCCESS", Body=b"")
        s3.put_object(Bucket=LAKE, Key="landing/ratings/ratings.csv", Body=RATINGS.encode())
        yield


@pytest.fixture
def athena(aws: None) -> Athena:
    athena = Athena()
    athena.ok("CREATE DATABASE IF NOT EXISTS raw")
    athena.ok("CREATE DATABASE analytics")
    athena.ok(
        "CREATE EXTERNAL TABLE IF NOT EXISTS raw.movies (movieid INT, title STRING, genres STRING)\n"
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'\n"
        "WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '\"')\n"
        "STORED AS TEXTFILE LOCATION 's3://lake/landing/movies/'\n"
        "TBLPROPERTIES ('skip.header.line.count' = '1')"
    )
    athena.ok(
        "CREATE EXTERNAL TABLE raw.ratings (userid INT, movieid INT, rating DOUBLE)\n"
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ','\n"
        "STORED AS TEXTFILE LOCATION 's3://lake/landing/ratings/'\n"
        "TBLPROPERTIES ('skip.header.line.count' = '1')"
    )
    return athena


def _objects(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=LAKE, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=LAKE, Key=o["Key"])["Body"].read() for o in listed}


def test_a_select_reads_the_csv_files_of_an_external_table_as_its_serde_would(
    athena: Athena,
) -> None:
    rows = athena.rows("SELECT movieid, title FROM raw.movies ORDER BY movieid")
    # The header row of the result, then the rows: the quoted comma survives, the header is skipped.
    assert rows == [
        ["movieid", "title"],
        ["1", "Matrix, The (1999)"],
        ["2", "Toy Story (1995)"],
        ["3", "Blade Runner (1982)"],
    ]


def test_a_value_a_column_type_cannot_hold_reads_as_null_as_in_athena(athena: Athena) -> None:
    assert athena.rows("SELECT count(*), count(userid), count(rating) FROM raw.ratings") == [
        ["_col0", "_col1", "_col2"],
        ["5", "4", "4"],
    ]


def test_a_check_query_answers_true_or_false(athena: Athena) -> None:
    assert athena.rows("SELECT count(*) >= 1 FROM raw.movies")[1] == ["true"]
    assert athena.rows("SELECT count(*) = 0 FROM raw.movies")[1] == ["false"]


def test_ctas_writes_parquet_files_and_a_glue_table_that_later_queries_read(
    athena: Athena,
) -> None:
    athena.ok(
        "CREATE TABLE analytics.scifi WITH (format = 'PARQUET', "
        "external_location = 's3://lake/dev/scifi/run1/') AS "
        "SELECT m.movieid, m.title, avg(r.rating) AS avg_rating FROM raw.movies AS m "
        "JOIN raw.ratings AS r ON r.movieid = m.movieid WHERE m.genres LIKE '%Sci-Fi%' "
        "GROUP BY m.movieid, m.title"
    )
    files = _objects("dev/scifi/run1/")
    assert len(files) == 1 and next(iter(files.values()))[:4] == b"PAR1"
    table = boto3.client("glue", region_name=REGION).get_table(
        DatabaseName="analytics", Name="scifi"
    )
    columns = table["Table"]["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        ("movieid", "int"),
        ("title", "string"),
        ("avg_rating", "double"),
    ]
    assert athena.rows("SELECT movieid, avg_rating FROM analytics.scifi ORDER BY movieid") == [
        ["movieid", "avg_rating"],
        ["1", "4.5"],
        ["3", "4.5"],
    ]
    assert emulation.JOURNAL.queries[-2].rows_written == 2


def test_ctas_into_a_folder_that_holds_files_fails_as_athena_does(athena: Athena) -> None:
    sql = (
        "CREATE TABLE analytics.t WITH (external_location = 's3://lake/landing/movies/') "
        "AS SELECT 1 AS one"
    )
    assert athena.failure(sql).startswith("HIVE_PATH_ALREADY_EXISTS: ")


def test_insert_into_appends_rows_in_the_tables_format(athena: Athena) -> None:
    athena.ok(
        "CREATE EXTERNAL TABLE analytics.runs (pipeline STRING, ds STRING, at TIMESTAMP) "
        "STORED AS PARQUET LOCATION 's3://lake/dev/runs/'"
    )
    athena.ok("INSERT INTO analytics.runs SELECT 'a', '2024-01-01', current_timestamp")
    athena.ok("INSERT INTO analytics.runs VALUES ('b', '2024-01-02', current_timestamp)")
    assert len(_objects("dev/runs/")) == 2
    assert athena.rows("SELECT pipeline, ds FROM analytics.runs ORDER BY ds")[1:] == [
        ["a", "2024-01-01"],
        ["b", "2024-01-02"],
    ]


def test_unload_writes_text_files_to_an_empty_folder_only(athena: Athena) -> None:
    sql = (
        "UNLOAD (SELECT movieid, title FROM raw.movies WHERE movieid < 3 ORDER BY movieid) "
        "TO 's3://lake/dev/export/' WITH (format = 'TEXTFILE', field_delimiter = '|', "
        "compression = 'GZIP')"
    )
    athena.ok(sql)
    (data,) = _objects("dev/export/").values()
    assert gzip.decompress(data).decode() == "1|Matrix, The (1999)\n2|Toy Story (1995)\n"
    assert athena.failure(sql).startswith("HIVE_PATH_ALREADY_EXISTS: UNLOAD destination")


def test_a_missing_table_fails_the_query_with_athenas_reason(athena: Athena) -> None:
    reason = athena.failure("INSERT INTO analytics.quality_runs SELECT 'x'")
    assert reason == (
        "TABLE_NOT_FOUND: line 1:13: Table 'awsdatacatalog.analytics.quality_runs' does not exist"
    )


def test_a_missing_database_fails_the_query(athena: Athena) -> None:
    assert athena.failure("SELECT * FROM nowhere.t").startswith(
        "SCHEMA_NOT_FOUND: line 1:15: Schema 'nowhere' does not exist"
    )


def test_a_missing_column_fails_with_the_engines_message(athena: Athena) -> None:
    reason = athena.failure("SELECT rating_avg FROM raw.ratings")
    assert reason.startswith("COLUMN_NOT_FOUND: ")
    assert "rating_avg" in reason


def test_a_type_error_fails_with_the_engines_message(athena: Athena) -> None:
    reason = athena.failure("SELECT avg(title) FROM raw.movies")
    assert reason.startswith("TYPE_MISMATCH: ")
    assert "avg" in reason


def test_a_syntax_error_fails_with_its_position(athena: Athena) -> None:
    assert athena.failure("SELEC 1").startswith("SYNTAX_ERROR: ")


def test_a_reason_reaches_the_hook_that_generated_dags_use(athena: Athena) -> None:
    execution = athena.run("SELECT nope FROM raw.movies")
    status = execution["Status"]
    assert status["State"] == "FAILED"
    assert status["AthenaError"]["ErrorMessage"] == status["StateChangeReason"]


def test_drop_table_keeps_the_files_and_a_second_drop_needs_if_exists(athena: Athena) -> None:
    athena.ok("DROP TABLE IF EXISTS raw.movies")
    athena.ok("DROP TABLE IF EXISTS raw.movies")
    assert athena.failure("DROP TABLE raw.movies").startswith("TABLE_NOT_FOUND")
    assert "landing/movies/movies.csv" in _objects("landing/movies/")


# -- EMR -----------------------------------------------------------------------------------------


HIVE = "SELECT * FROM ${source_db}.ratings WHERE ds = '${ds}' AND x = '${hiveconf:y}';"


@pytest.fixture
def emr(aws: None) -> Any:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=LAKE, Key="scripts/clean.hql", Body=HIVE.encode())
    s3.put_object(Bucket=LAKE, Key="scripts/rank.py", Body=b"print('ranked')\n")
    s3.put_object(Bucket=LAKE, Key="scripts/broken.py", Body=b"def main(:\n    pass\n")
    client = boto3.client("emr", region_name=REGION)
    cluster = client.run_job_flow(
        Name="c",
        ReleaseLabel="emr-7.5.0",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="r",
        ServiceRole="s",
    )["JobFlowId"]
    return client, cluster


def _step(emr: Any, *args: str) -> dict[str, Any]:
    client, cluster = emr
    step = {
        "Name": "s",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": list(args)},
    }
    (step_id,) = client.add_job_flow_steps(JobFlowId=cluster, Steps=[step])["StepIds"]
    return client.describe_step(ClusterId=cluster, StepId=step_id)["Step"]["Status"]


def test_a_hive_step_with_its_script_and_every_variable_completes(emr: Any) -> None:
    status = _step(
        emr,
        "hive-script",
        "--run-hive-script",
        "--args",
        "-f",
        "s3://lake/scripts/clean.hql",
        "-d",
        "ds=2024-01-01",
        "-d",
        "source_db=raw",
    )
    assert status["State"] == "COMPLETED"


def test_a_hive_step_missing_a_variable_fails_naming_it(emr: Any) -> None:
    status = _step(
        emr,
        "hive-script",
        "--run-hive-script",
        "--args",
        "-f",
        "s3://lake/scripts/clean.hql",
        "-d",
        "ds=2024-01-01",
    )
    assert status["State"] == "FAILED"
    assert "not passed with -d: source_db" in status["StateChangeReason"]["Message"]


def test_a_step_whose_script_is_not_in_s3_fails(emr: Any) -> None:
    status = _step(emr, "spark-submit", "--deploy-mode", "cluster", "s3://lake/scripts/gone.py")
    assert status["State"] == "FAILED"
    assert (
        status["StateChangeReason"]["Message"] == "script s3://lake/scripts/gone.py does not exist"
    )


def test_a_pyspark_script_must_compile(emr: Any) -> None:
    good = _step(emr, "spark-submit", "--conf", "a=b", "s3://lake/scripts/rank.py", "--ds", "x")
    assert good["State"] == "COMPLETED"
    bad = _step(emr, "spark-submit", "s3://lake/scripts/broken.py")
    assert bad["State"] == "FAILED"
    assert "broken.py, line 1: SyntaxError" in bad["StateChangeReason"]["Message"]


def test_overrides_are_removed_when_the_block_ends() -> None:
    from moto.athena.models import AthenaBackend

    original = AthenaBackend.start_query_execution
    with emulation.installed():
        assert AthenaBackend.start_query_execution is not original
    assert AthenaBackend.start_query_execution is original


def test_text_rows_are_hive_text() -> None:
    assert emulation._text_rows([(1, None, True)], ",") == b"1,\\N,true\n"
