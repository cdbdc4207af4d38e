// Generic outbound webhook notifier for ProofPix, written in JavaScript.
//
// Build (from this directory; see README.md):
//
//   npm ci && npm run build        # writes webhook-js.wasm
//   proofpix plugin inspect webhook-js.wasm
//
// `inspect` prints the manifest below: id `webhook-js`, contract 0.2.0, one
// endpoint `{config.endpoint}` and the secrets `url` and `signing_secret`.
//
// The file is compiled to a WebAssembly component with componentize-js
// against `wit/since_v0.2.0` and runs in the same sandbox as the Rust plugins.
// It posts each notification as a JSON document to one URL and signs it with
// HMAC-SHA256. The plugin never sees the URL or the signing key: the host
// substitutes `{secret.url}` when it sends the request and computes the
// signature through `verify.hmac-sign`.
//
// Signature (what a receiver checks):
//   x-proofpix-timestamp: <milliseconds since the Unix epoch>
//   x-proofpix-signature: v1=<hex HMAC-SHA256 of "v1:<timestamp>:<body>">
// Reject requests whose timestamp is more than five minutes old.
//
// How the contract looks from JavaScript (componentize-js / jco conventions):
// - interface functions are camelCase (`validate-config` -> `validateConfig`),
//   record fields too (`retry-after-ms` -> `retryAfterMs`);
// - enums are their WIT names as strings (`'notifier'`, `'post'`, `'sha256'`);
// - variants are `{ tag: 'kebab-name', val: payload }`;
// - `list<u8>` is a Uint8Array, `u64` a BigInt, `option<T>` undefined or T,
//   a tuple an array;
// - `result<T, plugin-error>`: return T for ok; for an error throw the
//   variant itself, `throw { tag: 'transient', val: 'why' }` (helpers below).
//   Anything else thrown (a plain `new Error()`) cannot become a
//   plugin-error: the call traps, and the host reports a crash.

import { send } from 'proofpix:plugin/http@0.2.0';
import { get as configGet, integrationId } from 'proofpix:plugin/config@0.2.0';
import { hmacSign, nowMs } from 'proofpix:plugin/verify@0.2.0';
import { log } from 'proofpix:plugin/log@0.2.0';

const VERSION = '0.1.0';
// Retry-After when the receiver sends 429 without one.
const DEFAULT_RETRY_MS = 30_000n;

// --- errors: what `throw` must carry -----------------------------------------

const fatal = (message) => ({ tag: 'fatal', val: message });
const transient = (message) => ({ tag: 'transient', val: message });
const invalidConfig = (field, message) => ({ tag: 'invalid-config', val: { field, message } });
const rateLimited = (retryAfterMs, message) => ({
  tag: 'rate-limited',
  val: { retryAfterMs, message },
});
const notSupported = (what) =>
  fatal(`the webhook plugin is a notifier only; it does not support ${what}`);

// --- the payload ---------------------------------------------------------------

const file = (f) => ({
  id: f.id,
  name: f.name,
  container: f.container ?? null,
  path: f.path ?? null,
  web_url: f.webUrl ?? null,
  version: f.version,
});

const alert = (a, maxFindings) => ({
  integration: a.integration,
  file: file(a.file),
  risk: a.risk,
  score: a.score,
  summary: a.summary,
  findings: a.findings
    .slice(0, maxFindings)
    .map((x) => ({ category: x.category, code: x.code, severity: x.severity, value: x.value })),
  findings_total: a.findings.length,
});

/** The JSON document sent for one notification. */
export function payload(event, maxFindings) {
  switch (event.tag) {
    case 'high-risk-files':
      return { event: 'high_risk_files', files: event.val.map((a) => alert(a, maxFindings)) };
    case 'batch-completed': {
      const b = event.val;
      return {
        event: 'batch_completed',
        batch: {
          id: b.batchId,
          integration: b.integration,
          platform: b.platform,
          started_at: b.startedAt,
          finished_at: b.finishedAt,
          files_total: b.filesTotal,
          files_ok: b.filesOk,
          files_failed: b.filesFailed,
          by_risk: Object.fromEntries(b.byRisk.map(([level, n]) => [level, n])),
          dashboard_url: b.dashboardUrl ?? null,
        },
      };
    }
    case 'batch-failed':
      return { event: 'batch_failed', integration: event.val.integration, message: event.val.message };
    default:
      return {
        event: 'integration_unhealthy',
        integration: event.val.integration,
        message: event.val.message,
      };
  }
}

// JSON with object keys sorted, so the same notification is the same bytes.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function retryAfterMs(headers) {
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'retry-after') {
      const seconds = Number(value);
      return Number.isFinite(seconds) ? BigInt(Math.round(seconds * 1000)) : undefined;
    }
  }
  return undefined;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const utf8 = new TextEncoder();

function field(name, label, help, kind, { required = false, secret = false, defaultValue, placeholder } = {}) {
  // Every list field of a record must be present, even when empty: a missing
  // `choices` makes the generated bindings fail while lowering the record.
  return { name, label, help, kind, required, secret, defaultValue, choices: [], placeholder };
}

// --- exports: one object per interface of the `connector` world ----------------

