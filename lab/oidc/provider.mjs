// The lab's OpenID Connect provider: panva's oidc-provider (OpenID Certified), as its own
// process over HTTPS on loopback. This file is only its configuration: the clients, and the
// test users with their groups. Its login form is oidc-provider's own (devInteractions: it
// takes any password, so a user here is who logs in, its groups what this file says).
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"issuer": "https://127.0.0.1:PORT", "port": PORT, "cert": PEM file, "key": PEM file,
//          "clients": [{client_id, client_secret, redirect_uris}], "users": {"name": ["group"]},
//          "cookie_key": "..."}; the client secret is read from the file, never from argv.
import fs from "node:fs";
import https from "node:https";
import Provider from "oidc-provider";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    ...client,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  })),
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
  scopes: ["openid", "email", "profile", "groups"],
  // The groups go into the ID token Argo CD reads, not only into userinfo.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, claimsParameter: { enabled: true } },
  pkce: { required: () => false },
  cookies: { keys: [config.cookie_key] },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(config.users, id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: id, email: `${id}@lab.test`, email_verified: true, groups: config.users[id] };
      },
    };
  },
});
provider.proxy = false;

const server = https.createServer(
  { cert: fs.readFileSync(config.cert), key: fs.readFileSync(config.key) },
  provider.callback(),
);
server.listen(config.port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
