# Multi-broker Kafka (Amazon MSK) spread over three availability zones.
resource "aws_msk_configuration" "billing" {
  name           = "${var.name}-kafka"
  kafka_versions = [var.kafka_version]
  server_properties = <<-PROPS
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    log.retention.hours=168
    num.partitions=${var.kafka_partitions}
  PROPS
}

resource "aws_msk_cluster" "billing" {
  # checkov:skip=CKV_AWS_81: clients reach the brokers in plaintext (TLS_PLAINTEXT) until billing/kafka/config.py gets TLS settings; the traffic stays inside the private subnets' security group, between brokers it is TLS, and MSK encrypts at rest with the AWS-managed key
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.kafka_broker_count

  broker_node_group_info {
    instance_type   = var.kafka_broker_instance_type
    client_subnets  = aws_subnet.private[*].id
    security_groups = [aws_security_group.internal.id]
    storage_info {
      ebs_storage_info {
        volume_size = 500
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.billing.name
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.billing.arn
    revision = aws_msk_configuration.billing.latest_revision
  }

  encryption_info {
    encryption_in_transit {
      client_broker = "TLS_PLAINTEXT"
      in_cluster    = true
    }
  }
}
