output "kafka_bootstrap" {
  description = "Value for BILLING_KAFKA_BOOTSTRAP."
  value       = aws_msk_cluster.billing.bootstrap_brokers
}

output "clickhouse_url" {
  description = "Value for BILLING_CLICKHOUSE_URL."
  value       = "http://${aws_lb.clickhouse.dns_name}:8123"
}

output "setup_tasks" {
  description = "Run these once (aws ecs run-task) before the workers: create topics, migrate the schema."
  value       = { for k, v in aws_ecs_task_definition.setup : k => v.arn }
}
