"""A ProofPix source connector for Pixfold, written in Python.

Pixfold is a small photo-sharing service invented for this example (the API is
documented in README.md next to this file): the host has never heard of it,
and nothing here depends on the Rust SDK. The plugin lists an account's photos
page by page, tells the host where each original is (the host downloads and
analyses the bytes itself; they never pass through the plugin), and stores the
host's verdict on each photo through Pixfold's privacy endpoint.

Build (from this directory; the component is about 18 MB, it carries CPython):

    componentize-py -d ../../../wit/since_v0.2.0 -w connector componentize app -o pixfold.wasm

The API key is a secret config field: the host keeps it in its vault, sends it
as `Authorization: Bearer <key>` on requests to the `api` endpoint, and scrubs
it from everything it hands back. `config.get("api_key")` is always None here.
"""

import json
from typing import List, Optional, Tuple
from urllib.parse import quote, urlencode

import wit_world
from componentize_py_types import Err, Ok
from wit_world.exports import manifest, source
from wit_world.imports import config, http, log, types

VERSION = "0.1.0"
DEFAULT_PAGE_SIZE = 100
# Cursor prefixes: the host stores the cursor as an opaque string, so the
# plugin marks which of Pixfold's two tokens it holds.
PAGE = "page:"  # Pixfold's next_cursor, while a listing has more pages
SINCE = "since:"  # Pixfold's sync_token, where the next run starts
# How much of an error body goes into a message.
EXCERPT = 200


# --- errors -----------------------------------------------------------------
#
# A method fails by raising Err(PluginError_...) from componentize_py_types;
# the host acts on the case (see README.md, "Errors"). Any other exception
# traps the instance: the call fails with the traceback in the host's log.


def _excerpt(response: http.Response) -> str:
    """Pixfold's error message, or the start of the body."""
    text = response.body[:4096].decode("utf-8", "replace")
    try:
        message = json.loads(text)["error"]["message"]
        if isinstance(message, str):
            return message[:EXCERPT]
    except (ValueError, KeyError, TypeError):
        pass
    return text[:EXCERPT].strip()


def retry_after_ms(headers: List[Tuple[str, str]]) -> Optional[int]:
    """Retry-After in milliseconds. Pixfold sends seconds; an HTTP date is
    not read (the host then backs off on its own schedule)."""
    for name, value in headers:
        if name.lower() == "retry-after":
            try:
                return max(0, int(float(value.strip()) * 1000))
            except ValueError:
                return None
    return None


def status_error(response: http.Response, what: str) -> types.PluginError:
    """Maps a Pixfold error status onto the contract's error cases."""
    status = response.status
    detail = f"Pixfold answered HTTP {status} to {what}: {_excerpt(response)}"
    integration = config.integration_id()
    if status == 401:
        # The host retries once with fresh credentials; an API key cannot be
        # refreshed, so the operator sees this message.
        return types.PluginError_Unauthorized(
            f"{detail}. The API key was refused: set a valid one with "
            f"`proofpix integration set-secret {integration} api_key=env:PIXFOLD_KEY`"
        )
    if status == 403:
        return types.PluginError_Unauthorized(
            f"{detail}. The API key lacks a permission: create a key with the "
            f"photos:read and photos:write scopes and set it with "
            f"`proofpix integration set-secret {integration} api_key=env:PIXFOLD_KEY`"
        )
    if status in (404, 410):
        return types.PluginError_NotFound(detail)
    if status == 429 or (status == 503 and retry_after_ms(response.headers) is not None):
        return types.PluginError_RateLimited(
            types.RateLimit(retry_after_ms=retry_after_ms(response.headers), message=detail)
        )
    if status == 408 or status >= 500:
        return types.PluginError_Transient(detail)
    return types.PluginError_Fatal(detail)


def _base() -> str:
    return (config.get("base_url") or "").rstrip("/")


def send(method: http.Method, path: str, what: str, body: Optional[dict] = None) -> http.Response:
    """Sends a request to the API and returns a 2xx response; raises the
    contract's error for anything else."""
    url = path if "://" in path else _base() + path
    headers = [("accept", "application/json")]
    data = b""
    if body is not None:
        headers.append(("content-type", "application/json"))
        data = json.dumps(body, separators=(",", ":")).encode()
    try:
        response = http.send(http.Request(method=method, url=url, headers=headers, body=data))
    except Err as e:
        error = e.value
        if isinstance(error, http.Error_Denied):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(
                        field="base_url",
                        message=f"the host refused the request to {url}: {error.value}; "
                        "check base_url and the origin granted to the integration",
                    )
                )
            )
        if isinstance(error, (http.Error_Timeout, http.Error_Connection)):
            raise Err(types.PluginError_Transient(f"Pixfold not reachable for {what}: {error.value}"))
        raise Err(types.PluginError_Fatal(f"{what}: {error.value}"))
    if 200 <= response.status < 300:
        return response
    raise Err(status_error(response, what))


