"""The AWS deployment, rehearsed: `make rehearse` (`python -m rehearsal`, run from `infra/`).

The production stage is synthesised offline; the rehearsal reads from its CloudFormation
templates each task definition's command, environment and secrets, each Lambda's handler,
asset and environment, the APIs' routes and the queues' attributes, "deploys" what the journey
uses to moto (in process) and to local stand-ins (PostgreSQL for Aurora, a Redis Cluster for
ElastiCache), starts the containers' commands as processes, and drives a user's journey through
an emulated API Gateway and ALB into the API process. Only endpoints are substituted; the list
is printed. Module map:

- `assembly`      the cloud assembly: synthesis, stacks in deployment order, Lambda assets
- `template`      the CloudFormation resolver (intrinsics, pseudo parameters, dynamic references)
- `deploy`        resources -> physical ids and attributes, deployed lazily in stack order;
                  `deployers_*` create each type in moto or a stand-in, `names` names the rest
- `aws`           moto's server in process, boto3 clients against it
- `stand_ins`     PostgreSQL for Aurora and a Redis Cluster for ElastiCache, with TLS (`relay`)
- `image`         an image-like environment: the project installed from its wheel
- `processes`     ECS containers as local processes (environment, secrets, read-only root, logs)
- `services`      ECS services: one task each, registered in its target group when healthy
- `ecs_tasks`     `run_task` calls recorded by moto -> the task's containers as processes
- `state_machines`  moto's ASL interpreter on, its ECS `.sync` integration completed;
                  `deployers_states` creates the state machines, `batch_machine` reads them
- `emf`           CloudWatch embedded-metric-format lines -> PutMetricData
- `lambdas`       Lambda functions in clean interpreters (`lambda_runner` runs inside them)
- `events`        EventBridge rule targets: tap queues -> Lambda, retries, dead-letter queues
                  (`event_input` builds a target's input)
- `gateway`, `websocket`, `alb`   API Gateway (REST, WebSocket) and the load balancer;
                  `authorizers` (with their result cache) and `iam_policy` (policy evaluation)
- `journey`       the steps' runner and shared session; `steps` lists them: `steps_boot`,
                  `steps_api`, `steps_jobs` (with `job_client`), `steps_upload`, `steps_metrics`
- `ledger`        substitutions, what is emulated and what is not; `report` prints it all
- `run`           puts it together and cleans up; `__main__` the command line
"""

import sys
from pathlib import Path

# The rehearsal uses the repository's test support (tests/support/redis_cluster.py): the
# repository root goes on sys.path before site-packages, where a third-party distribution
# installs a top-level `tests` package of its own.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(1, _REPO_ROOT)
