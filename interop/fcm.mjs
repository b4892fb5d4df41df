// Interop checks of pushproxy's FCM OAuth code, and of internal/fakefcm,
// against npm packages we did not write. Run by `go test ./proxy/fcm/`
// (TestInterop*), which feeds a JSON object on stdin and reads a JSON object
// from stdout:
//
//   node fcm.mjs verify {assertion, publicKey, issuer, audience}      → {header, claims}
//       jose verifies the RS256 assertion pushproxy (golang.org/x/oauth2)
//       sent to the token endpoint, against the service account's public
//       key (SPKI PEM).
//   node fcm.mjs gtoken {tokenURL, ca, key, email, scope}             → {access_token, expires_in, token_type}
//       gtoken (Google's own JWT-bearer client, used by google-auth-library)
//       signs an assertion for the service account and asks the token
//       endpoint at tokenURL (the fake, trusted through ca) for a token.
//       gtoken always names https://oauth2.googleapis.com/token as the
//       audience and URL; the transporter below sends its request to
//       tokenURL instead, unchanged.
//
// A failure prints {"error": "..."} and exits 1.
import https from 'node:https';
import * as jose from 'jose';
import { GoogleToken } from 'gtoken';

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? JSON.parse(text) : {};
}

function post(url, ca, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: 'POST',
      ca,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let data;
        try { data = JSON.parse(text); } catch { data = text; }
        resolve({ status: res.statusCode, data });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const commands = {
  async verify({ assertion, publicKey, issuer, audience }) {
    const key = await jose.importSPKI(publicKey, 'RS256');
    const { payload, protectedHeader } = await jose.jwtVerify(assertion, key, {
      algorithms: ['RS256'], issuer, audience, maxTokenAge: '61m',
    });
    return { header: protectedHeader, claims: payload };
  },

  async gtoken({ tokenURL, ca, key, email, scope }) {
    // gtoken hands its request to the transporter (gaxios by default).
    const transporter = {
      async request(opts) {
        const res = await post(tokenURL, ca, opts.data.toString());
        if (res.status < 200 || res.status > 299) {
          const e = new Error(`token endpoint answered ${res.status}`);
          e.response = { status: res.status, data: res.data };
          throw e;
        }
        return { status: res.status, data: res.data };
      },
    };
    const gt = new GoogleToken({ key, email, scope, transporter });
    const tok = await gt.getToken();
    return { access_token: tok.access_token, expires_in: tok.expires_in, token_type: tok.token_type };
  },
};

const cmd = process.argv[2];
try {
  if (!commands[cmd]) throw new Error(`unknown command ${cmd}`);
  const out = await commands[cmd](await readStdin());
  process.stdout.write(JSON.stringify(out));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e && e.message || e) }));
  process.exit(1);
}
