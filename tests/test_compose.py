"""docker-compose.yml, .env.example and the Dockerfile, checked by their structure.

The machine these tests were written on has the Docker client but no Docker engine, so
nothing here builds an image or starts a container (docs/operations.md says so too). What
is checked instead, each by one function that returns the problems it finds:

(a) the file against the Compose Specification's JSON schema (tests/data/compose-spec/);
(b) `depends_on`: existing services, conditions each target can meet, no cycles, one
    migration step the others wait for;
(c) every DRONELOG_* name is a field of `dronelog.config.Settings` (derived from the model),
    and each service's settings validate;
(d) every command a dronelog service runs parses as a `dronelog` subcommand with its options;
(e) mounted files exist in the repository, secrets come from .env, and the shipped Mosquitto
    configuration finds every file it names;
(f) healthchecks on postgres, mosquitto and api;
(g) the simulator only behind a profile;
(h) at least two ingesters, with distinct client ids and logins, in one shared group.

`test_each_check_catches_its_mutation` breaks a copy of the compose file in one way per check
and requires the check to notice.
"""

import copy
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import click
import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic import ValidationError

from dronelog.cli import main as dronelog_command
from dronelog.config import Settings
from dronelog.ingest.mqtt_source import BrokerAddress

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA_FILE = ROOT / "tests/data/compose-spec/compose-spec.json"
MOSQUITTO_CONF = "deploy/mosquitto/mosquitto.conf"
MOSQUITTO_ACL = ROOT / "deploy/mosquitto/acl"

PREFIX = Settings.model_config["env_prefix"]  # "DRONELOG_"
# The paths in mosquitto.conf that must exist inside the broker's container.
MOSQUITTO_PATH_OPTIONS = ("password_file", "acl_file", "certfile", "keyfile", "cafile",
                          "capath", "persistence_location")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                       r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --- Reading the files ------------------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _walk_strings(node, visit: Callable[[str], str]):
    if isinstance(node, dict):
        return {key: _walk_strings(value, visit) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk_strings(item, visit) for item in node]
    if isinstance(node, str):
        return visit(node)
    return node


