"""The hitl-chatops bot as a Flyte 2 app, for teams that run it on the Flyte they already have.

Deploy (from the repository root, with a Flyte config pointing at your cluster):

    flyte create secret hitl-chatops-secret --value "$(openssl rand -hex 32)"   # also the plugin's HITL_CHATOPS_SECRET
    flyte create secret slack-bot-token --value xoxb-...
    flyte create secret slack-signing-secret --value ...
    HITL_CHATOPS_STORE=s3://my-bucket/hitl-chatops python manifests/flyte/bot_app.py

The app's image installs `hitl-chatops[slack,teams,s3]` pinned to this checkout's version, the one the
Dockerfile builds. The module defines `bot_env` and nothing else at import time; deploying happens only
under `__main__`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import flyte
import flyte.app

APP_NAME = "hitl-chatops"
PORT = 8080
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
VERSION = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
PACKAGE = f"hitl-chatops[slack,teams,s3]=={VERSION}"
# Taken from the deploying shell, so the bot uses the store your Flyte tasks write to (the plugin reads the same
# variable). Set HITL_CHATOPS_PUBLIC_URL to the app's endpoint (printed by the first deploy) for form links.
ENV_VARS = {
    "HITL_CHATOPS_STORE": os.environ.get("HITL_CHATOPS_STORE", "s3://my-bucket/hitl-chatops"),
    "HITL_CHATOPS_LOG_FORMAT": "json",
}
if public_url := os.environ.get("HITL_CHATOPS_PUBLIC_URL"):
    ENV_VARS["HITL_CHATOPS_PUBLIC_URL"] = public_url

image = flyte.Image.from_debian_base(python_version=(3, 12), name="hitl-chatops-bot").with_pip_packages(PACKAGE)

bot_env = flyte.app.AppEnvironment(
    name=APP_NAME,
    description="Slack and Teams bot answering hitl-chatops events (human-in-the-loop steps).",
    image=image,
    # The same command as the container image's ENTRYPOINT + CMD; no fserve: the bot is its own server.
    command=["hitl-chatops", "serve", "--host", "0.0.0.0", "--port", str(PORT)],  # noqa: S104 - in-container
    port=PORT,
    # Slack, Teams and the web form cannot present a Flyte token; the bot authenticates every route
    # itself (Slack signatures, Bot Framework JWTs, signed form links, bearer HITL_CHATOPS_SECRET).
    requires_auth=False,
    # Always on: Slack wants an ack within 3 s and the reconciler runs in every replica, so never scale to zero.
    # Replicas are stateless (the store is the only state), so more of them only add capacity.
    scaling=flyte.app.Scaling(replicas=(2, 4), metric=flyte.app.Scaling.Concurrency(100)),
    resources=flyte.Resources(cpu="250m", memory="512Mi"),
    env_vars=ENV_VARS,
    secrets=[
        flyte.Secret(key="hitl-chatops-secret", as_env_var="HITL_CHATOPS_SECRET"),
        flyte.Secret(key="slack-bot-token", as_env_var="SLACK_BOT_TOKEN"),
        flyte.Secret(key="slack-signing-secret", as_env_var="SLACK_SIGNING_SECRET"),
    ],
)


if __name__ == "__main__":
    flyte.init_from_config()
    for deployment in flyte.deploy(bot_env):
        print(deployment.summary_repr())  # noqa: T201 - the deploy script reports to the person running it