def _json(response: http.Response, what: str) -> dict:
    try:
        value = json.loads(response.body)
    except ValueError as e:
        # A proxy's HTML error page, a cut body: worth another try.
        raise Err(types.PluginError_Transient(f"{what}: the answer is not JSON ({e})"))
    if not isinstance(value, dict):
        raise Err(types.PluginError_Transient(f"{what}: expected a JSON object"))
    return value


# --- listing ----------------------------------------------------------------


def remote_file(photo: dict) -> types.RemoteFile:
    """One Pixfold photo as the contract's file. `version` is Pixfold's
    revision (it changes when the original does), so the host analyses each
    revision once; `properties` come back unchanged in download and
    write-back."""
    return types.RemoteFile(
        id=str(photo["id"]),
        name=str(photo.get("filename") or photo["id"]),
        mime_type=photo.get("content_type"),
        size=photo.get("size"),
        modified=photo.get("updated_at"),
        version=str(photo["revision"]),
        container=photo.get("album"),
        web_url=photo.get("web_url"),
        path=None,
        properties=[("download_url", str(photo["download_url"]))],
    )


def parse_page(body: dict) -> source.Page:
    """A page of `GET /v1/photos` as the contract's page and cursor."""
    files = [remote_file(p) for p in body.get("photos", [])]
    removed = [str(i) for i in body.get("deleted", [])]
    next_cursor = body.get("next_cursor")
    if next_cursor:
        return source.Page(files=files, removed=removed, cursor=PAGE + next_cursor, more=True)
    token = body.get("sync_token")
    return source.Page(files=files, removed=removed, cursor=SINCE + token if token else None, more=False)


def list_query(cursor: Optional[str]) -> str:
    params = [("limit", config.get("page_size") or str(DEFAULT_PAGE_SIZE))]
    if cursor is not None and cursor.startswith(PAGE):
        # Pixfold's cursor carries the listing's filters itself.
        params.append(("cursor", cursor[len(PAGE) :]))
    else:
        album = config.get("album")
        if album:
            params.append(("album", album))
        if cursor is not None and cursor.startswith(SINCE):
            params.append(("changed_since", cursor[len(SINCE) :]))
    return "/v1/photos?" + urlencode(params)


# --- exports ----------------------------------------------------------------
#
# componentize-py wants one class per exported interface of the `connector`
# world, named after it: Manifest, Source, Notifier, Events, Remediation.
# A plugin that does not offer a capability still exports its class and
# answers "not supported".


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


class Manifest(wit_world.exports.Manifest):
    def describe(self) -> manifest.PluginInfo:
        kinds = manifest.FieldKind
        return manifest.PluginInfo(
            id="pixfold",
            version=VERSION,
            display_name="Pixfold (Python)",
            platform="Pixfold",
            description="Finds privacy risks in the photos of a Pixfold account and stores each verdict on the photo.",
            capabilities=[manifest.Capability.SOURCE],
            config=[
                _field(
                    "base_url",
                    "API URL",
                    "Scheme and host of the Pixfold API, without a path.",
                    kinds.URL,
                    required=True,
                    default="https://api.pixfold.example",
                ),
                _field(
                    "api_key",
                    "API key",
                    "Created under Settings > API keys, with the photos:read and photos:write scopes.",
                    kinds.TEXT,
                    required=True,
                    secret=True,
                ),
                _field("album", "Album", "Only the photos of this album; all photos when empty.", kinds.TEXT),
                _field(
                    "page_size",
                    "Page size",
                    "Photos per listing request (1 to 500).",
                    kinds.INTEGER,
                    default=str(DEFAULT_PAGE_SIZE),
                ),
            ],
            # The host sends `Authorization: Bearer <api_key>` itself, on the
            # endpoints below that take credentials, and nowhere else.
            auth=manifest.AuthScheme_ApiKey(
                manifest.ApiKeyAuth(secret_field="api_key", header="authorization", prefix="Bearer ")
            ),
            endpoints=[
                manifest.Endpoint(
                    name="api",
                    url="{config.base_url}",
                    credentials=True,
                    purpose="List photos, download originals, store privacy verdicts",
                )
            ],
            filesystem=[],
            write_back_batch_size=20,
            # A PUT of the same verdict leaves the photo as one PUT does.
            write_back_idempotent=True,
            remediations=[],
        )

    def validate_config(self) -> None:
        base = config.get("base_url") or ""
        scheme, sep, rest = base.partition("://")
        if not sep or scheme not in ("https", "http") or not rest or "/" in rest.rstrip("/"):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(
                        field="base_url",
                        message=f"'{base}' is not an API origin; give scheme and host only, e.g. https://api.pixfold.example",
                    )
                )
            )
        raw = config.get("page_size") or str(DEFAULT_PAGE_SIZE)
        if not raw.isdigit() or not (1 <= int(raw) <= 500):
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(field="page_size", message=f"'{raw}' is not a number from 1 to 500")
                )
            )


