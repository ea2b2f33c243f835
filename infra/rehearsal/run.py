"""Puts the rehearsal together: synthesis, moto, the stand-ins, the deployment, the image, the
Lambda and container runtimes, the gateways; then the journey, and cleanup whatever happens.

Everything lives in one run directory (not under /tmp: that is a container's scratch path, and
the read-only root's bind mounts would hide the run's own files from its processes).
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tests.support.otlp import Collector
from textnlp import deployment as deployment_paths

from rehearsal import (
    assembly,
    deployers_compute,
    deployers_data,
    deployers_messaging,
    deployers_states,
    deployers_storage,
    image,
)
from rehearsal.alb import AlbTransport, LoadBalancers, TargetGroups
from rehearsal.aws import MotoAws
from rehearsal.deploy import Deployment
from rehearsal.ecs_tasks import RunTaskObserver
from rehearsal.emf import EmfForwarder
from rehearsal.events import EventBridgeTargets
from rehearsal.gateway import RestApi, RestGatewayTransport
from rehearsal.lambdas import FunctionSpec, LambdaService
from rehearsal.ledger import Ledger
from rehearsal.processes import ContainerLauncher, SecretReader, container_specs
from rehearsal.services import Services
from rehearsal.stand_ins import StandIns
from rehearsal.state_machines import EcsIntegration
from rehearsal.traces import stand_in_for_collectors
from rehearsal.websocket import WebSocketApi

DEPLOYERS = {
    **deployers_storage.DEPLOYERS, **deployers_messaging.DEPLOYERS,
    **deployers_compute.DEPLOYERS, **deployers_data.DEPLOYERS, **deployers_states.DEPLOYERS,
}
NOT_EMULATED = (
    "IAM policy evaluation (task, execution and Lambda roles; bucket and queue policies): "
    "every process holds the same test credentials (a scheduled rule's role alone is evaluated, "
    "when it starts an ECS task)",
    "Route 53 and DNS (hosts are mapped in process), CloudFront, ACM certificates",
    "the GPU: the generation service runs the embedded SmolLM2-135M on CPU",
    "SageMaker endpoints and Bedrock (the journey uses the embedded model)",
    "AWS Backup, CodePipeline/CodeBuild/CodeDeploy, "
    "GuardDuty, Config, Security Hub, CloudWatch alarms and Logs",
)


@dataclass
class Options:
    cdk_out: Path | None = None
    #: Reuse (or build once into) this directory's image instead of building one per run.
    image_dir: Path | None = None
    keep: bool = False
    verbose: bool = False


@dataclass
class Rehearsed:
    """The running rehearsal, as the journey sees it."""

    run_dir: Path
    ledger: Ledger
    aws: MotoAws
    stand_ins: StandIns
    deployment: Deployment
    launcher: ContainerLauncher
    lambdas: LambdaService
    events: EventBridgeTargets
    tasks: RunTaskObserver
    services: Services
    balancers: LoadBalancers
    rest_apis: list[RestApi]
    websocket_apis: list[WebSocketApi]
    emf: EmfForwarder
    collector: Collector

    def gateway_transport(self) -> RestGatewayTransport:
        return RestGatewayTransport(self.rest_apis)

    def alb_transport(self) -> AlbTransport:
        return AlbTransport(self.balancers)


def _run_dir() -> Path:
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path.home() / ".cache"
    directory = Path(tempfile.mkdtemp(prefix="textnlp-rehearsal-", dir=base))
    directory.chmod(0o755)  # the postgres user must reach its data directory
    return directory


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT interrupt the run, so that cleanup runs (a shell's background job
    starts with SIGINT ignored: it is set explicitly)."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)


def check_location(prefix: Path | None = None) -> None:
    """The containers' scratch path (``/tmp``) is a fresh mount in each container: a checkout
    or a virtual environment below it would vanish from the containers' view."""
    where = (prefix or Path(sys.prefix)).resolve()
    scratch = Path(deployment_paths.SCRATCH_PATH)
    if where == scratch or scratch in where.parents:
        raise RuntimeError(
            f"the virtual environment {where} is under {scratch}, the containers' scratch "
            f"path, which each rehearsed container sees empty: clone the project elsewhere"
        )


