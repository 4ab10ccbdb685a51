"""Rank films by average rating for one day of cleaned ratings; write Parquet to --output."""

import argparse

from pyspark.sql import SparkSession, functions as F


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ds", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    spark = SparkSession.builder.appName("top_rated").enableHiveSupport().getOrCreate()
    ratings = spark.table(f"{args.database}.ratings_clean").where(F.col("ds") == args.ds)
    top = (
        ratings.groupBy("movieid")
        .agg(F.avg("rating").alias("avg_rating"), F.count("*").alias("ratings"))
        .where(F.col("ratings") >= 10)  # a film with three ratings is not "top rated"
        .orderBy(F.desc("avg_rating"))
    )
    top.write.mode("overwrite").parquet(args.output)


if __name__ == "__main__":
    main()
