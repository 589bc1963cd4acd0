"""Zip the Teams app package: manifest.json (with your bot's app id) + color.png + outline.png.

    python manifests/teams/package.py --app-id <MicrosoftAppId> [--website-url https://bot.example.com]

The app id defaults to `MicrosoftAppId`, the website to `HITL_CHATOPS_PUBLIC_URL`. Upload the zip in
Teams (Apps → Manage your apps → Upload an app) or the Developer Portal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ICONS = ("color.png", "outline.png")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def build_manifest(app_id: str, website_url: str | None = None, version: str | None = None) -> dict[str, Any]:
    """The committed manifest with this deployment's values filled in."""
    if not GUID.fullmatch(app_id):
        raise ValueError(f"the app id must be the bot's Microsoft App ID, a GUID (got {app_id!r})")
    manifest: dict[str, Any] = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
    manifest["id"] = app_id
    manifest["bots"][0]["botId"] = app_id
    if version:
        manifest["version"] = version
    if website_url:
        base = website_url.rstrip("/")
        if not base.startswith("https://"):
            raise ValueError("the website URL must start with https://")
        manifest["developer"].update(websiteUrl=f"{base}/", privacyUrl=f"{base}/privacy", termsOfUseUrl=f"{base}/terms")
        host = base.removeprefix("https://").split("/", 1)[0]
        manifest["validDomains"] = sorted({*manifest.get("validDomains", []), host})
    return manifest


def package(output: Path, app_id: str, website_url: str | None = None, version: str | None = None) -> Path:
    manifest = build_manifest(app_id, website_url, version)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        for icon in ICONS:
            archive.write(HERE / icon, icon)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app-id", default=os.environ.get("MicrosoftAppId"), help="the bot's Microsoft App ID")  # noqa: SIM112 (Azure's name)
    parser.add_argument("--website-url", default=os.environ.get("HITL_CHATOPS_PUBLIC_URL"))
    parser.add_argument("--version", help="app version (semver); bump it on every upload")
    parser.add_argument("--output", type=Path, default=Path("dist/hitl-chatops-teams.zip"))
    args = parser.parse_args(argv)
    if not args.app_id:
        parser.error("pass --app-id or set MicrosoftAppId (the Azure Bot's Microsoft App ID)")
    try:
        path = package(args.output, args.app_id, args.website_url, args.version)
    except ValueError as error:
        parser.error(str(error))
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
