"""The journey's steps, in order, with what each needs to have passed before it."""

from __future__ import annotations

from rehearsal import (
    steps_api,
    steps_boot,
    steps_console,
    steps_jobs,
    steps_metrics,
    steps_retention,
    steps_upload,
)
from rehearsal.journey import Step

STEPS = [
    Step(1, "migration: the deployment's trigger, before the services", steps_boot.migrate),
    Step(2, "services boot", steps_boot.boot, needs=(1,)),
    Step(3, "create a user, log in, refresh", steps_api.create_user, needs=(2,)),
    Step(4, "generate text; other routes, same token", steps_api.generate, needs=(3,)),
    Step(5, "stream: SSE and WebSocket", steps_api.stream, needs=(3,)),
    Step(6, "batch job, results, validation", steps_jobs.batch_job, needs=(3,)),
    Step(7, "upload prompt files: S3 trigger, state machine", steps_upload.upload,
         needs=(3,)),
    Step(8, "dashboard metrics in CloudWatch", steps_metrics.metrics, needs=(2,)),
    Step(9, "kill a worker mid-job", steps_jobs.kill_worker, needs=(3,)),
    Step(10, "bypass the gateway", steps_api.bypass, needs=(2,)),
    Step(11, "traces: the X-Ray service map", steps_metrics.traces, needs=(4, 6)),
    Step(12, "log out: the token is refused, at the gateway too", steps_api.logout, needs=(3,)),
    Step(13, "the web console: log in, a page, log out", steps_console.console, needs=(3,)),
    Step(14, "validate texts: quality and similarity", steps_api.validate, needs=(3,)),
    Step(15, "retention: the daily purge deletes an old job", steps_retention.purge,
         needs=(6,)),
]