class Source(wit_world.exports.Source):
    def check(self) -> source.CheckReport:
        account = _json(send(http.Method.GET, "/v1/account", "the account check"), "the account check")
        scopes = account.get("scopes") or []
        missing = [s for s in ("photos:read", "photos:write") if s not in scopes]
        if missing:
            raise Err(
                types.PluginError_InvalidConfig(
                    types.ConfigProblem(
                        field="api_key",
                        message=f"the API key lacks {' and '.join(missing)}; create one with photos:read and photos:write",
                    )
                )
            )
        details = [f"API key scopes: {', '.join(scopes)}"]
        album = config.get("album")
        details.append(f"album {album!r}" if album else "all albums")
        return source.CheckReport(account=account.get("email") or account.get("name"), details=details)

    def discover(self, cursor: Optional[str]) -> source.Page:
        what = "the photo listing"
        body = _json(send(http.Method.GET, list_query(cursor), what), what)
        try:
            page = parse_page(body)
        except (KeyError, TypeError, AttributeError) as e:
            # A photo without an id, revision or download URL: a broken page,
            # not a broken plugin. Left uncaught it would trap the call.
            raise Err(types.PluginError_Transient(f"{what}: malformed page ({type(e).__name__}: {e})"))
        log.log(
            log.Level.DEBUG,
            "listed a page",
            [("files", str(len(page.files))), ("removed", str(len(page.removed))), ("more", str(page.more))],
        )
        return page

    def download(self, file: types.RemoteFile) -> source.DownloadSpec:
        url = dict(file.properties).get("download_url")
        if not url:
            raise Err(types.PluginError_NotFound(f"photo {file.id} has no download URL; it is listed again at the next full sync"))
        # Where the original is, not its bytes: the host sends this request
        # (with the API key, since the URL is under the `api` endpoint),
        # follows redirects under the same egress checks and reads by range.
        request = http.Request(method=http.Method.GET, url=url, headers=[], body=b"")
        return source.DownloadSpec(location=source.ContentLocation_Http(request), supports_range=True)

    def write_back(self, results: List[types.FileResult]) -> List[source.WriteOutcome]:
        outcomes: List[source.WriteOutcome] = []
        for result in results:
            file_id = result.file.id
            body = {
                "risk": result.risk.name.lower(),
                "score": result.score,
                "summary": result.summary,
                "categories": sorted({f.category for f in result.findings}),
                "analysed_at": result.analysed_at,
                "policy": result.policy_version,
            }
            if result.error is not None:
                body["note"] = f"partly read: {result.error}"[:EXCERPT]
            try:
                send(http.Method.PUT, f"/v1/photos/{quote(file_id, safe='')}/privacy", f"the verdict on photo {file_id}", body)
                outcomes.append(source.WriteOutcome(file_id=file_id, outcome=Ok(None)))
            except Err as e:
                error = e.value
                if isinstance(error, types.PluginError_NotFound):
                    # Deleted since it was listed: this photo only.
                    outcomes.append(source.WriteOutcome(file_id=file_id, outcome=Err(error)))
                    continue
                if not any(isinstance(o.outcome, Ok) for o in outcomes):
                    # Nothing written yet: fail the call, and the host retries
                    # the whole batch (after Retry-After when rate-limited).
                    raise
                # Some verdicts are stored: report those, and this error for
                # the rest, which the host retries later.
                for rest in results[len(outcomes) :]:
                    outcomes.append(source.WriteOutcome(file_id=rest.file.id, outcome=Err(error)))
                break
        return outcomes


def _not_supported(what: str) -> Err:
    return Err(types.PluginError_Fatal(f"the Pixfold plugin is a source only; it does not support {what}"))


class Notifier(wit_world.exports.Notifier):
    def notify(self, event) -> None:
        raise _not_supported("notifications")


class Events(wit_world.exports.Events):
    def handle(self, request):
        raise _not_supported("inbound events")


class Remediation(wit_world.exports.Remediation):
    def upload(self, file, size, content_type):
        raise _not_supported("remediation")

    def remediate(self, action):
        raise _not_supported("remediation")
