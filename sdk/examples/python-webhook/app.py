"""Generic outbound webhook notifier for ProofPix, written in Python.

It proves the plugin contract is language-neutral: this file is compiled to a
WebAssembly component with componentize-py against `wit/since_v0.2.0` and runs
in the same sandbox as the Rust plugins. It posts each notification as a JSON
document to one URL (a Zapier catch hook, a Power Automate HTTP trigger, your
own endpoint) and signs it with HMAC-SHA256. The plugin never sees the URL's
secret part or the signing key: the host substitutes `{secret.url}` when it
sends the request and computes the signature through `verify.hmac-sign`.

Signature (what a receiver checks):
    x-proofpix-timestamp: <milliseconds since the Unix epoch>
    x-proofpix-signature: v1=<hex HMAC-SHA256 of "v1:<timestamp>:<body>">
Reject requests whose timestamp is more than five minutes old.
"""

import json
from typing import List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports import manifest, notifier, source
from wit_world.imports import config, http, log, types, verify

VERSION = "0.1.0"
# Retry-After when the receiver sends 429 without one.
DEFAULT_RETRY_MS = 30_000


def _field(name, label, help, kind, required=False, secret=False, default=None, placeholder=None):
    return manifest.ConfigField(
        name=name,
        label=label,
        help=help,
        kind=kind,
        required=required,
        secret=secret,
        default_value=default,
        choices=[],
        placeholder=placeholder,
    )


def _fatal(message: str) -> Err:
    return Err(types.PluginError_Fatal(message))


def _not_supported(what: str) -> Err:
    return _fatal(f"the webhook plugin is a notifier only; it does not support {what}")


def _risk(level: types.RiskLevel) -> str:
    return level.name.lower()


def _file(f: types.RemoteFile) -> dict:
    return {
        "id": f.id,
        "name": f.name,
        "container": f.container,
        "path": f.path,
        "web_url": f.web_url,
        "version": f.version,
    }


def _alert(a: notifier.FileAlert, max_findings: int) -> dict:
    return {
        "integration": a.integration,
        "file": _file(a.file),
        "risk": _risk(a.risk),
        "score": a.score,
        "summary": a.summary,
        "findings": [
            {"category": x.category, "code": x.code, "severity": _risk(x.severity), "value": x.value}
            for x in a.findings[:max_findings]
        ],
        "findings_total": len(a.findings),
    }


def payload(event: notifier.Notification, max_findings: int) -> dict:
    """The JSON document sent for one notification."""
    if isinstance(event, notifier.Notification_HighRiskFiles):
        return {"event": "high_risk_files", "files": [_alert(a, max_findings) for a in event.value]}
    if isinstance(event, notifier.Notification_BatchCompleted):
        b = event.value
        return {
            "event": "batch_completed",
            "batch": {
                "id": b.batch_id,
                "integration": b.integration,
                "platform": b.platform,
                "started_at": b.started_at,
                "finished_at": b.finished_at,
                "files_total": b.files_total,
                "files_ok": b.files_ok,
                "files_failed": b.files_failed,
                "by_risk": {_risk(level): n for (level, n) in b.by_risk},
                "dashboard_url": b.dashboard_url,
            },
        }
    if isinstance(event, notifier.Notification_BatchFailed):
        return {"event": "batch_failed", "integration": event.value.integration, "message": event.value.message}
    return {
        "event": "integration_unhealthy",
        "integration": event.value.integration,
        "message": event.value.message,
    }


def _retry_after_ms(headers: List) -> Optional[int]:
    for name, value in headers:
        if name.lower() == "retry-after":
            try:
                return int(float(value) * 1000)
            except ValueError:
                return None
    return None


