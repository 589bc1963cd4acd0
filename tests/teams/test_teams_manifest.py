"""The Teams app manifest validates against the official schema, and the package script zips it."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from jsonschema import Draft6Validator
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TEAMS = ROOT / "manifests" / "teams"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "MicrosoftTeams.v1.30.schema.json").read_text())
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def load_packager() -> ModuleType:
    spec = importlib.util.spec_from_file_location("teams_package", TEAMS / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate(manifest: dict) -> list[str]:
    # The schema says draft-04 but uses `const`; Draft 6 reads both.
    return [f"{list(e.path)}: {e.message}" for e in Draft6Validator(SCHEMA).iter_errors(manifest)]


def test_committed_manifest_is_valid() -> None:
    manifest = json.loads((TEAMS / "manifest.json").read_text())
    assert validate(manifest) == []
    assert manifest["manifestVersion"] == SCHEMA["properties"]["manifestVersion"]["const"]
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    [bot] = manifest["bots"]
    assert set(bot["scopes"]) == {"team", "personal", "groupChat"}
    titles = {c["title"] for lst in bot["commandLists"] for c in lst["commands"]}
    assert titles == {"pending", "help"}


def test_schema_is_strict_enough_to_catch_mistakes() -> None:
    manifest = json.loads((TEAMS / "manifest.json").read_text())
    manifest["bots"][0]["scopes"] = ["channel"]
    manifest["bogus"] = True
    assert len(validate(manifest)) == 2


def test_icons_have_the_sizes_teams_requires() -> None:
    with Image.open(TEAMS / "color.png") as color:
        assert (color.format, color.size) == ("PNG", (192, 192))
    with Image.open(TEAMS / "outline.png") as outline:
        assert (outline.format, outline.size, outline.mode) == ("PNG", (32, 32), "RGBA")
        # Outline icons are white on transparent.
        pixels = [outline.getpixel((x, y)) for x in range(32) for y in range(32)]
        assert {p[:3] for p in pixels if p[3] > 0} == {(255, 255, 255)}
        assert any(p[3] == 0 for p in pixels)


def test_package_zips_a_valid_manifest_with_the_app_id(tmp_path: Path) -> None:
    packager = load_packager()
    target = tmp_path / "app.zip"
    assert packager.main(["--app-id", APP_ID, "--website-url", "https://bot.example.org", "--output", str(target)]) == 0
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
    assert validate(manifest) == []
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["bot.example.org"]
    assert manifest["developer"]["privacyUrl"] == "https://bot.example.org/privacy"


def test_package_refuses_a_missing_or_malformed_app_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packager = load_packager()
    for argv in ([], ["--app-id", "not-a-guid"]):
        with pytest.raises(SystemExit):
            packager.main([*argv, "--output", str(tmp_path / "x.zip")])
    assert "GUID" in capsys.readouterr().err
