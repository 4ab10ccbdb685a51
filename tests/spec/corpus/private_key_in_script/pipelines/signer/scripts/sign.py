"""Sign the export."""

KEY = """
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8Zx8yMfTbK5J3aBcDeFgHiJkL
-----END RSA PRIVATE KEY-----
"""

from pyspark.sql import SparkSession


def main() -> None:
    spark = SparkSession.builder.appName("count").getOrCreate()
    spark.range(10).count()


if __name__ == "__main__":
    main()