@contextmanager
def rehearsal(options: Options, say: Callable[[str], None] = print) -> Iterator[Rehearsed]:
    check_location()
    _stop_on_signals()
    run_dir = _run_dir()
    ledger = Ledger()
    aws = MotoAws()
    cleanup: list[Callable[[], None]] = []
    log = say

    started = time.monotonic()
    try:
        cdk_out = options.cdk_out or run_dir / "cdk.out"
        if not (cdk_out / "manifest.json").exists():
            log(f"synthesising the {assembly.STAGE} stage to {cdk_out} ...")
            assembly.synthesise(cdk_out)
        cloud = assembly.load(cdk_out)
        aws.start()
        cleanup.append(aws.stop)
        stand_ins = StandIns(run_dir / "stand-ins")
        cleanup.append(stand_ins.stop)
        deployment = Deployment(cloud, aws, ledger, stand_ins, DEPLOYERS, run_dir / "deploy")
        log("deploying to moto and the stand-ins ...")
        deployment.deploy()
        if options.image_dir is None:
            log("building the image (the project's wheel) ...")
        built = image.build(options.image_dir or run_dir)
        ledger.emulate("the container images: the project's wheel installed into a venv "
                       "(non-editable, as the Dockerfiles' pip install), dependencies from "
                       "the development venv, of which each image's processes can import only "
                       "what its Dockerfile's extras install")
        ca_bundle = stand_ins.ca_bundle(run_dir / "ca-bundle.pem")
        substitutions = {**aws.environment(), "SSL_CERT_FILE": str(ca_bundle)}
        ledger.substitute("AWS API endpoints (every process)", "https://<service>.<region>."
                          "amazonaws.com, task/Lambda role credentials",
                          f"AWS_ENDPOINT_URL={aws.url}, static test credentials")
        ledger.substitute("TLS trust (every process)", "the system CAs (Amazon's CAs sign "
                          "Aurora's and ElastiCache's certificates)",
                          f"SSL_CERT_FILE={ca_bundle} (system CAs + the stand-ins' CA)")
        emf = EmfForwarder(aws.client("cloudwatch", cloud.stacks[-1].region))
        ledger.emulate("the awslogs driver's embedded-metric-format extraction "
                       "(EMF lines -> PutMetricData)")
        launcher = ContainerLauncher(
            image=built, ledger=ledger, run_dir=run_dir, emf=emf,
            secrets=SecretReader(deployment.secret_value), substitutions=substitutions,
        )
        cleanup.append(launcher.stop_all)
        collector = Collector()
        cleanup.append(collector.close)
        stand_in_for_collectors(deployment, launcher, collector, ledger)
        tasks = RunTaskObserver(deployment, aws, launcher)
        EcsIntegration(tasks.stopped, ledger).install()
        lambdas = LambdaService(run_dir, ledger, aws.environment())
        cleanup.append(lambdas.stop_all)
        for function in deployment.deployed("AWS::Lambda::Function"):
            lambdas.register(FunctionSpec.from_deployed(function))
        events = EventBridgeTargets(deployment, aws, lambdas, ledger)
        events.start()
        cleanup.append(events.stop)
        targets = TargetGroups()
        balancers = LoadBalancers(deployment, targets, ledger)
        rest_apis = [RestApi(api, deployment, lambdas, balancers, ledger)
                     for api in deployment.described("AWS::ApiGateway::RestApi")]
        websocket_apis = [
            WebSocketApi(api, deployment, lambdas, balancers, ledger)
            for api in deployment.described("AWS::ApiGatewayV2::Api")
            if api.properties.get("ProtocolType") == "WEBSOCKET"
        ]
        _management_endpoints(websocket_apis, launcher, aws)
        for host, balancer in balancers.aliases.items():
            ledger.substitute(
                host, f"Route 53 alias of {balancer.physical.attributes['DNSName']}",
                "the ALB emulation (in process) -> the target group's tasks")
        services = Services(deployment, launcher, targets, ledger)
        for definition in deployment.deployed("AWS::ECS::TaskDefinition"):
            for spec in container_specs(definition):
                if spec.command:
                    launcher.preview(spec)
        for what in NOT_EMULATED:
            ledger.leave_out(what)
        log(f"ready in {time.monotonic() - started:.0f}s (run directory {run_dir})")
        yield Rehearsed(
            run_dir, ledger, aws, stand_ins, deployment, launcher, lambdas, events,
            tasks, services, balancers, rest_apis,
            websocket_apis, emf, collector,
        )
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # cleaning up: go on with the rest
                log(f"warning: cleanup step failed: {exc}")
        if options.keep:
            log(f"kept the run directory {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


def _management_endpoints(apis: list[WebSocketApi], launcher: ContainerLauncher,
                          aws: MotoAws) -> None:
    """The WebSocket APIs' Management API URLs, wherever a container is given one -> moto."""
    for api in apis:
        for url in (api.url, api.endpoint, *api.domain_urls):
            launcher.url_substitutions[url.replace("wss://", "https://")] = aws.url
