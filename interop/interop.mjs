// Interop checks of pushproxy's Web Push code against npm packages we did
// not write. Run by `go test ./proxy/webpush/` (TestInterop*), which feeds a
// JSON object on stdin and reads a JSON object from stdout:
//
//   node interop.mjs decrypt   {body, uaPrivate, auth}            → {plaintext}
//       http_ece decrypts an aes128gcm body made by pushproxy.
//   node interop.mjs verify    {authorization, audience, now}     → {header, claims}
//       jose verifies the VAPID JWT of pushproxy's Authorization header.
//   node interop.mjs request   {subscription, payload, vapid, TTL} → {method, headers, body}
//       web-push builds a request (generateRequestDetails, no network) that
//       the Go side sends to its fake push service, which decrypts it.
//   node interop.mjs keys      {}                                 → {publicKey, privateKey}
//       web-push generates a VAPID key pair that pushproxy must load.
//
// Binary values are base64url. Install with `npm ci --prefix interop`.
import crypto from 'node:crypto';
import ece from 'http_ece';
import * as jose from 'jose';
import webpush from 'web-push';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const unb64u = (s) => Buffer.from(s, 'base64url');

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? JSON.parse(text) : {};
}

const commands = {
  async decrypt({ body, uaPrivate, auth }) {
    const ua = crypto.createECDH('prime256v1');
    ua.setPrivateKey(unb64u(uaPrivate));
    const plaintext = ece.decrypt(unb64u(body), {
      version: 'aes128gcm',
      privateKey: ua,
      authSecret: auth,
    });
    return { plaintext: b64u(plaintext) };
  },

  async verify({ authorization, audience, now }) {
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization);
    if (!m) throw new Error('not a "vapid t=…, k=…" header: ' + authorization);
    const [, token, k] = m;
    const raw = unb64u(k);
    if (raw.length !== 65 || raw[0] !== 4) throw new Error('k is not a 65-byte uncompressed point');
    const key = await jose.importJWK(
      { kty: 'EC', crv: 'P-256', x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33)) },
      'ES256',
    );
    const { payload, protectedHeader } = await jose.jwtVerify(token, key, {
      audience,
      algorithms: ['ES256'],
      currentDate: now ? new Date(now * 1000) : undefined,
      maxTokenAge: undefined,
    });
    return { header: protectedHeader, claims: payload };
  },

  async request({ subscription, payload, vapid, TTL, topic, urgency }) {
    const details = webpush.generateRequestDetails(subscription, unb64u(payload), {
      vapidDetails: vapid,
      TTL,
      topic,
      urgency,
      contentEncoding: 'aes128gcm',
    });
    return { method: details.method, endpoint: details.endpoint, headers: details.headers, body: b64u(details.body) };
  },

  async keys() {
    return webpush.generateVAPIDKeys();
  },
};

const cmd = commands[process.argv[2]];
if (!cmd) {
  console.error('usage: node interop.mjs decrypt|verify|request|keys < input.json');
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(await cmd(await readStdin())) + '\n');
} catch (e) {
  console.error(String(e && e.stack || e));
  process.exit(1);
}
