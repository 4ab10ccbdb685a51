// Evaluates a batch of IAM requests with @cloud-copilot/iam-simulate (conditions, resource and
// key policies applied) and prints one result per request, in order.
//
// stdin:  {"policies": {"<id>": <policy document>, ...},
//          "requests": [{"principal", "action", "resource", "resourceAccount",
//                        "context": {key: value | [values]},
//                        "identityPolicies": ["<id>", ...], "resourcePolicy": "<id>" | null}]}
// stdout: [{"decision": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "error",
//           "ignoredContextKeys": [...], "errors": <simulator's errors or null>}]
// One process evaluates a whole batch: tests call it once per module, not once per request.
import { runSimulation } from '@cloud-copilot/iam-simulate';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const { policies, requests } = await readStdin();
const results = [];
for (const request of requests) {
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resourceAccount },
      contextVariables: request.context ?? {},
    },
    identityPolicies: request.identityPolicies.map((id) => ({ name: id, policy: policies[id] })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (request.resourcePolicy) simulation.resourcePolicy = policies[request.resourcePolicy];
  const outcome = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (outcome.resultType === 'error') {
    results.push({ decision: 'error', ignoredContextKeys: [], errors: outcome.errors });
    continue;
  }
  const ignored =
    outcome.resultType === 'single'
      ? outcome.result.ignoredContextKeys ?? []
      : outcome.results.flatMap((r) => r.ignoredContextKeys ?? []);
  results.push({ decision: outcome.overallResult, ignoredContextKeys: ignored, errors: null });
}
process.stdout.write(JSON.stringify(results));
