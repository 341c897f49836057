# The pipeline's own processes on ECS Fargate: Faust workers (scale with worker_count up to the
# partition count), the ingest API behind a load balancer, one-shot topic/migration tasks, Superset.
locals {
  billing_env = [
    { name = "BILLING_KAFKA_BOOTSTRAP", value = aws_msk_cluster.billing.bootstrap_brokers },
    { name = "BILLING_KAFKA_REPLICATION", value = "3" },
    { name = "BILLING_KAFKA_PARTITIONS", value = tostring(var.kafka_partitions) },
    { name = "BILLING_CLICKHOUSE_URL", value = "http://${aws_lb.clickhouse.dns_name}:8123" },
    { name = "BILLING_CLICKHOUSE_USER", value = "billing" },
    { name = "BILLING_CLICKHOUSE_READONLY_USER", value = "dashboards" },
  ]
  billing_secrets = [
    { name = "BILLING_CLICKHOUSE_PASSWORD", valueFrom = aws_ssm_parameter.clickhouse_password.arn },
    { name = "BILLING_CLICKHOUSE_READONLY_PASSWORD", valueFrom = aws_ssm_parameter.clickhouse_readonly_password.arn },
  ]
  tasks = {
    worker = { command = ["worker"], count = var.worker_count, cpu = 1024, memory = 2048, port = 6066 }
    api    = { command = ["api", "--host", "0.0.0.0"], count = var.api_count, cpu = 512, memory = 1024, port = 8000 }
  }
}

resource "aws_ssm_parameter" "clickhouse_password" {
  # checkov:skip=CKV_AWS_337: SecureString under the AWS-managed aws/ssm key; only the ECS execution role reads it
  name  = "/${var.name}/clickhouse/password"
  type  = "SecureString"
  value = random_password.clickhouse.result
}

resource "aws_ssm_parameter" "clickhouse_readonly_password" {
  # checkov:skip=CKV_AWS_337: SecureString under the AWS-managed aws/ssm key; only the ECS execution role reads it
  name  = "/${var.name}/clickhouse/readonly-password"
  type  = "SecureString"
  value = random_password.clickhouse_readonly.result
}

resource "aws_ecs_cluster" "billing" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "billing" {
  # checkov:skip=CKV_AWS_158: CloudWatch encrypts log data at rest with its own key; a customer-managed key is a per-deployment choice
  name              = "/ecs/${var.name}"
  retention_in_days = 365
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "read_secrets" {
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["ssm:GetParameters"]
      Resource = [aws_ssm_parameter.clickhouse_password.arn, aws_ssm_parameter.clickhouse_readonly_password.arn]
    }]
  })
}

resource "aws_ecs_task_definition" "task" {
  # checkov:skip=CKV_AWS_336: the worker writes its RocksDB state under BILLING_STATE_DIR in the container's filesystem (rebuilt from the changelog topics after a restart)
  for_each                 = local.tasks
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name         = each.key
    image        = var.image
    command      = each.value.command
    environment  = local.billing_env
    secrets      = local.billing_secrets
    portMappings = [{ containerPort = each.value.port }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.billing.name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

resource "aws_ecs_service" "task" {
  for_each        = local.tasks
  name            = each.key
  cluster         = aws_ecs_cluster.billing.id
  task_definition = aws_ecs_task_definition.task[each.key].arn
  desired_count   = each.value.count
  launch_type     = "FARGATE"
  network_configuration {
    subnets         = aws_subnet.private[*].id
    security_groups = [aws_security_group.internal.id]
  }
}

resource "aws_ecs_task_definition" "setup" {
  for_each                 = { topics = ["topics", "create"], migrate = ["warehouse", "migrate"] }
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name        = each.key
    image       = var.image
    command     = each.value
    environment = local.billing_env
    secrets     = local.billing_secrets
  }])
}