export const manifest = {
  describe() {
    // Every list field (`capabilities`, `config`, `endpoints`, `filesystem`,
    // `remediations`) must be present; give `[]` for none.
    return {
      id: 'webhook-js',
      version: VERSION,
      displayName: 'Outbound webhook (JavaScript)',
      platform: 'Webhook',
      description:
        'Posts notifications as HMAC-signed JSON to one URL: Zapier, Power Automate, or your own endpoint.',
      capabilities: ['notifier'],
      config: [
        field(
          'url',
          'Webhook URL',
          'The full URL to POST to. It is stored sealed (hook URLs are credentials) and the plugin never reads it.',
          'url',
          { required: true, secret: true, placeholder: 'https://hooks.zapier.com/hooks/catch/123456/abcdef/' },
        ),
        field(
          'endpoint',
          'Webhook origin',
          'Scheme and host of the URL above, e.g. https://hooks.zapier.com. It is what the operator grants egress to.',
          'url',
          { required: true, placeholder: 'https://hooks.zapier.com' },
        ),
        field(
          'signing_secret',
          'Signing secret',
          'Key for the x-proofpix-signature header (HMAC-SHA256). Leave empty to send unsigned requests.',
          'text',
          { secret: true },
        ),
        field('max_findings', 'Findings per file', 'How many findings to include for each file (the rest are counted).', 'integer', {
          defaultValue: '5',
        }),
      ],
      auth: { tag: 'none' },
      endpoints: [
        { name: 'webhook', url: '{config.endpoint}', credentials: false, purpose: 'Deliver notifications' },
      ],
      filesystem: [],
      writeBackBatchSize: 1,
      writeBackIdempotent: false,
      remediations: [],
    };
  },

  validateConfig() {
    const endpoint = configGet('endpoint') ?? '';
    const m = /^(https?):\/\/([^/]+)\/?$/.exec(endpoint);
    if (!m) {
      throw invalidConfig(
        'endpoint',
        `'${endpoint}' is not an origin; give scheme and host only, e.g. https://hooks.zapier.com`,
      );
    }
    const raw = configGet('max_findings') ?? '5';
    if (!/^\d+$/.test(raw) || Number(raw) > 100) {
      throw invalidConfig('max_findings', `'${raw}' is not a number from 0 to 100`);
    }
  },
};

export const notifier = {
  notify(event) {
    const maxFindings = Number(configGet('max_findings') ?? '5');
    const body = utf8.encode(canonical({ integration_id: integrationId(), ...payload(event, maxFindings) }));
    const timestamp = String(nowMs());
    const headers = [
      ['content-type', 'application/json'],
      ['x-proofpix-timestamp', timestamp],
    ];
    const prefix = utf8.encode(`v1:${timestamp}:`);
    const message = new Uint8Array(prefix.length + body.length);
    message.set(prefix);
    message.set(body, prefix.length);
    const signature = hmacSign('signing_secret', 'sha256', message);
    if (signature !== undefined && signature !== null) {
      headers.push(['x-proofpix-signature', `v1=${hex(signature)}`]);
    }
    let response;
    try {
      response = send({ method: 'post', url: '{secret.url}', headers, body });
    } catch (e) {
      // http.send's error variant arrives thrown, as `e.payload` (jco's
      // ComponentError) or as the variant itself.
      const error = e?.payload ?? e;
      if (error?.tag === 'denied') {
        throw invalidConfig('endpoint', `the host refused the request: ${error.val}`);
      }
      throw transient(`webhook not reachable: ${error?.val ?? String(e)}`);
    }
    const status = response.status;
    if (status >= 200 && status < 300) {
      log('debug', 'notification delivered', [
        ['status', String(status)],
        ['bytes', String(body.length)],
      ]);
      return;
    }
    const excerpt = new TextDecoder().decode(response.body.slice(0, 200));
    if (status === 429) {
      throw rateLimited(retryAfterMs(response.headers) ?? DEFAULT_RETRY_MS, `the webhook asked to slow down: ${excerpt}`);
    }
    if (status >= 500 || status === 408) {
      throw transient(`the webhook answered HTTP ${status}: ${excerpt}`);
    }
    if (status === 404 || status === 410) {
      throw invalidConfig('url', `the webhook answered HTTP ${status}: the hook was deleted or the URL is wrong`);
    }
    if (status === 401 || status === 403) {
      throw invalidConfig(
        'signing_secret',
        `the webhook refused the request (HTTP ${status}); check the signing secret: ${excerpt}`,
      );
    }
    throw fatal(`the webhook answered HTTP ${status}: ${excerpt}`);
  },
};

export const source = {
  check() {
    // A webhook cannot be tested without delivering something, so the check
    // reports what the first notification will do. (A notifier may also
    // answer `throw notSupported('check')`: the host then shows the check as
    // not applicable.)
    const signed = hmacSign('signing_secret', 'sha256', new Uint8Array()) != null;
    return {
      account: undefined,
      details: [
        `posts to ${configGet('endpoint')} (the full URL is sealed)`,
        signed
          ? 'requests are signed with HMAC-SHA256'
          : 'requests are NOT signed: set a signing secret so the receiver can verify them',
      ],
    };
  },
  discover(_cursor) {
    throw notSupported('discovery');
  },
  download(_file) {
    throw notSupported('downloads');
  },
  writeBack(_results) {
    throw notSupported('write-back');
  },
};

export const events = {
  handle(_request) {
    throw notSupported('inbound events');
  },
};

export const remediation = {
  upload(_file, _size, _contentType) {
    throw notSupported('remediation');
  },
  remediate(_action) {
    throw notSupported('remediation');
  },
};
