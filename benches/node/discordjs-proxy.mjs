// @discordjs/proxy in front of an upstream, as its README sets it up, with the client-side global
// pacing lifted (the benchmark's upstream has no limits). Usage: node discordjs-proxy.mjs PORT API_URL
import { createServer } from 'node:http';
import { proxyRequests } from '@discordjs/proxy';
import { REST } from '@discordjs/rest';

const [port, api] = process.argv.slice(2);
const rest = new REST({ api, globalRequestsPerSecond: Infinity, rejectOnRateLimit: null });
const server = createServer(proxyRequests(rest));
server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
