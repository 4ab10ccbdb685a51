"""Count rows."""

from pyspark.sql import SparkSession


def main(:
    spark = SparkSession.builder.appName("count").getOrCreate()
    spark.range(10).count()


if __name__ == "__main__":
    main()
