"""The local Apache Kafka broker: KRaft nodes (each a broker and a controller), no ZooKeeper, no Docker.

``prepare`` checks Java, resolves the Kafka jars pinned in ``kafka-pom.xml`` from Maven Central
into ``<state>/kafka/libs`` (once; a stamp makes re-runs no-ops), writes ``server.properties``
and a log4j2 config, and formats the storage once with a cluster id kept in the state folder.
The broker then runs as ``java -cp 'libs/*' kafka.Kafka server.properties``; it is healthy when
it answers an AdminClient metadata request, and ``after_start`` creates the project's topics.

By default one node runs (service ``kafka``). ``BILLING_KAFKA_BROKERS=3`` runs a local cluster of
three combined nodes (services ``kafka-1`` .. ``kafka-3``): every node is a broker and a voter of one
static controller quorum, so any two nodes keep the cluster writable, with the same jars, one
cluster id, and its own ports, data folder and logs (``<state>/kafka/cluster/node-<i>``). Separate
controller processes would be what a production cluster runs; on one machine they would only
add JVMs without adding independence.

When ``BILLING_KAFKA_BOOTSTRAP`` names anything but the local node(s) on loopback addresses, the
project uses that cluster as it is: nothing is installed or started locally, only the topics are created.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from importlib import resources
from pathlib import Path

import psutil

from billing.core.errors import PlatformError, ServiceUnavailable
from billing.kafka.cluster import replication, wait_for_brokers
from billing.kafka.topics import admin_client, ensure_topics, min_insync_replicas, partition_counts, topic_specs
from billing.platform.process import ManagedProcess
from billing.platform.service import Service
from billing.settings import Settings

POM = Path(str(resources.files("billing.platform") / "kafka-pom.xml"))
MIN_JAVA = 17
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOOPBACK = {"127.0.0.1", "localhost"}
# G1 with short pauses; start small and give idle heap back, so an idle local broker stays light.
JVM_FLAGS = (
    "-Xms64m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:G1PeriodicGCInterval=60000",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxMetaspaceSize=128m",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
JAVA_HINT = "install it with `sudo apt-get install openjdk-17-jre-headless` (or point JAVA_HOME at a JDK 17+)"


def say(message: str) -> None:
    """Tell the user what a long step is doing (shown above the CLI spinner)."""
    print(f"kafka: {message}", file=sys.stderr, flush=True)


def kafka_version(pom: Path = POM) -> str:
    """The one Kafka version the pom pins."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not match:
        raise PlatformError(f"{pom} does not pin <kafka.version>.")
    return match.group(1)


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output ('1.8.0_1' -> 8, '17.0.15' -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def locate_java() -> str | None:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH (None when neither exists)."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def find_java() -> str:
    """Path of a Java >= 17, or a PlatformError that says how to install one."""
    java = locate_java()
    if not java:
        raise PlatformError(f"kafka: Java {MIN_JAVA}+ is needed for the local broker but none was found; {JAVA_HINT}.")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PlatformError(f"kafka: cannot run {java} -version ({exc}); {JAVA_HINT}.") from exc
    major = parse_java_major(out.stderr + out.stdout)
    if major is None or major < MIN_JAVA:
        raise PlatformError(
            f"kafka: Java {MIN_JAVA}+ is needed for the local broker but {java} is Java {major or 'unknown'}; {JAVA_HINT}."
        )
    return java


def broker_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of the first bootstrap server."""
    first = settings.kafka_bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise PlatformError(f"BILLING_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} is not host:port[,host:port…].")
    return host.strip("[]"), int(port)


def local_nodes(settings: Settings) -> list[tuple[str, int, int]]:
    """(host, broker port, controller port) of each local node (see ``Settings.kafka_local_nodes``)."""
    try:
        return settings.kafka_local_nodes()
    except ValueError as exc:
        raise PlatformError(str(exc)) from exc


def is_local(settings: Settings) -> bool:
    """True when the bootstrap names exactly the local node(s) on loopback, i.e. the brokers `billing up` runs."""
    addresses = [address.strip() for address in settings.kafka_bootstrap.split(",")]
    nodes = local_nodes(settings)
    return nodes[0][0] in LOOPBACK and addresses == [f"{host}:{port}" for host, port, _ in nodes]


def render_server_properties(settings: Settings, data_dir: Path, node: int = 1) -> str:
    """server.properties of local KRaft node ``node`` (1-based) for ``settings``: a broker and a
    voter of the controller quorum of all ``kafka_brokers`` nodes; internal topics replicated like
    the project's, unclean leader election off."""
    nodes = local_nodes(settings)
    host, port, controller = nodes[node - 1]
    replication = str(settings.kafka_replication)
    min_isr = str(min_insync_replicas(settings.kafka_replication))
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node),
        "controller.quorum.voters": ",".join(f"{i}@{h}:{c}" for i, (h, _, c) in enumerate(nodes, start=1)),
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(settings.kafka_partitions),
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": str(settings.kafka_retention_hours),
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.check.interval.ms": "300000",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    header = "# Written by billing (billing/platform/kafka.py) before every start: change the BILLING_ settings instead.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def render_log4j2(log_file: Path) -> str:
    """log4j2 config: everything to a rolling file, warnings also to stdout (the service log)."""
    return f"""\
status = warn
name = billing-kafka
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
appender.out.filter.level.type = ThresholdFilter
appender.out.filter.level.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def accepts(host: str, port: int) -> bool:
    """True when ``host:port`` accepts a TCP connection."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 url-safe base64 characters, not starting with '-')."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def read_meta_cluster_id(meta: Path) -> str | None:
    """cluster.id from a data folder's meta.properties (None when missing or unreadable)."""
    match = re.search(r"^cluster\.id=(\S+)$", meta.read_text(errors="replace"), re.MULTILINE)
    return match.group(1) if match else None


