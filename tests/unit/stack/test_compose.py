"""deploy/docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is resolved by the real `docker-compose` (v1, which validates against the compose schema
without an engine), once with its own defaults and once with deploy/.env.example, and the result is held
against sensorpipe's configuration contract: each sensorpipe container's environment, loaded by
`load_settings()` exactly as the container would, must name the services, ports, credentials, bucket and
topics the other containers actually have. The Dockerfile is checked by parsing it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sensorpipe import __version__
from sensorpipe.config import Settings, load_settings
from sensorpipe.config.credentials import BRIDGE_USER, CHECK_USER
from sensorpipe.config.env import CONFIG_FILE_ENV, LEGACY_ENV_NAMES
from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.grafana.datasources import PROMETHEUS_TYPE, READER_PASSWORD_ENV
from sensorpipe.monitoring.grafana.export import GRAFANA_PROVISIONING
from sensorpipe.monitoring.grafana.sql_query import POSTGRES_TYPE
from sensorpipe.monitoring.prometheus_export import export_prometheus
from sensorpipe.stack.mosquitto import acl

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

PROFILES = ("demo", "tools")
SENSORPIPE_SERVICES = ("init", "bridge", "stream", "simulator", "spark-master", "spark-worker")
"""Every service run from the sensorpipe image: each is loaded with its own environment and cross-checked."""
ONE_SHOT = frozenset({"init", "minio-init"})
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"
WILDCARD = "0.0.0.0"  # noqa: S104 (compared with, never bound to)
COMPOSE_ONLY_VARIABLES = frozenset({"COMPOSE_PROJECT_NAME"})
"""Read by Compose itself from .env, never substituted in the file."""
SECRET = re.compile(r"PASSWORD|SECRET")
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")


# --- resolving the compose file ------------------------------------------------------------------------


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose is not installed: `scripts/bootstrap.sh --test` installs it (Debian package"
            " docker-compose, v1, which validates a compose file without a Docker engine)"
        )
    return path


def resolve(env_file: Path) -> dict[str, Any]:
    """`docker-compose config` with every profile, the given env file, and none of the caller's variables."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL") if key in os.environ}
    command = [docker_compose(), "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
    for profile in PROFILES:
        command += ["--profile", profile]
    result = subprocess.run(
        [*command, "config"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False
    )
    assert result.returncode == 0, f"{shlex.join([*command, 'config'])} failed:\n{result.stderr}{result.stdout}"
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


@dataclass(frozen=True)
class Compose:
    """The resolved compose file, as Compose hands it to the engine."""

    variant: str
    config: dict[str, Any]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.config["services"]
        return services

    def service(self, name: str) -> dict[str, Any]:
        assert name in self.services, f"no service {name!r} in {COMPOSE_FILE.name}"
        return self.services[name]

    def env(self, name: str) -> dict[str, str]:
        """The environment the container of `name` starts with (`$$` is a literal `$` there)."""
        raw = self.service(name).get("environment") or {}
        if isinstance(raw, list):
            raw = dict(item.split("=", 1) for item in raw)
        env = {}
        for key, value in raw.items():
            assert value is not None, f"{name}: {key} has no value (it would leak from the caller's environment)"
            env[key] = unescape(str(value))
        return env

    def command(self, name: str) -> list[str]:
        command = self.service(name).get("command") or []
        return [unescape(part) for part in (shlex.split(command) if isinstance(command, str) else command)]

    def script(self, name: str) -> list[list[str]]:
        """The command lines of a service run as `sh -ec SCRIPT`, each split into words."""
        entrypoint = self.service(name).get("entrypoint")
        assert entrypoint == ["/bin/sh", "-ec"], f"{name}: expected a shell script, got entrypoint {entrypoint!r}"
        (script,) = self.command(name)
        return [shlex.split(line) for line in script.splitlines() if line.strip()]

    def volumes(self, name: str) -> list[Mount]:
        return [Mount.parse(entry) for entry in self.service(name).get("volumes") or []]

    def ports(self, name: str) -> list[Port]:
        return [Port.parse(entry) for entry in self.service(name).get("ports") or []]

    def dependencies(self, name: str) -> dict[str, str]:
        depends = self.service(name).get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions: {depends!r}"
        return {target: spec.get("condition", "service_started") for target, spec in depends.items()}


def unescape(text: str) -> str:
    return text.replace("$$", "$")


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool
    kind: str  # "volume" or "bind"

    @classmethod
    def parse(cls, entry: str | dict[str, Any]) -> Mount:
        if isinstance(entry, dict):
            return cls(entry.get("source", ""), entry["target"], bool(entry.get("read_only")), entry["type"])
        parts = entry.split(":")
        if len(parts) == 1:  # an anonymous volume: data nobody finds again
            return cls("", parts[0], False, "volume")
        mode = parts.pop() if len(parts) == 3 else "rw"
        source, target = parts
        kind = "bind" if source.startswith(("/", ".")) else "volume"
        return cls(source, target, "ro" in mode.split(","), kind)


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: int
    target: int
    protocol: str

    @classmethod
    def parse(cls, entry: str | dict[str, Any]) -> Port:
        if isinstance(entry, dict):
            return cls(
                entry.get("host_ip") or WILDCARD,
                int(entry["published"]),
                int(entry["target"]),
                entry.get("protocol", "tcp"),
            )
        spec, _, protocol = entry.partition("/")
        parts = spec.rsplit(":", 2)
        assert len(parts) >= 2, f"port {entry!r} is not published to the host"
        host_ip = parts[0] if len(parts) == 3 else WILDCARD
        return cls(host_ip, int(parts[-2]), int(parts[-1]), protocol or "tcp")


@pytest.fixture(scope="module", params=["defaults", ".env.example"])
def compose(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Compose:
    """The file with its own defaults (an empty env file, so a developer's deploy/.env is ignored), and with
    the documented example."""
    if request.param == "defaults":
        env_file = tmp_path_factory.mktemp("compose") / "empty.env"
        env_file.write_text("")
    else:
        env_file = ENV_EXAMPLE
    return Compose(str(request.param), resolve(env_file))


# --- loading sensorpipe's settings as a container would --------------------------------------------------


def _clear_sensorpipe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SENSORPIPE_") or name in LEGACY_ENV_NAMES.values() or name == CONFIG_FILE_ENV:
            monkeypatch.delenv(name)


@pytest.fixture
def settings_of(compose: Compose, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Settings]:
    """`load_settings()` of every sensorpipe service, each with exactly its container's environment.

    Run from an empty directory, so no `sensorpipe.toml` of the checkout takes part.
    """
    clean_env.chdir(tmp_path)
    loaded = {}
    for name in SENSORPIPE_SERVICES:
        _clear_sensorpipe_env(clean_env)
        for key, value in compose.env(name).items():
            clean_env.setenv(key, value)
        loaded[name] = load_settings()
    _clear_sensorpipe_env(clean_env)
    return loaded


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host, int(port)


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` (Kafka's listener lists) as {NAME: (host, port)}."""
    found = {}
    for entry in value.split(","):
        name, _, address = entry.strip().partition("://")
        found[name] = host_port(address)
    return found


def option(command: list[str], flag: str) -> str:
    """The value of `--flag VALUE` or `--flag=VALUE` in a command line."""
    for index, word in enumerate(command):
        if word == flag:
            return command[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{flag} is missing from {shlex.join(command)}")


def mounted(compose: Compose, service: str, target: str) -> Mount:
    mounts = [mount for mount in compose.volumes(service) if mount.target == target]
    assert mounts, f"{service} mounts nothing at {target}"
    return mounts[0]


# --- the file as a whole ------------------------------------------------------------------------------------


def test_the_compose_file_validates_with_every_profile(compose: Compose) -> None:
    assert set(SENSORPIPE_SERVICES) | ONE_SHOT <= set(compose.services)
    for service in ("mosquitto", "kafka", "minio", "timescaledb", "prometheus", "grafana", "kafka-ui", "pgadmin"):
        assert service in compose.services
    assert compose.service("simulator").get("profiles") == ["demo"]
    assert compose.service("kafka-ui").get("profiles") == ["tools"]
    assert compose.service("pgadmin").get("profiles") == ["tools"]


def test_a_broken_compose_file_is_refused(tmp_path: Path) -> None:
    """The validation above can fail: the same binary rejects a file with an unknown key."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump({"services": {"x": {"image": "busybox:1.37.0", "helthcheck": {}}}}))
    result = subprocess.run(
        [docker_compose(), "-f", str(broken), "config"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "helthcheck" in result.stderr


def test_every_long_running_service_has_a_health_check(compose: Compose) -> None:
    completed_targets = {
        target
        for name in compose.services
        for target, condition in compose.dependencies(name).items()
        if condition == COMPLETED
    }
    assert completed_targets == ONE_SHOT
    for name, service in compose.services.items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", f"one-shot {name} must not be restarted"
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert not service["healthcheck"].get("disable"), name
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted after a crash"


def test_dependencies_wait_for_health_or_completion(compose: Compose) -> None:
    for name in compose.services:
        for target, condition in compose.dependencies(name).items():
            assert condition in (HEALTHY, COMPLETED), f"{name} starts after {target} merely started ({condition})"
            if condition == HEALTHY:
                assert "healthcheck" in compose.service(target), f"{name} waits for {target}, which has no check"
            if not compose.service(name).get("profiles"):
                assert not compose.service(target).get("profiles"), f"{name} needs {target} of a profile"
    # The stream job starts with its whole cluster and storage ready, the bridge after its topics exist.
    assert compose.dependencies("stream").items() >= {"spark-worker": HEALTHY, "init": COMPLETED}.items()
    assert set(compose.dependencies("stream")) >= {"kafka", "timescaledb", "minio", "minio-init"}
    assert compose.dependencies("bridge") == {"mosquitto": HEALTHY, "kafka": HEALTHY, "init": COMPLETED}
    assert compose.dependencies("simulator") == {"bridge": HEALTHY}


def test_every_service_is_on_the_one_network(compose: Compose) -> None:
    (network,) = compose.config["networks"]
    for name, service in compose.services.items():
        assert "network_mode" not in service, name
        assert list(service.get("networks") or {}) == [network], f"{name} is not (only) on {network}"


def test_data_lives_in_named_volumes_and_mounted_files_exist(compose: Compose) -> None:
    named = set(compose.config.get("volumes") or {})
    used = set()
    for name in compose.services:
        for mount in compose.volumes(name):
            if mount.kind == "volume":
                assert mount.source in named, f"{name}: {mount.source or 'an anonymous volume'} at {mount.target}"
                used.add(mount.source)
                continue
            assert mount.kind == "bind", f"{name}: {mount}"
            source = Path(mount.source)
            assert source.is_file(), f"{name} mounts {source}, which does not exist in the repository"
            assert source.resolve().is_relative_to(DEPLOY), f"{name} mounts {source} from outside deploy/"
            assert mount.read_only, f"{name} mounts {source} writable"
    assert used == named, f"declared but unused volumes: {sorted(named - used)}"


def test_images_are_pinned(compose: Compose) -> None:
    for name, service in compose.services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest" and "latest" not in tag, f"{name}: image {image} is not pinned"
        if name in SENSORPIPE_SERVICES:
            assert image == f"sensorpipe:{__version__}", f"{name}: the image is tagged with the package version"
            assert Path(service["build"]["context"]) == REPO
            assert service["build"].get("dockerfile", "Dockerfile") == DOCKERFILE.name
    built = {name for name, service in compose.services.items() if "build" in service}
    assert built == set(SENSORPIPE_SERVICES), "every service built from the Dockerfile is cross-checked below"
    assert compose.service("kafka")["image"] == "apache/kafka:4.1.1"
    kafka_pom = (REPO / "src/sensorpipe/jvm/kafka/pom.xml").read_text()
    assert "<kafka.version>4.1.1</kafka.version>" in kafka_pom, "the broker image and the local broker agree"
    assert re.fullmatch(r"grafana/grafana:11\.6\.\d+", compose.service("grafana")["image"])
    assert re.fullmatch(r"timescale/timescaledb:[\d.]+-pg17", compose.service("timescaledb")["image"])


def test_published_ports_are_unique_and_private_by_default(compose: Compose) -> None:
    seen: dict[tuple[int, str], str] = {}
    for name in compose.services:
        for port in compose.ports(name):
            key = (port.published, port.protocol)
            assert key not in seen, f"host port {port.published} is published by both {seen[key]} and {name}"
            seen[key] = name
            assert port.host_ip == "127.0.0.1", f"{name} publishes {port.published} on {port.host_ip}"
    assert len(seen) >= 10


def test_every_variable_is_documented_in_the_example_with_the_same_default() -> None:
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    defaults: dict[str, set[str]] = {}
    for match in VARIABLE.finditer(text):
        assert match["op"] == ":-", f"${{{match['name']}}} has no default (use ${{NAME:-default}})"
        defaults.setdefault(match["name"], set()).add(match["default"])
    bare = re.findall(r"(?<!\$)\$(?!\$)(?!\{)[A-Za-z_]", text)
    assert not bare, "a bare $NAME is substituted by Compose: write ${NAME:-default}, or $$NAME for the container"
    example = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{ENV_EXAMPLE.name}: not KEY=VALUE: {line!r}"
            quoted = len(value) >= 2 and value[0] == value[-1] == '"'
            example[key.strip()] = value[1:-1] if quoted else value
            assert quoted or " " not in value, f"{ENV_EXAMPLE.name}: quote {line!r}, or a shell cannot read it"
    for name, values in defaults.items():
        assert len(values) == 1, f"${{{name}}} has different defaults: {sorted(values)}"
        assert name in example, f"{name} is not documented in {ENV_EXAMPLE.name}"
        if not SECRET.search(name):
            assert example[name] == next(iter(values)), f"{ENV_EXAMPLE.name} and the compose file disagree on {name}"
        else:
            assert example[name] != next(iter(values)), f"{name}: the example must not repeat the default secret"
    assert set(example) - set(defaults) <= COMPOSE_ONLY_VARIABLES, "documented but unused variables"


# --- the containers against sensorpipe's configuration contract -----------------------------------------------


@pytest.mark.parametrize("name", SENSORPIPE_SERVICES)
def test_sensorpipe_service_reaches_the_services_of_the_compose_file(
    compose: Compose, settings_of: dict[str, Settings], name: str
) -> None:
    settings = settings_of[name]

    # MQTT: the mosquitto service, on the port its configuration listens on (and publishes).
    assert settings.mqtt.host == "mosquitto"
    conf = mounted(compose, "mosquitto", "/mosquitto/config/mosquitto.conf")
    listened = {
        int(line.split()[1]) for line in Path(conf.source).read_text().splitlines() if line.startswith("listener ")
    }
    assert settings.mqtt.port in listened
    assert settings.mqtt.port in {port.target for port in compose.ports("mosquitto")}

    # Kafka: every bootstrap address is the kafka service's internal listener, advertised under that name.
    kafka = compose.env("kafka")
    bound, advertised = listeners(kafka["KAFKA_LISTENERS"]), listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    for address in settings.kafka.bootstrap_servers.split(","):
        host, port = host_port(address)
        assert host == "kafka", f"{name}: bootstrap {address} is not the kafka service"
        names = [listener for listener, hp in advertised.items() if hp == (host, port)]
        assert names, f"{name}: Kafka does not advertise {address} ({kafka['KAFKA_ADVERTISED_LISTENERS']})"
        assert bound[names[0]][1] == port, f"{name}: Kafka's {names[0]} listener is not on port {port}"
        assert port not in {p.target for p in compose.ports("kafka")}, "the internal listener stays internal"
    assert settings.kafka.replication_factor == 1, "a single broker"

    # PostgreSQL: the timescaledb service, its database, owner role and password.
    db = compose.env("timescaledb")
    assert (settings.postgres.host, settings.postgres.port) == ("timescaledb", 5432)
    assert settings.postgres.port in {port.target for port in compose.ports("timescaledb")}
    assert settings.postgres.database == db["POSTGRES_DB"]
    assert settings.postgres.user == db["POSTGRES_USER"]
    assert settings.postgres.password.get_secret_value() == db["POSTGRES_PASSWORD"]
    assert settings.timescale.mode == "on", "the image has TimescaleDB: its absence is an error"

    # S3: the minio service and the port it serves, its root keys, and the bucket minio-init creates.
    minio, minio_command = compose.env("minio"), compose.command("minio")
    assert settings.s3.host_port == ("minio", host_port(option(minio_command, "--address"))[1])
    assert settings.s3.access_key == minio["MINIO_ROOT_USER"]
    assert settings.s3.secret_key.get_secret_value() == minio["MINIO_ROOT_PASSWORD"]
    assert settings.s3.region == minio["MINIO_SITE_REGION"]
    assert settings.lake.backend == "s3"
    lines = compose.script("minio-init")
    (alias,) = [line for line in lines if line[:3] == ["mc", "alias", "set"]]
    (make_bucket,) = [line for line in lines if line[:2] == ["mc", "mb"]]
    init_env = compose.env("minio-init")
    assert alias[4] == settings.s3.endpoint
    assert [init_env.get(word.removeprefix("$"), word) for word in alias[5:7]] == [
        settings.s3.access_key,
        settings.s3.secret_key.get_secret_value(),
    ]
    assert make_bucket[-1] == f"{alias[3]}/{settings.s3.bucket}", "the lake's bucket is the one minio-init creates"

    # Topics: the ones `init` created (sensorpipe topics create) are the ones every service uses.
    created = settings_of["init"].kafka
    assert (settings.kafka.topic, settings.kafka.dlq_topic) == (created.topic, created.dlq_topic)
    assert (settings.kafka.partitions, settings.kafka.retention_ms) == (created.partitions, created.retention_ms)
    assert settings.mqtt.topic == settings_of["init"].mqtt.topic

    # Spark: the master URL names the spark-master service, its --host and --port.
    master = compose.command("spark-master")
    assert master[0] == "org.apache.spark.deploy.master.Master"
    assert settings.spark.master == f"spark://{option(master, '--host')}:{option(master, '--port')}"
    assert option(master, "--host") == "spark-master" == compose.service("spark-master")["hostname"]

    # Monitoring: Prometheus and Grafana find the bridge and the stream job where they listen.
    prometheus_port = option(compose.command("prometheus"), "--web.listen-address").rpartition(":")[2]
    assert settings.monitoring.prometheus_url == f"http://prometheus:{prometheus_port}"
    bridge, stream = settings_of["bridge"], settings_of["stream"]
    assert settings.monitoring.bridge_targets == f"bridge:{bridge.bridge.metrics_port}"
    assert settings.monitoring.stream_targets == f"stream:{stream.stream.metrics_port}"


def test_mqtt_refuses_anonymous_clients_and_every_service_has_a_login(
    compose: Compose, settings_of: dict[str, Settings]
) -> None:
    conf = Path(mounted(compose, "mosquitto", "/mosquitto/config/mosquitto.conf").source).read_text()
    directives = dict(line.split(" ", 1) for line in conf.splitlines() if line and not line.startswith("#"))
    assert directives["allow_anonymous"] == "false"
    # The ACL is the local stack's for the services' MQTT settings: sensors write their own topic, the bridge reads.
    acl_file = Path(mounted(compose, "mosquitto", directives["acl_file"]).source)
    assert acl_file.read_text() == acl(settings_of["bridge"].mqtt)
    # The password file is written at start by the entry point, from the logins in the environment.
    entrypoint = compose.service("mosquitto")["entrypoint"]
    assert entrypoint[0] == "/bin/sh"
    script = Path(mounted(compose, "mosquitto", entrypoint[1]).source).read_text()
    assert f"passwd={directives['password_file']}" in script
    assert f"exec mosquitto -c {mounted(compose, 'mosquitto', '/mosquitto/config/mosquitto.conf').target}" in script
    env = compose.env("mosquitto")
    logins = {BRIDGE_USER: env["MQTT_BRIDGE_PASSWORD"], CHECK_USER: env["MQTT_CHECK_PASSWORD"]}
    logins |= dict(login.split(":", 1) for login in env["MQTT_SENSOR_PASSWORDS"].split())
    for name, settings in settings_of.items():
        assert settings.mqtt.username is not None and settings.mqtt.password is not None, name
        assert logins.get(settings.mqtt.username) == settings.mqtt.password.get_secret_value(), name
    assert {name for name, s in settings_of.items() if s.mqtt.username != BRIDGE_USER} == {"simulator"}
    # The simulator is one gateway: its readings go, as arrays, on the one topic its login may write.
    simulator = compose.command("simulator")
    assert int(option(simulator, "--batch")) > 1 and "--processes" not in simulator
    (check,) = compose.service("mosquitto")["healthcheck"]["test"][1:]
    assert f'-u {CHECK_USER} -P "$MQTT_CHECK_PASSWORD"' in unescape(check)


def test_the_cluster_reaches_the_driver_and_the_master(compose: Compose, settings_of: dict[str, Settings]) -> None:
    """Executors connect back to the driver in the stream container: it must not advertise loopback."""
    master_url = settings_of["stream"].spark.master
    assert compose.command("stream") == ["stream", "--master", master_url]
    assert compose.command("spark-worker")[0] == "org.apache.spark.deploy.worker.Worker"
    assert compose.command("spark-worker")[-1] == master_url
    stream = compose.env("stream")
    assert stream.get("SPARK_LOCAL_HOSTNAME") == compose.service("stream")["hostname"] == "stream"
    assert "SPARK_LOCAL_IP" not in stream, "a loopback bind address would hide the driver from the executors"
    assert "hostname" not in compose.service("spark-worker"), "workers scale: each has its container's own name"


def test_metrics_endpoints_listen_where_prometheus_and_the_host_look(
    compose: Compose, settings_of: dict[str, Settings]
) -> None:
    for name, metrics in (("bridge", settings_of["bridge"].bridge), ("stream", settings_of["stream"].stream)):
        assert metrics.metrics_host == WILDCARD, f"{name}: metrics on loopback are out of Prometheus' reach"
        assert metrics.metrics_port in {port.target for port in compose.ports(name)}
        assert compose.service(name)["hostname"] == name


def test_grafana_and_prometheus_load_what_init_exports(
    compose: Compose, settings_of: dict[str, Settings], tmp_path: Path
) -> None:
    lines = compose.script("init")
    assert [line[:3] for line in lines[:2]] == [["sensorpipe", "db", "migrate"], ["sensorpipe", "topics", "create"]]
    (grafana_export,) = [line for line in lines if line[1:3] == ["grafana", "export"]]
    (prometheus_export,) = [line for line in lines if line[1:3] == ["prometheus", "export"]]

    # Grafana: the volume init writes is Grafana's provisioning directory, where the dashboards say they are.
    written = mounted(compose, "init", grafana_export[3])
    provisioning = mounted(compose, "grafana", GRAFANA_PROVISIONING)
    assert (provisioning.kind, provisioning.source) == ("volume", written.source)
    assert "--grafana-dir" not in grafana_export, "the export's default is the directory Grafana reads"
    reader = settings_of["init"].postgres.reader_password.get_secret_value()
    assert compose.env("grafana")[READER_PASSWORD_ENV] == reader, "Grafana's data source logs in as the reader"

    # Prometheus: its configuration is the prometheus.yml init exports, its rules beside it.
    written = mounted(compose, "init", prometheus_export[3])
    config_file = option(compose.command("prometheus"), "--config.file")
    loaded = mounted(compose, "prometheus", str(Path(config_file).parent))
    assert (loaded.kind, loaded.source) == ("volume", written.source)
    assert Path(config_file).name == "prometheus.yml"

    # What init writes, with init's settings, points at the compose services.
    settings = settings_of["init"]
    export_prometheus(settings, tmp_path / "prometheus")
    scrape = yaml.safe_load((tmp_path / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    assert targets == {"sensorpipe-bridge": ["bridge:9310"], "sensorpipe-stream": ["stream:9311"]}
    export_grafana(settings, tmp_path / "grafana")
    sources = yaml.safe_load((tmp_path / "grafana" / "datasources" / "sensorpipe.yaml").read_text())
    urls = {source["type"]: source["url"] for source in sources["datasources"]}
    assert urls == {POSTGRES_TYPE: "timescaledb:5432", PROMETHEUS_TYPE: "http://prometheus:9090"}


def test_the_tools_reach_kafka_and_the_database(compose: Compose) -> None:
    kafka = listeners(compose.env("kafka")["KAFKA_ADVERTISED_LISTENERS"])
    internal = f"{kafka['INTERNAL'][0]}:{kafka['INTERNAL'][1]}"
    assert compose.env("kafka-ui")["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == internal
    servers = json.loads(Path(mounted(compose, "pgadmin", "/pgadmin4/servers.json").source).read_text())["Servers"]
    (server,) = servers.values()
    db = compose.env("timescaledb")
    assert (server["Host"], server["Port"]) == ("timescaledb", 5432)
    assert (server["MaintenanceDB"], server["Username"]) == (db["POSTGRES_DB"], db["POSTGRES_USER"])


def test_programs_on_the_host_reach_kafka_through_its_published_listener(compose: Compose) -> None:
    kafka = compose.env("kafka")
    bound, advertised = listeners(kafka["KAFKA_LISTENERS"]), listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    (published,) = compose.ports("kafka")
    (external,) = [name for name, (_host, port) in bound.items() if port == published.target]
    assert advertised[external] == ("localhost", published.published)
    assert set(kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].replace(":", ",").split(",")) >= set(bound)
    assert kafka["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised


# --- the Dockerfile -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        found = {}
        for arguments in self.all("ENV"):
            for word in shlex.split(arguments):
                key, _, value = word.partition("=")
                found[key] = value
        return found


def dockerfile_stages() -> list[Stage]:
    """Instructions per stage, continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line.strip())
        current = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, []))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return stages


def copy_sources(arguments: str) -> tuple[dict[str, str], list[str]]:
    """The flags (--from, --chown) and the sources of a COPY (the last word is the destination)."""
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    flags = dict(word[2:].split("=", 1) for word in words if word.startswith("--"))
    paths = [word for word in words if not word.startswith("--")]
    return flags, paths[:-1]


def dockerignored(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path or one of its parents decides."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            excluded = not negated
    return excluded


def test_the_dockerfile_builds_in_stages_and_runs_unprivileged() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    final = stages[-1]
    users = final.all("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime stage runs as a non-root user"
    assert final.all("ENTRYPOINT") == ['["sensorpipe"]']
    for stage in stages:
        image, _, tag = stage.image.rpartition(":")
        assert image and tag and "latest" not in tag, f"base image {stage.image} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"base image {stage.image}: pin a version, not a moving name"
    assert len({stage.image for stage in stages}) == 1, "one Python base: the venv's interpreter path is the same"
    runtime_packages = " ".join(final.all("RUN"))
    for package in ("openjdk-17-jre-headless", "procps"):
        assert package in runtime_packages, f"the runtime stage lacks {package}"
    assert "maven" not in runtime_packages and "jdk-headless" not in runtime_packages.replace("jre-headless", "")


def test_the_jar_set_is_fetched_at_build_time_and_copied_into_the_runtime_stage() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    fetching = [stage for stage in stages[:-1] if any("sensorpipe jars fetch" in run for run in stage.all("RUN"))]
    assert fetching, "`sensorpipe jars fetch` runs in a build stage"
    (build,) = fetching
    assert not any("jars fetch" in run for run in final.all("RUN")), "no Maven at run time"
    cache_dir = build.env().get("SENSORPIPE_STACK_CACHE_DIR")
    assert cache_dir, "the build stage names stack.cache_dir, where `jars fetch` puts the jars"
    assert final.env().get("SENSORPIPE_STACK_CACHE_DIR") == cache_dir, "the runtime looks for the jars there"
    copied = []
    for arguments in final.all("COPY"):
        flags, sources = copy_sources(arguments)
        if flags.get("from") == build.name:
            copied += sources
    assert f"{cache_dir}/jars" in copied or cache_dir in copied, f"the jars under {cache_dir} reach the runtime"
    venv = [source for source in copied if source.endswith("venv")]
    assert venv, "the virtual environment with sensorpipe reaches the runtime"
    assert f"{venv[0]}/bin" in final.env().get("PATH", ""), "`sensorpipe` and `spark-class` are on PATH"
    assert final.env().get("PYSPARK_PYTHON") == f"{venv[0]}/bin/python", "Spark's Python workers run sensorpipe's"


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    stages = dockerfile_stages()
    names = {stage.name for stage in stages}
    checked = 0
    for stage in stages:
        for arguments in stage.all("COPY") + stage.all("ADD"):
            flags, sources = copy_sources(arguments)
            if "from" in flags:
                assert flags["from"] in names, f"COPY --from={flags['from']}: no such stage"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
                checked += 1
    assert checked >= 2
    for kept_out in (".venv", ".git", ".sensorpipe", "tests", "src/sensorpipe/__pycache__"):
        assert dockerignored(kept_out), f"{kept_out} would be sent to the Docker daemon"
