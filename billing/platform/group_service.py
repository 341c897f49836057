"""A consumer-group process as a local service: healthy once its client id is a member of its group."""

from __future__ import annotations

import sys
from abc import abstractmethod

from billing.kafka.groups import group_members
from billing.platform.process import ManagedProcess
from billing.platform.service import Service


class GroupConsumerService(Service):
    """`billing <command...> --name <member>` in the background; healthy while it runs and the broker lists
    ``member`` (its Kafka client id) in ``group``. Subclasses name the command, member and group."""

    command: tuple[str, ...]
    member: str

    @property
    @abstractmethod
    def consumer_group(self) -> str:
        """The consumer group the process joins."""

    @property
    def endpoint(self) -> str:
        return f"group {self.consumer_group}"

    def managed(self) -> ManagedProcess:
        settings = self.settings
        process = ManagedProcess(
            name=self.name,
            argv=[sys.executable, "-m", "billing", *self.command, "--name", self.member],
            run_dir=settings.run_dir,
            log_dir=settings.log_dir,
            health=lambda: process.is_running() and self.member in group_members(settings.kafka_bootstrap,
                                                                               self.consumer_group),
            env={"PYTHONUNBUFFERED": "1"},
        )
        return process