def lock_holder(lock_file: Path) -> str | None:
    """Describe the process holding Kafka's lock on a data folder, or None when it is free."""
    if not lock_file.exists():
        return None
    with lock_file.open("a") as fh:
        try:
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass
        else:
            fcntl.lockf(fh, fcntl.LOCK_UN)
            return None
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            if any(f.path == str(lock_file) for f in proc.open_files()):
                return f"pid {proc.pid} ({proc.info['name']})"
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
    return "another process"


def read_since(path: Path, offset: int, limit: int = 64 * 1024) -> str:
    """Text appended to ``path`` after byte ``offset`` (its last ``limit`` bytes; '' if no file)."""
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(max(offset, fh.seek(0, os.SEEK_END) - limit))
        return fh.read().decode("utf-8", "replace")


def startup_failure(log_text: str, name: str = "kafka") -> str | None:
    """Why the latest start of service ``name`` in its log failed: Kafka's fatal exception or the JVM's complaint."""
    section = log_text.rsplit(f"starting {name}\n", 1)[-1].splitlines()
    for index, line in enumerate(section[:-1]):
        if "Exiting Kafka due to fatal exception" in line:
            return section[index + 1].strip()
    if any(line.startswith("Error: Could not create the Java Virtual Machine") for line in section):
        return section[0].strip()
    return None


