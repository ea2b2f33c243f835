"""moto's server, in this process: every AWS API the deployment uses, on 127.0.0.1.

In process (`ThreadedMotoServer`), so that the rehearsal can also read moto's backends directly
(e.g. what the API posted to a WebSocket connection). It runs state machines
(`rehearsal.state_machines`). Every process the rehearsal starts gets
`AWS_ENDPOINT_URL` and static test credentials: they stand in for the ECS task role's and the
Lambda execution role's credentials.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from rehearsal import state_machines

#: moto's default account; the templates' account is mapped onto it when they differ.
MOTO_ACCOUNT = "123456789012"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "rehearsal-test-key",
    "AWS_SECRET_ACCESS_KEY": "rehearsal-test-secret",  # noqa: S105 - moto accepts any
}


class MotoAws:
    def __init__(self, account: str = MOTO_ACCOUNT) -> None:
        self.account = account
        self._server: ThreadedMotoServer | None = None
        self.url = ""

    def start(self) -> None:
        # moto's request log would drown the rehearsal's own output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if self.account != MOTO_ACCOUNT:
            os.environ["MOTO_ACCOUNT_ID"] = self.account
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        state_machines.configure(self.url, port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def environment(self) -> dict[str, str]:
        """What every rehearsed process gets to reach emulated AWS."""
        return {"AWS_ENDPOINT_URL": self.url, **CREDENTIALS}

    def client(self, service: str, region: str) -> Any:
        return _client(self.url, service, region)


@cache
def _client(url: str, service: str, region: str) -> Any:
    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 2}),
    )