class Manifest(wit_world.exports.Manifest):
    def describe(self) -> manifest.PluginInfo:
        kinds = manifest.FieldKind
        return manifest.PluginInfo(
            id="webhook-python",
            version=VERSION,
            display_name="Outbound webhook (Python)",
            platform="Webhook",
            description="Posts notifications as HMAC-signed JSON to one URL: Zapier, Power Automate, or your own endpoint.",
            capabilities=[manifest.Capability.NOTIFIER],
            config=[
                _field(
                    "url",
                    "Webhook URL",
                    "The full URL to POST to. It is stored sealed (hook URLs are credentials) and the plugin never reads it.",
                    kinds.URL,
                    required=True,
                    secret=True,
                    placeholder="https://hooks.zapier.com/hooks/catch/123456/abcdef/",
                ),
                _field(
                    "endpoint",
                    "Webhook origin",
                    "Scheme and host of the URL above, e.g. https://hooks.zapier.com. It is what the operator grants egress to.",
                    kinds.URL,
                    required=True,
                    placeholder="https://hooks.zapier.com",
                ),
                _field(
                    "signing_secret",
                    "Signing secret",
                    "Key for the x-proofpix-signature header (HMAC-SHA256). Leave empty to send unsigned requests.",
                    kinds.TEXT,
                    secret=True,
                ),
                _field(
                    "max_findings",
                    "Findings per file",
                    "How many findings to include for each file (the rest are counted).",
                    kinds.INTEGER,
                    default="5",
                ),
            ],
            auth=manifest.AuthScheme_None_(),
            endpoints=[
                manifest.Endpoint(
                    name="webhook",
                    url="{config.endpoint}",
                    credentials=False,
                    purpose="Deliver notifications",
                )
            ],
            filesystem=[],
            write_back_batch_size=1,
            write_back_idempotent=False,
            remediations=[],
        )

    def validate_config(self) -> None:
        endpoint = config.get("endpoint") or ""
        scheme, sep, rest = endpoint.partition("://")
        if not sep or scheme not in ("https", "http") or not rest or "/" in rest.rstrip("/"):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(
                        field="endpoint",
                        message=f"'{endpoint}' is not an origin; give scheme and host only, e.g. https://hooks.zapier.com",
                    )
                )
            )
        raw = config.get("max_findings") or "5"
        if not raw.isdigit() or not (0 <= int(raw) <= 100):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(field="max_findings", message=f"'{raw}' is not a number from 0 to 100")
                )
            )


class Notifier(wit_world.exports.Notifier):
    def notify(self, event: notifier.Notification) -> None:
        max_findings = int(config.get("max_findings") or "5")
        body = json.dumps(
            {"integration_id": config.integration_id(), **payload(event, max_findings)},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        timestamp = str(verify.now_ms())
        headers = [("content-type", "application/json"), ("x-proofpix-timestamp", timestamp)]
        signature = verify.hmac_sign(
            "signing_secret", verify.HmacAlgorithm.SHA256, b"v1:" + timestamp.encode() + b":" + body
        )
        if signature is not None:
            headers.append(("x-proofpix-signature", "v1=" + signature.hex()))
        request = http.Request(method=http.Method.POST, url="{secret.url}", headers=headers, body=body)
        try:
            response = http.send(request)
        except Err as e:
            error = e.value
            if isinstance(error, http.Error_Denied):
                raise Err(
                    types.PluginError_InvalidConfig(
                        types.ConfigProblem(field="endpoint", message=f"the host refused the request: {error.value}")
                    )
                )
            raise Err(types.PluginError_Transient(f"webhook not reachable: {error.value}"))
        status = response.status
        if 200 <= status < 300:
            log.log(log.Level.DEBUG, "notification delivered", [("status", str(status)), ("bytes", str(len(body)))])
            return
        excerpt = response.body[:200].decode("utf-8", "replace")
        if status == 429:
            raise Err(
                types.PluginError_RateLimited(
                    types.RateLimit(
                        retry_after_ms=_retry_after_ms(response.headers) or DEFAULT_RETRY_MS,
                        message=f"the webhook asked to slow down: {excerpt}",
                    )
                )
            )
        if status >= 500 or status == 408:
            raise Err(types.PluginError_Transient(f"the webhook answered HTTP {status}: {excerpt}"))
        if status in (404, 410):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(
                        field="url",
                        message=f"the webhook answered HTTP {status}: the hook was deleted or the URL is wrong",
                    )
                )
            )
        if status in (401, 403):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(
                        field="signing_secret",
                        message=f"the webhook refused the request (HTTP {status}); check the signing secret: {excerpt}",
                    )
                )
            )
        raise _fatal(f"the webhook answered HTTP {status}: {excerpt}")


class Source(wit_world.exports.Source):
    def check(self):
        # A webhook cannot be tested without delivering something, so the
        # check reports what the first notification will do.
        signed = verify.hmac_sign("signing_secret", verify.HmacAlgorithm.SHA256, b"") is not None
        return source.CheckReport(
            account=None,
            details=[
                f"posts to {config.get('endpoint')} (the full URL is sealed)",
                "requests are signed with HMAC-SHA256"
                if signed
                else "requests are NOT signed: set a signing secret so the receiver can verify them",
            ],
        )

    def discover(self, cursor):
        raise _not_supported("discovery")

    def download(self, file):
        raise _not_supported("downloads")

    def write_back(self, results):
        raise _not_supported("write-back")


class Events(wit_world.exports.Events):
    def handle(self, request):
        raise _not_supported("inbound events")


class Remediation(wit_world.exports.Remediation):
    def upload(self, file, size, content_type):
        raise _not_supported("remediation")

    def remediate(self, action):
        raise _not_supported("remediation")
