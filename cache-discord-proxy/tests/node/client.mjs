// discord.js's REST client against the proxy, for tests/discordjs.rs.
//
// node client.mjs '<json>' where json is
//   {"api": "http://127.0.0.1:PORT/api", "token": "...", "authPrefix": "Bot" | "Bearer",
//    "globalRequestsPerSecond": N,
//    "steps": [{"method": "get" | "post" | "patch" | "put" | "delete", "path": "/guilds/1/roles",
//               "body": {...}, "reason": "...", "repeat": 1}]}
// and prints one JSON line: {"steps": [{"status": N, "body": ..., "error": "...", "ms": F}]}, one
// entry per step (a repeated step reports its last answer and the time of all its repeats).
import { REST, RateLimitError } from '@discordjs/rest';

const input = JSON.parse(process.argv[2]);
const rest = new REST({
  api: input.api,
  version: '10',
  authPrefix: input.authPrefix ?? 'Bot',
  // The proxy paces what goes to Discord: the client's own global pacing only slows cached reads.
  globalRequestsPerSecond: input.globalRequestsPerSecond ?? 50,
  // Let 429s and 5xx reach the test as the proxy answered them.
  retries: 0,
  rejectOnRateLimit: () => true,
}).setToken(input.token);

const results = [];
for (const step of input.steps) {
  const started = performance.now();
  let result = {};
  for (let i = 0; i < (step.repeat ?? 1); i++) {
    try {
      const options = {};
      if (step.body !== undefined) options.body = step.body;
      if (step.reason !== undefined) options.reason = step.reason;
      const body = await rest[step.method](step.path, options);
      result = { status: 200, body };
    } catch (error) {
      const status = error.status ?? (error instanceof RateLimitError ? 429 : 0);
      result = { status, error: `${error.name}: ${error.message}` };
    }
  }
  result.ms = performance.now() - started;
  results.push(result);
}
console.log(JSON.stringify({ steps: results }));
