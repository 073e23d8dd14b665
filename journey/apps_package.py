"""`cjm app package zendesk|freshdesk --out FILE.zip`: check a helpdesk app and zip it for upload.

The vendors' own validators cannot run here: `zcli apps:validate` uploads the zip to a Zendesk
account, and the Freshworks CLI (`fdk validate`) is not on the npm registry. So the documented
rules are checked in Python before zipping (sources: notes/realtime-and-apps.md §1.1, §3.2;
Zendesk's validator `zendesk_apps_support`: manifest.rb, location.rb, parameter.rb,
secure_settings.rb, translations.rb, requests.rb). Where the vendor only *warns* (a secure
setting without scopes, a secret-looking setting that is not secure, `http://` in the sources)
cjm refuses: its own apps must be clean. The size cap is cjm's own (neither vendor's exact
limit could be confirmed offline), far above what these apps weigh.

Layout: `apps/<vendor>/` plus the shared sidebar in `apps/common/`, copied to `assets/`
(Zendesk) or `app/scripts`, `app/styles` (Freshdesk).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from journey.errors import ConfigError

VENDORS = ("zendesk", "freshdesk")
MAX_ZIP_BYTES = 2 * 1024 * 1024  # cjm's own cap
TEXT_SUFFIXES = (".html", ".js", ".css", ".json", ".svg")

COMMON_TARGETS = {
    "zendesk": {"sidebar.js": "assets/sidebar.js", "sidebar.css": "assets/sidebar.css"},
    "freshdesk": {"sidebar.js": "app/scripts/sidebar.js", "sidebar.css": "app/styles/sidebar.css"},
}

# ---- Zendesk (ZAF v2) ------------------------------------------------------------------------
ZENDESK_REQUIRED = ("name", "author", "defaultLocale", "location", "frameworkVersion", "version")
ZENDESK_FRAMEWORKS = ("2.0",)
ZENDESK_LOCATIONS = {
    "support": {
        "top_bar",
        "nav_bar",
        "ticket_sidebar",
        "new_ticket_sidebar",
        "user_sidebar",
        "organization_sidebar",
        "background",
        "modal",
        "ticket_editor",
        "system_top_bar",
        "custom_object_record_sidebar",
    },
}
ZENDESK_ICON_LOCATIONS = {"top_bar", "nav_bar", "system_top_bar", "ticket_editor"}
ZENDESK_PARAMETER_TYPES = {
    "text",
    "checkbox",
    "url",
    "number",
    "multiline",
    "hidden",
    "oauth",
    "mtls",
}
ZENDESK_PARAMETER_KEYS = {
    "name",
    "type",
    "required",
    "secure",
    "default",
    "scopes",
    "allowed_domain",
}
ZENDESK_SCOPES = {
    "header",
    "body",
    "url",
    "jwt_secret_key",
    "jwt_claim",
    "basic_auth_username",
    "basic_auth_password",
}
LOCALE = re.compile(r"^[a-z]{2}(-\w{2,3})?$")
SECRET_NAME = re.compile(r"token|key|pwd|password|secret", re.IGNORECASE)

# ---- Freshworks platform 3.0 -----------------------------------------------------------------
FRESHWORKS_PRODUCT_MODULES = {
    "support_ticket": {
        "ticket_sidebar",
        "ticket_top_navigation",
        "ticket_requester_info",
        "ticket_background",
        "ticket_conversation_editor",
        "ticket_attachment",
        "new_ticket_requester_info",
        "new_ticket_background",
        "new_email_requester_info",
        "new_email_background",
        "time_entry_background",
    },
    "support_contact": {"contact_sidebar"},
    "support_company": {"company_sidebar"},
}
FRESHWORKS_COMMON_LOCATIONS = {"full_page_app", "cti_global_sidebar"}
FRESHWORKS_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
FRESHWORKS_IPARAM_TYPES = {
    "text",
    "paragraph",
    "dropdown",
    "email",
    "number",
    "phone_number",
    "radio",
    "multiselect",
    "checkbox",
    "url",
    "date",
    "api_key",
}
FRESHWORKS_MAX_TEMPLATES = 100
APP_CLIENT = "{{{appclient}}}"
TEMPLATE_VAR = re.compile(r"<%=\s*([a-z_]+)\.([A-Za-z0-9_]+)\s*%>")

HTML_REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


class PackageError(ConfigError):
    """The app breaks a vendor rule; the message lists every broken rule on one line."""


@dataclass(frozen=True)
class Package:
    vendor: str
    files: dict[str, bytes]  # path in the zip → content

    @property
    def size(self) -> int:
        return sum(len(content) for content in self.files.values())


def default_apps_dir() -> Path:
    """`apps/` of the source checkout (the apps ship as sources, not inside the wheel)."""
    return Path(__file__).resolve().parents[1] / "apps"


def collect(vendor: str, apps_dir: Path) -> Package:
    """The files of the app as they go into the zip (the vendor folder + the shared sidebar)."""
    if vendor not in VENDORS:
        raise ConfigError(f"unknown app {vendor!r}: use zendesk or freshdesk")
    folder = apps_dir / vendor
    if not (folder / "manifest.json").is_file():
        raise ConfigError(f"{folder}/manifest.json not found: pass --apps-dir (cjm's apps/ folder)")
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    for name, target in COMMON_TARGETS[vendor].items():
        source = apps_dir / "common" / name
        if not source.is_file():
            raise ConfigError(f"{source} not found: the shared sidebar belongs in apps/common/")
        files[target] = source.read_bytes()
    return Package(vendor, files)


def _json(package: Package, path: str, problems: list[str]) -> Any:
    if path not in package.files:
        problems.append(f"{path} is missing")
        return None
    try:
        return json.loads(package.files[path].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{path} is not valid JSON ({exc})")
        return None


def _common_checks(package: Package, problems: list[str], html_root: str) -> None:
    """Rules for any package: no Python, no insecure http:// URLs, every relative asset an
    HTML page names is in the package, and the size cap."""
    for path, content in package.files.items():
        if path.endswith(".py"):
            problems.append(f"{path}: apps hold no Python")
        if path.endswith(TEXT_SUFFIXES) and path != "manifest.json":
            text = content.decode("utf-8", "replace")
            # xmlns in SVG is a name, not a request
            if re.search(r"http://(?!www\.w3\.org/)", text):
                problems.append(f"{path}: uses an insecure http:// URL (HTTPS only)")
        if path.endswith(".html"):
            folder = PurePosixPath(path).parent
            for ref in HTML_REF.findall(content.decode("utf-8", "replace")):
                if re.match(r"^(https:|data:|#|\{\{)", ref):
                    continue
                target = (folder / ref.split("?")[0]).as_posix()
                if target not in package.files:
                    problems.append(f"{path}: refers to {ref}, which is not in the package")
    if html_root and not any(p.startswith(html_root) for p in package.files):
        problems.append(f"no files under {html_root}")
    if package.size > MAX_ZIP_BYTES:
        problems.append(f"the app weighs {package.size} bytes, over cjm's cap of {MAX_ZIP_BYTES}")


# ---- Zendesk ---------------------------------------------------------------------------------


def _zendesk_location_url(url: Any, where: str, package: Package, problems: list[str]) -> None:
    if not isinstance(url, str) or not url:
        problems.append(f"{where}: needs a url")
    elif "{{setting." in url or url.startswith("https://"):
        return
    elif re.match(r"^https?://localhost([:/]|$)", url):
        return
    elif url.startswith("assets/"):
        if url.split("?")[0] not in package.files:
            problems.append(f"{where}: {url} is not in the package")
    else:
        problems.append(f"{where}: {url!r} must be https://…, localhost or assets/…")


def check_zendesk(package: Package) -> list[str]:
    problems: list[str] = []
    manifest = _json(package, "manifest.json", problems)
    if not isinstance(manifest, dict):
        return problems or ["manifest.json must be a JSON object"]
    missing = [k for k in ZENDESK_REQUIRED if k not in manifest]
    if missing:
        problems.append(f"manifest.json lacks {', '.join(missing)}")
    author = manifest.get("author")
    if not isinstance(author, dict) or not author.get("name") or not author.get("email"):
        problems.append("manifest.json author needs a name and an email")
    if manifest.get("frameworkVersion") not in ZENDESK_FRAMEWORKS:
        problems.append(f"frameworkVersion must be one of {', '.join(ZENDESK_FRAMEWORKS)}")
    locale = manifest.get("defaultLocale")
    for path in package.files:
        match = re.match(r"^translations/(.*)\.json$", path)
        if match and not LOCALE.match(match.group(1)):
            problems.append(f"{path}: {match.group(1)!r} is not a locale name")
    translations = _json(package, f"translations/{locale}.json", problems)
    names: dict[str, Any] | None = None
    if isinstance(translations, dict):
        app = translations.get("app")
        required = (
            ["name"]
            if manifest.get("private", True)
            else [
                "name",
                "short_description",
                "long_description",
                "installation_instructions",
            ]
        )
        if not isinstance(app, dict) or any(k not in app for k in required):
            problems.append(f"translations/{locale}.json: app needs {', '.join(required)}")
        else:
            names = app.get("parameters") or {}
    locations = manifest.get("location")
    if not isinstance(locations, dict) or not locations:
        problems.append("manifest.json location must name at least one product and location")
        locations = {}
    for product, places in locations.items():
        allowed = ZENDESK_LOCATIONS.get(product)
        if allowed is None or not isinstance(places, dict):
            problems.append(f"location.{product}: unknown product (use support)")
            continue
        for place, spec in places.items():
            where = f"location.{product}.{place}"
            if place not in allowed:
                problems.append(f"{where}: unknown location")
                continue
            url = spec if isinstance(spec, str) else (spec or {}).get("url")
            _zendesk_location_url(url, where, package, problems)
            if place in ZENDESK_ICON_LOCATIONS and not any(
                p in package.files
                for p in (f"assets/icon_{place}.svg", f"assets/icon_{place}_inactive.png")
            ):
                problems.append(f"{where}: needs assets/icon_{place}.svg")
    parameters = manifest.get("parameters", [])
    if not isinstance(parameters, list):
        problems.append("manifest.json parameters must be a list")
        parameters = []
    seen: set[str] = set()
    for parameter in parameters:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not name:
            problems.append("every parameter needs a name")
            continue
        where = f"parameter {name}"
        if name in seen:
            problems.append(f"{where}: declared twice")
        seen.add(name)
        extra = set(parameter) - ZENDESK_PARAMETER_KEYS
        if extra:
            problems.append(f"{where}: unknown attribute(s) {', '.join(sorted(extra))}")
        kind = parameter.get("type", "text")
        if kind not in ZENDESK_PARAMETER_TYPES:
            problems.append(f"{where}: type {kind!r} is not one of Zendesk's parameter types")
        secure, scopes = bool(parameter.get("secure")), parameter.get("scopes")
        if scopes is not None and not secure:
            problems.append(f"{where}: scopes are only for secure parameters")
        if secure and kind == "oauth":
            problems.append(f"{where}: an oauth parameter cannot be secure")
        if secure and not scopes:
            problems.append(f"{where}: a secure parameter needs scopes (token exposure risk)")
        if scopes and (not isinstance(scopes, list) or set(scopes) - ZENDESK_SCOPES):
            problems.append(f"{where}: scopes must be among {', '.join(sorted(ZENDESK_SCOPES))}")
        if (secure or kind == "hidden") and "default" in parameter:
            problems.append(f"{where}: a secure or hidden parameter must not ship a default")
        if kind in ("text", "password") and not secure and SECRET_NAME.search(name):
            problems.append(f"{where}: looks like a secret, so it must be secure")
        if names is not None and name not in names:
            problems.append(f"translations/{locale}.json: app.parameters.{name} needs a label")
    _common_checks(package, problems, "assets/")
    return problems


# ---- Freshworks platform 3.0 -----------------------------------------------------------------


def _freshworks_location(spec: Any, where: str, package: Package, problems: list[str]) -> None:
    if not isinstance(spec, dict):
        problems.append(f"{where}: must be an object with url and icon")
        return
    for key in ("url", "icon"):
        value = spec.get(key)
        if not isinstance(value, str) or f"app/{value}" not in package.files:
            problems.append(f"{where}.{key}: app/{value} is not in the package")
    icon = spec.get("icon")
    if isinstance(icon, str) and not icon.endswith(".svg"):
        problems.append(f"{where}.icon: use an SVG icon")
    url = spec.get("url")
    page = package.files.get(f"app/{url}") if isinstance(url, str) else None
    if page is not None and APP_CLIENT.encode() not in page:
        problems.append(f"app/{url}: must load the app client ({APP_CLIENT})")


def check_freshdesk(package: Package) -> list[str]:
    problems: list[str] = []
    manifest = _json(package, "manifest.json", problems)
    if not isinstance(manifest, dict):
        return problems or ["manifest.json must be a JSON object"]
    if manifest.get("platform-version") != "3.0":
        problems.append('manifest.json platform-version must be "3.0"')
    if "product" in manifest or "whitelisted-domains" in manifest:
        problems.append("manifest.json uses platform 2.x keys (product, whitelisted-domains)")
    engines = manifest.get("engines")
    if not isinstance(engines, dict) or not engines.get("node") or not engines.get("fdk"):
        problems.append("manifest.json engines needs node and fdk versions")
    modules = manifest.get("modules")
    if not isinstance(modules, dict):
        problems.append("manifest.json needs modules")
        modules = {}
    products = [m for m in modules if m != "common"]
    if not products:
        problems.append("modules: common cannot stand alone; add a product module (support_ticket)")
    for module in products:
        allowed = FRESHWORKS_PRODUCT_MODULES.get(module)
        if allowed is None:
            problems.append(f"modules.{module}: unknown product module")
            continue
        for place, spec in ((modules[module] or {}).get("location") or {}).items():
            where = f"modules.{module}.location.{place}"
            if place not in allowed:
                problems.append(f"{where}: unknown location for {module}")
            else:
                _freshworks_location(spec, where, package, problems)
    common = modules.get("common") or {}
    for place, spec in (common.get("location") or {}).items():
        where = f"modules.common.location.{place}"
        if place not in FRESHWORKS_COMMON_LOCATIONS:
            problems.append(f"{where}: not a common location (full_page_app, cti_global_sidebar)")
        else:
            _freshworks_location(spec, where, package, problems)
    iparams = _json(package, "config/iparams.json", problems)
    declared: dict[str, Any] = iparams if isinstance(iparams, dict) else {}
    for name, spec in declared.items():
        where = f"config/iparams.json {name}"
        if not isinstance(spec, dict) or not spec.get("display_name"):
            problems.append(f"{where}: needs display_name")
            continue
        if spec.get("type") not in FRESHWORKS_IPARAM_TYPES:
            problems.append(f"{where}: type {spec.get('type')!r} is not an iparam type")
        for flag in ("required", "secure"):
            if flag in spec and not isinstance(spec[flag], bool):
                problems.append(f"{where}: {flag} must be true or false")
        if SECRET_NAME.search(name) and not spec.get("secure"):
            problems.append(f"{where}: looks like a secret, so it must be secure")
    templates = _json(package, "config/requests.json", problems)
    templates = templates if isinstance(templates, dict) else {}
    named = set((common.get("requests") or {}).keys())
    if named != set(templates):
        problems.append(
            "modules.common.requests and config/requests.json must name the same templates "
            f"(manifest: {sorted(named)}, requests.json: {sorted(templates)})"
        )
    if len(templates) > FRESHWORKS_MAX_TEMPLATES:
        problems.append(f"at most {FRESHWORKS_MAX_TEMPLATES} request templates")
    for name, template in templates.items():
        _check_template(name, template, declared, problems)
    _common_checks(package, problems, "app/")
    return problems


def _check_template(
    name: str, template: Any, iparams: Mapping[str, Any], problems: list[str]
) -> None:
    where = f"config/requests.json {name}"
    schema = template.get("schema") if isinstance(template, dict) else None
    if not isinstance(schema, dict):
        problems.append(f"{where}: needs a schema")
        return
    if schema.get("method") not in FRESHWORKS_METHODS:
        problems.append(f"{where}: method must be one of {', '.join(sorted(FRESHWORKS_METHODS))}")
    if schema.get("protocol", "https") != "https":
        problems.append(f"{where}: protocol must be https")
    host = schema.get("host")
    if not isinstance(host, str) or not host or "/" in host or ":" in host.replace("%>", ""):
        problems.append(f"{where}: host must be a bare host name (no scheme, port or path)")
    path = schema.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        problems.append(f"{where}: path must start with /")
    text = json.dumps(schema)
    for scope, variable in TEMPLATE_VAR.findall(text):
        if scope == "iparam" and variable not in iparams:
            problems.append(f"{where}: iparam.{variable} is not declared in config/iparams.json")
    auth = json.dumps((schema.get("headers") or {}).get("Authorization", ""))
    for scope, variable in TEMPLATE_VAR.findall(auth):
        if scope == "iparam" and not (iparams.get(variable) or {}).get("secure"):
            problems.append(f"{where}: the Authorization header must use a secure iparam")


CHECKS: dict[str, Callable[[Package], list[str]]] = {
    "zendesk": check_zendesk,
    "freshdesk": check_freshdesk,
}


def validate(package: Package) -> None:
    problems = CHECKS[package.vendor](package)
    if problems:
        raise PackageError(f"apps/{package.vendor}: " + "; ".join(dict.fromkeys(problems)))


def zip_bytes(package: Package) -> bytes:
    """The zip, deterministic (fixed timestamps, sorted names): same sources, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.files):
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, package.files[path])
    return buffer.getvalue()


def package_app(vendor: str, out: Path, *, apps_dir: Path | None = None) -> Package:
    """Check `apps/<vendor>` against the vendor's rules and write the upload zip to `out`."""
    if out.suffix != ".zip":
        raise ConfigError(f"--out {out}: the upload file must end in .zip")
    package = collect(vendor, apps_dir or default_apps_dir())
    validate(package)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(zip_bytes(package))
    partial.replace(out)
    return package
