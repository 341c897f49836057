# ClickHouse cluster on EC2: shards x replicas, coordinated by ClickHouse Keeper on the same nodes.
data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"]
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

locals {
  clickhouse_nodes = var.clickhouse_shards * var.clickhouse_replicas
}

resource "random_password" "clickhouse" {
  length  = 32
  special = false
}

resource "random_password" "clickhouse_readonly" {
  length  = 32
  special = false
}

resource "aws_instance" "clickhouse" {
  # checkov:skip=CKV2_AWS_41: the nodes call no AWS API (ClickHouse and Keeper only); an instance profile would grant rights nothing uses
  count                  = local.clickhouse_nodes
  ebs_optimized          = true
  monitoring             = true
  ami                    = data.aws_ami.debian.id
  instance_type          = var.clickhouse_instance_type
  subnet_id              = aws_subnet.private[count.index % length(aws_subnet.private)].id
  vpc_security_group_ids = [aws_security_group.internal.id]
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }
  root_block_device {
    volume_size = 200
    volume_type = "gp3"
    encrypted   = true
  }
  user_data = templatefile("${path.module}/clickhouse-node.sh.tftpl", {
    version  = var.clickhouse_version
    shard    = floor(count.index / var.clickhouse_replicas) + 1
    replica  = count.index % var.clickhouse_replicas + 1
    password = random_password.clickhouse.result
  })
  tags = { Name = "${var.name}-clickhouse-${count.index}" }
}

resource "aws_lb" "clickhouse" {
  # checkov:skip=CKV_AWS_91: a network load balancer logs only TLS listeners; this one forwards TCP 8123 and ClickHouse's system.query_log records every query
  name                             = "${var.name}-clickhouse"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = aws_subnet.private[*].id
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = true
}

resource "aws_lb_target_group" "clickhouse" {
  name     = "${var.name}-clickhouse"
  port     = 8123
  protocol = "TCP"
  vpc_id   = aws_vpc.main.id
  health_check {
    protocol = "HTTP"
    path     = "/ping"
  }
}

resource "aws_lb_target_group_attachment" "clickhouse" {
  count            = local.clickhouse_nodes
  target_group_arn = aws_lb_target_group.clickhouse.arn
  target_id        = aws_instance.clickhouse[count.index].id
}

resource "aws_lb_listener" "clickhouse" {
  load_balancer_arn = aws_lb.clickhouse.arn
  port              = 8123
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.clickhouse.arn
  }
}
