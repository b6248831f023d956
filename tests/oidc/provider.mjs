// A real OpenID Connect provider (npm oidc-provider) for the SSO tests, on 127.0.0.1.
//
//   node provider.mjs PORT   with OIDC_TEST_CONFIG = JSON {client_id, client_secret,
//                            redirect_uri, accounts: {login: {claim: value, ...}}}
//
// One confidential client (client_secret_basic, code flow, PKCE required). Sign-in uses the
// package's dev interactions: a login form that accepts a listed login with any password, then
// a consent form. Claims other than `sub` are released under the `profile` scope (through the
// userinfo endpoint, as the provider's default conformIdTokenClaims does). Prints "listening
// <issuer>" once it serves.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const config = JSON.parse(process.env.OIDC_TEST_CONFIG ?? '{}');
if (!Number.isInteger(port) || port <= 0 || !config.client_id || !config.redirect_uri) {
  console.error('usage: OIDC_TEST_CONFIG=<json> node provider.mjs PORT');
  process.exit(2);
}
const accounts = config.accounts ?? {};
const customClaims = [...new Set(Object.values(accounts).flatMap((claims) => Object.keys(claims)))];

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: customClaims.filter((c) => c !== 'sub') },
  cookies: { keys: ['castkeep-oidc-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) {
      return undefined;
    }
    return { accountId: id, async claims() { return { ...accounts[id], sub: id }; } };
  },
  async renderError(ctx, out) {
    ctx.type = 'text/plain';
    ctx.body = `${out.error}: ${out.error_description ?? ''}`;
  },
});
// Plain HTTP on loopback: tell the provider the connection is not proxied TLS.
provider.proxy = false;
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
