"""Kafka adapter: client configuration (:mod:`config`), topic administration (:mod:`topics`) and
consumer-group lag (:mod:`lag`), for the local broker and real clusters alike.
Does not own: running a broker (that is :mod:`billing.platform.kafka_broker`)."""
