variable "name" {
  description = "Prefix of every resource."
  type        = string
  default     = "billing"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "vpc_cidr" {
  type    = string
  default = "10.40.0.0/16"
}

variable "kafka_version" {
  description = "MSK Kafka version (KRaft-capable)."
  type        = string
  default     = "3.9.x"
}

variable "kafka_broker_count" {
  description = "Brokers (a multiple of the number of subnets/AZs)."
  type        = number
  default     = 3
}

variable "kafka_broker_instance_type" {
  type    = string
  default = "kafka.m7g.large"
}

variable "kafka_partitions" {
  description = "Partitions of the event topics (BILLING_KAFKA_PARTITIONS); bounds worker parallelism."
  type        = number
  default     = 12
}

variable "clickhouse_shards" {
  type    = number
  default = 1
}

variable "clickhouse_replicas" {
  type    = number
  default = 2
}

variable "clickhouse_instance_type" {
  type    = string
  default = "r7i.xlarge"
}

variable "clickhouse_version" {
  type    = string
  default = "25.8"
}

variable "worker_count" {
  description = "Faust worker tasks; they share the topic partitions."
  type        = number
  default     = 3
}

variable "api_count" {
  type    = number
  default = 2
}

variable "image" {
  description = "Container image of the pipeline (built from the repository's Dockerfile)."
  type        = string
}

variable "superset_image" {
  type    = string
  default = "apache/superset:6.1.0"
}
