"""Usage metering, billing and billing analytics on Kafka, Faust and ClickHouse."""

__version__ = "0.1.0"
