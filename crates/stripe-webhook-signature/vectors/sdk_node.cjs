'use strict';
// Asks the official stripe-node SDK for its verdict on every case.
//
// Usage: STRIPE_NODE_DIR=<dir with node_modules/stripe> node sdk_node.cjs cases.json
//
// Verification goes through `Stripe.webhooks.signature.verifyHeader`, the check
// that `stripe.webhooks.constructEvent(payload, header, secret, tolerance,
// cryptoProvider, receivedAt)` runs before it JSON-parses the body (several
// bodies here are deliberately not JSON). The body is passed as a Buffer, the
// way a raw-body middleware hands it over.
//
// The case's `now` is a whole second; the SDK is asked at the start
// (receivedAt = now * 1000) and at the end (now * 1000 + 999) of that second and
// "accepts" only if it accepts at both. Any thrown error is a rejection. With
// several secrets, the SDK accepts if it accepts with any one of them.

const fs = require('fs');
const path = require('path');
const {createRequire} = require('module');

const dir = process.env.STRIPE_NODE_DIR;
if (!dir) {
  throw new Error('STRIPE_NODE_DIR is not set');
}
const requireFromDir = createRequire(path.join(path.resolve(dir), 'package.json'));
const Stripe = requireFromDir('stripe');
const pkg = JSON.parse(
  fs.readFileSync(path.join(path.resolve(dir), 'node_modules', 'stripe', 'package.json'), 'utf8'),
);
const webhooks = Stripe.webhooks;

function verdictFor(body, header, secret, now, tolerance) {
  for (const receivedAt of [now * 1000, now * 1000 + 999]) {
    try {
      webhooks.signature.verifyHeader(body, header, secret, tolerance, undefined, receivedAt);
    } catch (e) {
      const name = (e && e.constructor && e.constructor.name) || 'Error';
      const message = String((e && e.message) || e).split('\n')[0].slice(0, 90);
      return [false, `${name}: ${message}`];
    }
  }
  return [true, null];
}

const data = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const verdicts = {};
for (const c of data.cases) {
  const body = Buffer.from(c.body_hex, 'hex');
  let accepted = false;
  const errors = [];
  for (const secret of c.secrets) {
    const [ok, err] = verdictFor(body, c.header, secret, c.now, c.tolerance);
    if (ok) {
      accepted = true;
      break;
    }
    errors.push(err);
  }
  verdicts[c.name] = {accepts: accepted, error: accepted ? null : errors[0]};
}
const signed = {};
for (const sc of data.sign_cases) {
  signed[sc.name] = webhooks.generateTestHeaderString({
    payload: Buffer.from(sc.body_hex, 'hex').toString('utf8'),
    secret: sc.secret,
    timestamp: sc.t,
  });
}
process.stdout.write(
  JSON.stringify({
    sdk: `stripe-node ${pkg.version}`,
    runtime: `Node.js ${process.version}`,
    verdicts,
    signed,
  }),
);