class KafkaService(Service):
    """Local KRaft node ``node`` (the single broker ``kafka``, or ``kafka-<node>`` of a local cluster),
    or an external cluster given by the bootstrap."""

    def __init__(self, settings: Settings, node: int = 1):
        super().__init__(settings)
        self.node = node
        self.clustered = self.stops_with_peers = settings.kafka_brokers > 1 and is_local(settings)
        self.name = f"kafka-{node}" if self.clustered else "kafka"
        self.group = "kafka"
        root = settings.state_dir / "kafka"
        self.libs = root / "libs"
        self.home = root / "cluster" / f"node-{node}" if self.clustered else root
        self.data = self.home / "data"
        self.config_file = self.home / "server.properties"
        self.log4j_file = self.home / "log4j2.properties"
        self.cluster_id_file = (root / "cluster" if self.clustered else root) / "cluster.id"

    @property
    def endpoint(self) -> str:
        if not self.clustered:
            return self.settings.kafka_bootstrap
        host, port, _ = local_nodes(self.settings)[self.node - 1]
        return f"{host}:{port}"

    def managed(self, starting: bool = False) -> ManagedProcess:
        """The node's process; ``starting``, a cluster node is up once its controller listens (its
        broker waits for a quorum of nodes, so the cluster's readiness is checked after the last one)."""
        host, port, controller = local_nodes(self.settings)[self.node - 1]
        argv = [
            locate_java() or "java",
            f"-Xmx{self.settings.kafka_heap}",
            *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp", f"{self.libs}/*",
            "kafka.Kafka", str(self.config_file),
        ]
        return ManagedProcess(
            name=self.name,
            argv=argv,
            run_dir=self.settings.run_dir,
            log_dir=self.settings.log_dir,
            health=self._votes if self.clustered and starting else self._listens if self.clustered else self._answers,
            ports=[(host, port), (host, controller)],
            cwd=self.home,
            hint="BILLING_KAFKA_BOOTSTRAP / BILLING_KAFKA_CONTROLLER_PORT",
        )

    def _listens(self) -> bool:
        """Health of a cluster node: its broker and controller ports accept connections."""
        host, port, controller = local_nodes(self.settings)[self.node - 1]
        return accepts(host, controller) and accepts(host, port)

    def _votes(self) -> bool:
        host, _, controller = local_nodes(self.settings)[self.node - 1]
        return accepts(host, controller)

    def _answers(self) -> bool:
        """Health of the single broker: its port accepts connections and it answers a metadata request."""
        if is_local(self.settings) and not accepts(*broker_address(self.settings)):
            return False
        partition_counts(admin_client(self.settings.kafka_bootstrap), timeout=3)
        return True

    def prepare(self) -> None:
        """Check Java, resolve the jars, write the configs and format the storage (each once)."""
        if not is_local(self.settings) or self.managed().is_running():
            return
        find_java()
        self.check_data_dir()
        self.resolve_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_server_properties(self.settings, self.data, self.node))
        self.log4j_file.write_text(render_log4j2(self.settings.log_dir / f"{self.name}-server.log"))
        self.format_storage()

    def resolve_jars(self) -> None:
        """Copy the jars of the pinned Kafka version (and their dependencies) into ``libs`` once."""
        stamp = self.libs / ".resolved"
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return
        mvn = shutil.which("mvn")
        if not mvn:
            raise PlatformError("kafka: Maven is needed once to fetch the Kafka jars; install it with `sudo apt-get install maven`.")
        version = kafka_version()
        say(f"resolving Apache Kafka {version} jars from Maven Central into {self.libs} (first run only)…")
        began = time.monotonic()
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            lines = ANSI.sub("", result.stdout + result.stderr).strip().splitlines() or ["no output"]
            first_error = next((line for line in lines if line.startswith("[ERROR]")), lines[-1])
            raise PlatformError(
                f"kafka: Maven could not resolve Kafka {version} ({first_error.removeprefix('[ERROR]').strip()}); "
                f"is Maven Central reachable? ({POM})\n" + "\n".join(lines[-15:])
            )
        (staging / ".resolved").write_text(digest)
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)
        jars = list(self.libs.glob("*.jar"))
        size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
        say(f"{len(jars)} jars ({size_mb:.0f} MB) ready in {time.monotonic() - began:.1f}s")

    def check_data_dir(self) -> None:
        """Refuse a data folder that another process has locked, or that is not a formatted one."""
        holder = lock_holder(self.data / ".lock")
        if holder:
            raise PlatformError(
                f"kafka: data folder {self.data} is locked by {holder}, another broker using it; "
                "stop that broker or give this one another BILLING_STATE_DIR."
            )
        meta = self.data / "meta.properties"
        cluster_id = read_meta_cluster_id(meta) if meta.exists() else None
        recorded = self.cluster_id_file.read_text().strip() if self.cluster_id_file.exists() else None
        if meta.exists() and not cluster_id:
            problem = f"its {meta.name} has no cluster.id"
        elif cluster_id and recorded and cluster_id != recorded:
            problem = f"it belongs to cluster {cluster_id}, not {recorded} recorded in {self.cluster_id_file}"
        elif not meta.exists() and self.data.exists() and any(self.data.iterdir()):
            problem = "it has files but no meta.properties (half-formatted or damaged)"
        else:
            return
        raise PlatformError(
            f"kafka: data folder {self.data} is unusable: {problem}. Move it away to keep its data, "
            f"or delete it to start empty (`rm -rf {self.data} {self.cluster_id_file}`), then run `billing up {self.name}` again."
        )

    def format_storage(self) -> None:
        """Format the data folder once with the cluster id kept in the state folder."""
        if (self.data / "meta.properties").exists():
            if not self.cluster_id_file.exists():
                self.cluster_id_file.write_text(read_meta_cluster_id(self.data / "meta.properties") or "")
            return
        if not self.cluster_id_file.exists():
            self.cluster_id_file.write_text(new_cluster_id())
        cluster_id = self.cluster_id_file.read_text().strip()
        say(f"formatting {self.data} for cluster {cluster_id}")
        result = subprocess.run(
            [find_java(), f"-Dlog4j2.configurationFile={self.log4j_file}", "-cp", f"{self.libs}/*",
             "kafka.tools.StorageTool", "format", "--config", str(self.config_file), "--cluster-id", cluster_id],
            capture_output=True, text=True, cwd=self.home,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise PlatformError(f"kafka: formatting {self.data} failed:\n{output}")

    def start(self) -> bool:
        """Start the local broker (start-up failures name Kafka's reason); for an external cluster
        only check it and create the topics."""
        if not is_local(self.settings):
            self.after_start()
            return False
        self.prepare()
        proc = self.managed(starting=True)
        log_offset = proc.log_file.stat().st_size if proc.log_file.exists() else 0
        try:
            started = proc.start(timeout=self.settings.start_timeout_s)
        except PlatformError as exc:
            reason = startup_failure(read_since(proc.log_file, log_offset), self.name)
            if reason:
                raise PlatformError(f"{self.name} could not start: {reason} (log: {proc.log_file})") from exc
            raise
        self.after_start()
        return started

    def stop(self) -> bool:
        """Stop the local broker (an external cluster is never stopped)."""
        return super().stop() if is_local(self.settings) else False

    def after_start(self) -> None:
        """Create the missing topics with their partition counts and wait until they are visible; on a
        local cluster, once its last node started and every broker registered."""
        if self.clustered:
            if self.node < self.settings.kafka_brokers:
                return
            wait_for_brokers(admin_client(self.settings.kafka_bootstrap), self.settings.kafka_brokers,
                             self.settings.start_timeout_s)
        specs = list(topic_specs(self.settings).values())
        created = ensure_topics(admin_client(self.settings.kafka_bootstrap), specs, timeout=self.settings.start_timeout_s)
        if created:
            say(f"created topics {', '.join(created)}")

    def details(self) -> str:
        """Topics and partitions of the project on the cluster; for a node of a local cluster, the
        partitions it leads, whether it is the active controller and the under-replicated partitions."""
        if self.clustered:
            return self.node_details()
        try:
            counts = partition_counts(admin_client(self.settings.kafka_bootstrap), timeout=3)
        except PlatformError:
            return ""
        names = [spec.name for spec in topic_specs(self.settings).values()]
        present = [name for name in names if name in counts]
        return f"{len(present)}/{len(names)} topics, {sum(counts[n] for n in present)} partitions"

    def node_details(self) -> str:
        try:
            state = replication(admin_client(self.settings.kafka_bootstrap), timeout=3)
        except ServiceUnavailable:
            return ""
        role = ", active controller" if active_controller(self.settings) == self.node else ""
        registered = "" if self.node in state.brokers else ", not registered"
        return (f"broker {self.node}{role}{registered}: leads {state.leaders[self.node]}/{state.partitions} partitions; "
                f"cluster: {len(state.brokers)} brokers, {len(state.under_replicated)} under-replicated, "
                f"{len(state.leaderless)} leaderless")


def quorum_state(data_dir: Path) -> tuple[int, int] | None:
    """(leader epoch, leader id) that a node's metadata log last recorded (None when unknown)."""
    path = data_dir / "__cluster_metadata-0" / "quorum-state"
    try:
        state = json.loads(path.read_text())
        return int(state["leaderEpoch"]), int(state["leaderId"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def active_controller(settings: Settings) -> int | None:
    """Node id of the local cluster's active controller: the leader of the newest epoch any running
    node recorded (KRaft brokers answer DescribeCluster with a random broker, not the controller)."""
    states = [quorum_state(node.data) for node in kafka_services(settings) if node.managed().is_running()]
    known = [state for state in states if state and state[1] >= 0]
    return max(known)[1] if known else None


def cluster_of(settings: Settings, brokers: int) -> Settings:
    """``settings`` for a local cluster of ``brokers`` nodes starting at the same ports."""
    wider = settings.model_copy(update={"kafka_brokers": brokers})
    return wider.model_copy(update={"kafka_bootstrap": ",".join(f"{h}:{p}" for h, p, _ in local_nodes(wider))})


def kafka_services(settings: Settings) -> list[KafkaService]:
    """The local nodes: ``kafka_brokers`` of them, and any further cluster node still running (started
    before the setting was lowered), so that `billing status` shows it and `billing down` stops it."""
    if not is_local(settings):
        return [KafkaService(settings)]
    nodes = [KafkaService(settings, node) for node in range(1, settings.kafka_brokers + 1)]
    node = settings.kafka_brokers + 1 if settings.kafka_brokers > 1 else 1
    while True:
        extra = KafkaService(cluster_of(settings, max(node, 2)), node)
        if extra.managed().process() is None:
            return nodes
        nodes.append(extra)
        node += 1
