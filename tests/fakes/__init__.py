"""The outside world, faked at the network edge: one fake of each service, shared by tests and bench.

Each stands for a real service, talks its wire protocol on loopback to the real client library, and
records what it was asked (each module says what):

- `slack`: Slack's Web API, `response_url`s and Socket Mode; Slack's request signatures.
- `bot_connector`: Microsoft's Bot Connector, with Bot Framework's OpenID keys.
- `microsoft_login`: Microsoft's login (Entra ID) over HTTPS with a test CA, for MSAL.
- `graph`: Microsoft Graph's group members.
- `flyte`: Flyte's control plane (RunService) for `flyte.remote`, a hung one, and a local run in a thread.
- `s3`: moto's S3 server; `azure`: Azurite; `gcs`: fake-gcs-server behind GCS's XML API.
- `events`: a task's side of the protocol: a pending event as the plugin writes it, without Flyte.
- `loopback`: what they stand on (a free port, an aiohttp app on its own thread, a recording proxy).

Importing this package imports none of them: `tests/conftest.py` starts only what a test asks for.
"""