def interpolate(node, env: dict[str, str]):
    """What Compose does to every value before it uses the file, with `env` as .env."""
    def fill(text: str) -> str:
        def one(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name, op, arg = match.group("name", "op", "arg")
            value = env.get(name)
            if op in (":-", ":?") and not value or op in ("-", "?") and value is None:
                if op.endswith("?"):
                    raise ValueError(f"${{{name}}} is required: {arg}")
                return arg
            return value or ""
        return _VARIABLE.sub(one, text)
    return _walk_strings(node, fill)


def variables_used(node) -> set[str]:
    names: set[str] = set()

    def collect(text: str) -> str:
        names.update(m.group("name") for m in _VARIABLE.finditer(text) if m.group("name"))
        return text
    _walk_strings(node, collect)
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")))
    return [(parts[0].upper(), parts[1] if len(parts) > 1 else "")
            for parts in (line.strip().split(None, 1) for line in joined.splitlines())
            if parts]


@dataclass
class Deployment:
    raw: dict  # docker-compose.yml as written
    env: dict[str, str]  # .env.example

    @property
    def compose(self) -> dict:
        return interpolate(self.raw, self.env)

    @property
    def services(self) -> dict[str, dict]:
        return self.compose["services"]


def load_deployment() -> Deployment:
    return Deployment(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")),
                      read_env_file(ENV_EXAMPLE))


@pytest.fixture
def deployment() -> Deployment:
    return load_deployment()


# --- What a service is ------------------------------------------------------------------------

def command_of(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def environment_of(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def is_dronelog(service: dict, env: dict[str, str]) -> bool:
    return "build" in service or service.get("image") == env.get("APP_IMAGE")


def in_default_profile(service: dict) -> bool:
    return not service.get("profiles")


def is_one_shot(service: dict) -> bool:
    return str(service.get("restart", "no")) == "no"


def depends_on(service: dict) -> dict[str, dict]:
    dependencies = service.get("depends_on") or {}
    if isinstance(dependencies, list):
        return {name: {} for name in dependencies}
    return dependencies


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and (
        isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL"))


def running(deployment: Deployment, *command: str, default_only: bool = False) -> list[str]:
    """The dronelog services whose command starts with `command`."""
    return [name for name, service in deployment.services.items()
            if is_dronelog(service, deployment.env)
            and command_of(service)[:len(command)] == list(command)
            and (in_default_profile(service) or not default_only)]


def mqtt_logins(service: dict) -> list[str | None]:
    """The service's MQTT logins: its own, and its receipts' connection's if it has one."""
    environment = environment_of(service)
    return [BrokerAddress.parse(url).username for key in ("MQTT_URL", "RECEIPTS_MQTT_URL")
            if (url := environment.get(f"{PREFIX}{key}"))]


def broker_service(deployment: Deployment, service: dict) -> str | None:
    """The compose service a dronelog service's DRONELOG_MQTT_URL leads to, by service name
    or network alias."""
    url = environment_of(service).get(f"{PREFIX}MQTT_URL")
    if not url:
        return None
    host = BrokerAddress.parse(url).host
    for name, candidate in deployment.services.items():
        networks = candidate.get("networks") or {}
        aliases = [alias for network in (networks.values() if isinstance(networks, dict) else [])
                   for alias in ((network or {}).get("aliases") or [])]
        if host == name or host in aliases:
            return name
    return None


# --- (a) the Compose Specification ------------------------------------------------------------

def schema_problems(deployment: Deployment) -> list[str]:
    import json

    validator = Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in validator.iter_errors(deployment.compose)]


# --- (b) dependencies and the migration step --------------------------------------------------

def dependency_problems(deployment: Deployment) -> list[str]:
    services, problems = deployment.services, []
    for name, service in services.items():
        if isinstance(service.get("depends_on"), list):
            problems.append(f"{name}: depends_on without conditions (use the long form)")
        for target, spec in depends_on(service).items():
            if target not in services:
                problems.append(f"{name} depends on {target}, which is not a service")
                continue
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy" and not has_healthcheck(services[target]):
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and not is_one_shot(
                    services[target]):
                problems.append(f"{name} waits for {target} to complete; {target} is restarted "
                                "and never completes")
            if condition != "service_completed_successfully" and is_one_shot(services[target]):
                problems.append(f"{name} depends on the one-shot {target} with {condition}: "
                                "use service_completed_successfully")
            if in_default_profile(service) and not in_default_profile(services[target]):
                problems.append(f"{name} (default profile) depends on {target}, which is only "
                                "in a profile")
    # cycles
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "open":
            problems.append(f"dependency cycle: {' -> '.join(path + [name])}")
            return
        if state.get(name) == "done" or name not in services:
            return
        state[name] = "open"
        for target in depends_on(services[name]):
            visit(target, path + [name])
        state[name] = "done"
    for name in services:
        visit(name, [])
    # the broker: whoever subscribes or publishes waits for it to be healthy
    for name, service in services.items():
        if not is_dronelog(service, deployment.env) or command_of(service)[:1] not in (
                ["ingest"], ["scheduler"], ["simulate"]):
            continue
        broker = broker_service(deployment, service)
        if broker is None:
            problems.append(f"{name}: DRONELOG_MQTT_URL does not lead to a compose service")
        elif depends_on(service).get(broker, {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for its broker {broker} to be healthy")
    return problems


def migration_problems(deployment: Deployment) -> list[str]:
    services, problems = deployment.services, []
    migrations = running(deployment, "db", "upgrade")
    if len(migrations) != 1:
        return [f"expected one `db upgrade` service, found {migrations}"]
    migrate = migrations[0]
    if not is_one_shot(services[migrate]):
        problems.append(f"{migrate} must run once (restart: \"no\")")
    databases = [name for name, service in services.items()
                 if (service.get("image") or "").startswith("postgres:")]
    if not any(depends_on(services[migrate]).get(name, {}).get("condition")
               == "service_healthy" for name in databases):
        problems.append(f"{migrate} does not wait for PostgreSQL ({databases}) to be healthy")
    for name, service in services.items():
        environment = environment_of(service)
        if name == migrate or f"{PREFIX}DATABASE_URL" not in environment:
            continue
        condition = depends_on(service).get(migrate, {}).get("condition")
        if condition != "service_completed_successfully":
            problems.append(f"{name} uses the database but does not wait for {migrate} to "
                            "complete")
        if environment.get(f"{PREFIX}AUTO_MIGRATE", "").lower() not in ("false", "0", "no"):
            problems.append(f"{name} must set {PREFIX}AUTO_MIGRATE=false ({migrate} migrates)")
    return problems


# --- (c) settings -----------------------------------------------------------------------------

def dronelog_names(deployment: Deployment) -> dict[str, str]:
    """Every DRONELOG_* name in the compose file, .env.example and the Dockerfile, with where
    it was found."""
    found = {}
    for name, service in deployment.raw["services"].items():
        for key in environment_of(service):
            found.setdefault(key, f"docker-compose.yml services.{name}.environment")
    for name in variables_used(deployment.raw):
        found.setdefault(name, "docker-compose.yml ${...}")
    for key in deployment.env:
        found.setdefault(key, ".env.example")
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            for key in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", arguments):
                found.setdefault(key, "Dockerfile ENV")
    return {key: where for key, where in found.items() if key.upper().startswith(PREFIX)}


def unknown_setting_problems(deployment: Deployment) -> list[str]:
    fields = set(Settings.model_fields)
    return [f"{key} ({where}) is not a dronelog setting: no field "
            f"{key[len(PREFIX):].lower()!r} in dronelog.config.Settings"
            for key, where in sorted(dronelog_names(deployment).items())
            if key[len(PREFIX):].lower() not in fields]


class _SettingsFromArguments(Settings):
    """Settings from keyword arguments alone: no environment, no dronelog.toml."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings,)


def invalid_settings_problems(deployment: Deployment) -> list[str]:
    """Each dronelog service's environment (with the Dockerfile's ENV beneath it) validates
    as Settings, and its broker URL parses."""
    image_env = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            image_env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", arguments))
    problems = []
    for name, service in deployment.services.items():
        if not is_dronelog(service, deployment.env):
            continue
        environment = {**image_env, **environment_of(service)}
        values = {key[len(PREFIX):].lower(): value for key, value in environment.items()
                  if key.startswith(PREFIX)}
        try:
            settings = _SettingsFromArguments(**values)
            BrokerAddress.parse(settings.mqtt_url)
        except (ValidationError, ValueError) as error:
            problems.append(f"{name}: {error}")
    return problems


# --- (d) commands -----------------------------------------------------------------------------

def command_problems(deployment: Deployment) -> list[str]:
    """Resolve each dronelog service's command through the click groups and parse its
    arguments, as `dronelog` would in the container (whose working directory holds the
    repository's scenarios/ and config/, as the Dockerfile copies them)."""
    problems = []
    for name, service in deployment.services.items():
        if not is_dronelog(service, deployment.env):
            continue
        args = command_of(service)
        if not args:
            problems.append(f"{name}: no command (the image would only print --help)")
            continue
        command: click.Command = dronelog_command
        context = click.Context(dronelog_command, info_name="dronelog")
        path = ["dronelog"]
        while isinstance(command, click.Group) and args and not args[0].startswith("-"):
            sub = command.get_command(context, args[0])
            if sub is None:
                problems.append(f"{name}: `{' '.join(path)} {args[0]}` is not a command")
                break
            path.append(args.pop(0))
            command = sub
            context = click.Context(command, info_name=path[-1], parent=context)
        else:
            if isinstance(command, click.Group):
                problems.append(f"{name}: `{' '.join(path)}` needs a subcommand")
                continue
            try:
                command.make_context(" ".join(path), list(args), parent=context.parent)
            except click.ClickException as error:
                problems.append(f"{name}: `{' '.join(path)}`: {error.format_message()}")
    return problems


# --- (e) mounts and files ---------------------------------------------------------------------

def _short_volume(spec) -> tuple[str, str]:
    """(source, target) of a mount; source "" for an anonymous volume. The short syntax is
    split at colons outside ${...}, since `${VAR:?message}` holds one."""
    if isinstance(spec, dict):
        return spec.get("source", ""), spec["target"]
    parts, depth, current = [], 0, ""
    for char in spec:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])


def mount_problems(deployment: Deployment) -> list[str]:
    problems = []
    declared_volumes = set(deployment.raw.get("volumes") or {})
    for name, service in deployment.raw["services"].items():
        for spec in service.get("volumes") or []:
            source, target = _short_volume(spec)
            if not source:
                continue
            if variables_used(source):
                missing = variables_used(source) - set(deployment.env)
                if missing:
                    problems.append(f"{name}: the mount source {source} needs {missing} in "
                                    ".env.example")
            elif source.startswith((".", "/")):
                if not (ROOT / source).exists():
                    problems.append(f"{name}: {source} is mounted at {target} but is not in "
                                    "the repository")
            elif source not in declared_volumes:
                problems.append(f"{name}: volume {source} is not declared under volumes:")
    return problems


def _mount_targets(service: dict) -> list[PurePosixPath]:
    return [PurePosixPath(_short_volume(spec)[1]) for spec in service.get("volumes") or []]


def mosquitto_configuration_problems(deployment: Deployment) -> list[str]:
    """The broker service mounts the shipped mosquitto.conf and starts Mosquitto with it, and
    every file or folder the configuration names is mounted."""
    services = deployment.raw["services"]
    brokers = [(name, service) for name, service in services.items()
               for spec in service.get("volumes") or []
               if PurePosixPath(_short_volume(spec)[0]) == PurePosixPath(MOSQUITTO_CONF)]
    if len(brokers) != 1:
        return [f"expected one service mounting {MOSQUITTO_CONF}, found "
                f"{[name for name, _ in brokers]}"]
    name, broker = brokers[0]
    conf_target = next(_short_volume(spec)[1] for spec in broker["volumes"]
                       if PurePosixPath(_short_volume(spec)[0]) == PurePosixPath(MOSQUITTO_CONF))
    problems = []
    script = " ".join(command_of(broker))
    if "mosquitto" not in script or conf_target not in script:
        problems.append(f"{name} does not start mosquitto with {conf_target}")
    targets = _mount_targets(broker)
    for line in (ROOT / MOSQUITTO_CONF).read_text(encoding="utf-8").splitlines():
        option, _, value = line.strip().partition(" ")
        if option in MOSQUITTO_PATH_OPTIONS and value.strip():
            path = PurePosixPath(value.strip())
            if not any(path == target or target in path.parents for target in targets):
                problems.append(f"{name}: mosquitto.conf's {option} {path} is not mounted")
    return problems


def image_problems() -> list[str]:
    """The Dockerfile: python:3.11-slim, `pip install`, a non-root user, `dronelog` as the
    entrypoint; what it copies exists and is not excluded by .dockerignore."""
    instructions = dockerfile_instructions()
    problems = []
    arguments = {instruction: [a for i, a in instructions if i == instruction]
                 for instruction, _ in instructions}
    if arguments.get("FROM") != ["python:3.11-slim"]:
        problems.append(f"FROM {arguments.get('FROM')}, expected python:3.11-slim")
    if not any("pip install" in a for a in arguments.get("RUN", [])):
        problems.append("no `pip install` of the package")
    users = arguments.get("USER", [])
    if not users or users[-1].strip() in ("root", "0"):
        problems.append("the image runs as root")
    if arguments.get("ENTRYPOINT") != ['["dronelog"]']:
        problems.append(f"ENTRYPOINT {arguments.get('ENTRYPOINT')}, expected [\"dronelog\"]")
    ignored = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    for copy_arguments in arguments.get("COPY", []):
        for source in copy_arguments.split()[:-1]:
            if source.startswith("--"):
                continue
            if not (ROOT / source).exists():
                problems.append(f"COPY {source}: not in the repository")
            if f"!{source}" not in ignored and any(
                    fnmatch(source, pattern) or fnmatch(source.split("/")[0], pattern)
                    for pattern in ignored):
                problems.append(f"COPY {source}: excluded by .dockerignore")
    return problems


# --- (f) healthchecks -------------------------------------------------------------------------

def healthcheck_problems(deployment: Deployment) -> list[str]:
    services, problems = deployment.services, []

    def by_image(prefix: str) -> list[str]:
        return [name for name, service in services.items()
                if (service.get("image") or "").startswith(prefix)
                and in_default_profile(service)]
    wanted = {"postgres": by_image("postgres:"), "mosquitto": by_image("eclipse-mosquitto:"),
              "api": running(deployment, "api", default_only=True)}
    for role, names in wanted.items():
        if not names:
            problems.append(f"no {role} service")
        for name in names:
            if not has_healthcheck(services[name]):
                problems.append(f"{name} ({role}) has no healthcheck")
    for name in wanted["postgres"]:
        if "pg_isready" not in str(services[name].get("healthcheck", {}).get("test")):
            problems.append(f"{name}: the healthcheck does not use pg_isready")
    for name in wanted["api"]:
        port = environment_of(services[name]).get(f"{PREFIX}API_PORT", "8080")
        test = str(services[name].get("healthcheck", {}).get("test"))
        if f"127.0.0.1:{port}/healthz" not in test and f"localhost:{port}/healthz" not in test:
            problems.append(f"{name}: the healthcheck does not ask /healthz on port {port}")
    return problems


# --- (g) the simulator behind a profile -------------------------------------------------------

def simulator_problems(deployment: Deployment) -> list[str]:
    simulators = running(deployment, "simulate")
    if not simulators:
        return ["no simulator service"]
    return [f"{name} runs the simulator outside a profile" for name in simulators
            if in_default_profile(deployment.services[name])]


# --- (h) ingesters sharing the stream ---------------------------------------------------------

def ingester_problems(deployment: Deployment) -> list[str]:
    services = deployment.services
    ingesters = running(deployment, "ingest", default_only=True)
    if len(ingesters) < 2:
        return [f"at least two ingesters wanted, found {ingesters}"]
    problems = []
    for name in ingesters:
        service = services[name]
        if int(service.get("scale", 1)) > 1 or int(
                (service.get("deploy") or {}).get("replicas", 1)) > 1:
            problems.append(f"{name}: replicas would share one MQTT client id")
    environments = {name: environment_of(services[name]) for name in ingesters}
    client_ids = [environments[name].get(f"{PREFIX}MQTT_CLIENT_ID") for name in ingesters]
    if None in client_ids or len(set(client_ids)) != len(client_ids):
        problems.append(f"the ingesters' {PREFIX}MQTT_CLIENT_ID must be set and distinct: "
                        f"{client_ids}")
    logins = [login for name in ingesters for login in mqtt_logins(services[name])]
    if len(set(logins)) != len(logins):
        problems.append(f"the ingesters share an MQTT login ({logins}); with "
                        "use_username_as_clientid the login is the client id")
    for name in ingesters:  # under a backlog, receipts on the ingester's own connection wait
        if not environments[name].get(f"{PREFIX}RECEIPTS_MQTT_URL"):
            problems.append(f"{name}: no {PREFIX}RECEIPTS_MQTT_URL")
    groups = {environments[name].get(f"{PREFIX}SHARED_GROUP") for name in ingesters}
    if len(groups) != 1 or not next(iter(groups)):
        problems.append(f"the ingesters must share one {PREFIX}SHARED_GROUP, found {groups}")
    return problems


# --- (i) the plain-HTTP API on loopback only ------------------------------------------------

def published_api_problems(deployment: Deployment) -> list[str]:
    """The API speaks plain HTTP: published, it must be on the host's loopback, where the
    TLS-terminating proxy reaches it (docs/security.md)."""
    problems = []
    for name in running(deployment, "api"):
        for spec in deployment.services[name].get("ports", []):
            if isinstance(spec, dict):  # the long syntax
                host = spec.get("host_ip", "")
            else:  # [HOST_IP:][HOST_PORT:]CONTAINER_PORT
                parts = str(spec).rsplit(":", 2)
                host = parts[0] if len(parts) == 3 else ""
            if host not in ("127.0.0.1", "[::1]", "::1"):
                problems.append(f"{name} publishes {spec!r} beyond the loopback")
    return problems


# --- The tests --------------------------------------------------------------------------------

def test_a_compose_file_follows_the_compose_specification(deployment):
    assert schema_problems(deployment) == []


def test_b_dependencies_exist_and_their_conditions_can_be_met(deployment):
    assert dependency_problems(deployment) == []


def test_b_one_migration_step_runs_before_every_service_that_uses_the_database(deployment):
    assert migration_problems(deployment) == []


def test_c_every_dronelog_variable_is_a_setting(deployment):
    assert unknown_setting_problems(deployment) == []


def test_c_every_services_settings_validate(deployment):
    assert invalid_settings_problems(deployment) == []


def test_c_env_example_defines_every_variable_and_nothing_else(deployment):
    used = variables_used(deployment.raw)
    assert sorted(used - set(deployment.env)) == [], "used in docker-compose.yml, not defined"
    assert sorted(set(deployment.env) - used) == [], "defined in .env.example, never used"


def test_d_every_command_is_a_dronelog_subcommand(deployment, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert command_problems(deployment) == []


def test_e_mounted_files_exist_and_secrets_come_from_env(deployment):
    assert mount_problems(deployment) == []


def test_e_the_broker_runs_the_shipped_configuration_with_every_file_it_names(deployment):
    assert mosquitto_configuration_problems(deployment) == []


def test_e_the_image_is_built_as_described():
    assert image_problems() == []


def test_f_postgres_mosquitto_and_api_have_healthchecks(deployment):
    assert healthcheck_problems(deployment) == []


def test_g_the_simulator_runs_only_in_a_profile(deployment):
    assert simulator_problems(deployment) == []


def test_h_two_ingesters_share_the_stream_with_distinct_client_ids(deployment):
    assert ingester_problems(deployment) == []


def test_i_the_plain_http_api_is_published_on_loopback_only(deployment):
    assert published_api_problems(deployment) == []


def test_every_mqtt_login_of_a_service_has_a_block_in_the_shipped_acl(deployment):
    """A login without a `user` block in deploy/mosquitto/acl may do nothing at all: its
    subscriptions are refused by the broker (silently, for MQTT 3.1.1 clients)."""
    blocks = set(re.findall(r"^user\s+(\S+)", MOSQUITTO_ACL.read_text(encoding="utf-8"),
                            re.MULTILINE))
    logins = {name: mqtt_logins(service) for name, service in deployment.services.items()
              if in_default_profile(service) and is_dronelog(service, deployment.env)}
    assert {name: [login for login in named if login not in blocks]
            for name, named in logins.items() if set(named) - blocks - {None}} == {}
    assert {"dronelog-receipts-1", "dronelog-receipts-2"} <= {
        login for named in logins.values() for login in named}


# --- Every check notices the mistake it is there for ------------------------------------------

def _service(raw: dict, name: str) -> dict:
    return raw["services"][name]


MUTATIONS: list[tuple[str, Callable[[dict], None], Callable[[Deployment], list[str]]]] = [
    ("(a) a misspelt key", lambda raw: _service(raw, "api").update(helthcheck={}),
     schema_problems),
    ("(a) ports not a list", lambda raw: _service(raw, "api").update(ports="8080:8080"),
     schema_problems),
    ("(b) a dependency on a service that does not exist",
     lambda raw: _service(raw, "ingester-1")["depends_on"].update(
         migration={"condition": "service_completed_successfully"}), dependency_problems),
    ("(b) waiting for a long-running service to complete",
     lambda raw: _service(raw, "scheduler")["depends_on"]["mosquitto"].update(
         condition="service_completed_successfully"), dependency_problems),
    ("(b) waiting for health without a healthcheck",
     lambda raw: _service(raw, "api")["depends_on"].update(
         scheduler={"condition": "service_healthy"}), dependency_problems),
    ("(b) a default service depending on the simulator",
     lambda raw: _service(raw, "api")["depends_on"].update(
         simulator={"condition": "service_started"}), dependency_problems),
    ("(b) an ingester not waiting for the broker",
     lambda raw: _service(raw, "ingester-2")["depends_on"].pop("mosquitto"),
     dependency_problems),
    ("(b) a cycle", lambda raw: _service(raw, "postgres").update(
        depends_on={"api": {"condition": "service_started"}}), dependency_problems),
    ("(b) the scheduler not waiting for the migration",
     lambda raw: _service(raw, "scheduler")["depends_on"].pop("migrate"), migration_problems),
    ("(b) a service migrating by itself",
     lambda raw: _service(raw, "api")["environment"].update(DRONELOG_AUTO_MIGRATE="true"),
     migration_problems),
    ("(c) a misspelt setting",
     lambda raw: _service(raw, "ingester-1")["environment"].update(
         DRONELOG_SHARED_GROUPS="ingesters"), unknown_setting_problems),
    ("(c) a setting that does not validate",
     lambda raw: _service(raw, "ingester-1")["environment"].update(
         DRONELOG_SHARED_GROUP="two words"), invalid_settings_problems),
    ("(c) a broker URL that does not parse",
     lambda raw: _service(raw, "scheduler")["environment"].update(
         DRONELOG_MQTT_URL="http://broker:8883"), invalid_settings_problems),
    ("(d) a command that does not exist",
     lambda raw: _service(raw, "scheduler").update(command=["schedule"]), command_problems),
    ("(d) an option that does not exist",
     lambda raw: _service(raw, "simulator")["command"].extend(["--speeed", "2"]),
     command_problems),
    ("(d) a scenario that is not there",
     lambda raw: _service(raw, "sim-sites").update(
         command=["sites", "import", "scenarios/nowhere.toml"]), command_problems),
    ("(e) a mounted file that is not in the repository",
     lambda raw: _service(raw, "mosquitto")["volumes"].__setitem__(
         1, "./deploy/mosquitto/acls:/etc/mosquitto/dronelog.acl:ro"), mount_problems),
    ("(e) the certificates not mounted",
     lambda raw: _service(raw, "mosquitto")["volumes"].pop(3),
     mosquitto_configuration_problems),
    ("(f) postgres without a healthcheck", lambda raw: _service(raw, "postgres").pop(
        "healthcheck"), healthcheck_problems),
    ("(f) the api's healthcheck on another path",
     lambda raw: _service(raw, "api")["healthcheck"].update(
         test=["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen("
               "'http://127.0.0.1:8080/health')"]), healthcheck_problems),
    ("(g) the simulator in the default profile",
     lambda raw: _service(raw, "simulator").pop("profiles"), simulator_problems),
    ("(h) one ingester", lambda raw: raw["services"].pop("ingester-2"), ingester_problems),
    ("(h) two ingesters with one client id",
     lambda raw: _service(raw, "ingester-2")["environment"].update(
         DRONELOG_MQTT_CLIENT_ID="dronelog-ingester-1"), ingester_problems),
    ("(h) two shared groups",
     lambda raw: _service(raw, "ingester-2")["environment"].update(
         DRONELOG_SHARED_GROUP="others"), ingester_problems),
    ("(h) two ingesters' receipts under one login",
     lambda raw: _service(raw, "ingester-2")["environment"].update(
         DRONELOG_RECEIPTS_MQTT_URL=_service(raw, "ingester-1")["environment"][
             "DRONELOG_RECEIPTS_MQTT_URL"]), ingester_problems),
    ("(h) receipts on an ingester's own connection",
     lambda raw: _service(raw, "ingester-1")["environment"].pop("DRONELOG_RECEIPTS_MQTT_URL"),
     ingester_problems),
    ("(h) replicas", lambda raw: _service(raw, "ingester-1").update(deploy={"replicas": 2}),
     ingester_problems),
    ("(i) the api on every interface",
     lambda raw: _service(raw, "api").update(ports=["${API_PORT:-8080}:8080"]),
     published_api_problems),
]


@pytest.mark.parametrize("mutate, check", [(m, c) for _, m, c in MUTATIONS],
                         ids=[description for description, _, _ in MUTATIONS])
def test_each_check_catches_its_mutation(mutate, check, monkeypatch):
    monkeypatch.chdir(ROOT)
    original = load_deployment()
    assert check(original) == [], "the check must pass on the file as it is"
    broken = Deployment(copy.deepcopy(original.raw), dict(original.env))
    mutate(broken.raw)
    assert check(broken) != []


def test_interpolation_follows_compose():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-${EMPTY:-d}-${EMPTY-d}-${UNSET-d}-$${SET}", env) == "x-d--d-${SET}"
    with pytest.raises(ValueError, match="needed"):
        interpolate("${EMPTY:?needed}", env)
    assert variables_used(["$${NOT}", "${A:-b}", {"k": "${C?x}"}]) == {"A", "C"}
