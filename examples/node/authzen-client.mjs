// A Node.js (18+) AuthZEN client for cnm-policy: plain `fetch`, no generated code, no protobuf.
//
//   node examples/node/authzen-client.mjs http://127.0.0.1:8181
//
// Asks one evaluation (may u-17 read dev-9?), then which actions u-17 may take on it (the
// buttons a portal shows), and prints one line per answer. Attributes are plain JSON objects.

const base = process.argv[2] ?? "http://127.0.0.1:8181";

async function ask(path, body) {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": "node-example-1" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    throw new Error(`${response.status} ${answer.error.code}: ${answer.error.message}`);
  }
  return answer;
}

const subject = {
  type: "user",
  id: "u-17",
  properties: { tenant: "acme/emea", roles: ["customer-admin"], mfa: true },
};
const resource = { type: "device", id: "dev-9", properties: { tenant: "acme/emea/paris" } };

const evaluation = await ask("/access/v1/evaluation", {
  subject,
  action: { name: "configure" },
  resource,
  context: { channel: "portal" },
});
console.log(`configure dev-9: ${evaluation.decision ? "ALLOW" : "DENY"} (${evaluation.context.reason_user.en})`);

const search = await ask("/access/v1/search/action", { subject, resource });
console.log(`actions on dev-9: ${search.results.map((action) => action.name).join(", ")}`);
