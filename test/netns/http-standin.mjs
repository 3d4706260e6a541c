// Stand-in for `edgeimg serve` in the netns store scenario (test/netns/store-scenario.test.ts):
// serves /boot.ipxe (chains to /ipxe/<mac aa-bb-..>) and a per-MAC iPXE script that prints a
// marker on the console. Every request is logged to stdout as `GET <path> <status>`.
//
//   node http-standin.mjs <listen-address> <port>
//
// Plain JavaScript so the harness can start it with `ip netns exec <ns> node ...` (no tsx).
import { createServer } from 'node:http';

const [host = '0.0.0.0', portArg = '8080'] = process.argv.slice(2);
const port = Number(portArg);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const base = `http://${req.headers.host ?? `${host}:${port}`}`;
  let status = 200;
  let body = '';
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    status = 405;
  } else if (url.pathname === '/boot.ipxe') {
    body = ['#!ipxe', 'echo edgeimg-netns-ok ${mac}', `chain ${base}/ipxe/\${mac:hexhyp}`, ''].join('\n');
  } else {
    const m = /^\/ipxe\/((?:[0-9a-f]{2}-){5}[0-9a-f]{2})$/.exec(url.pathname);
    if (m) {
      // iPXE (Debian 12's build) has no `poweroff`: the harness stops QEMU once it sees the marker.
      body = ['#!ipxe', `echo EDGEIMG-NETNS-REACHED ${m[1]}`, 'sleep 600', ''].join('\n');
    } else {
      status = 404;
    }
  }
  console.log(`${req.method} ${url.pathname} ${status} from ${req.socket.remoteAddress ?? '?'}`);
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
});
server.listen(port, host, () => console.log(`listening ${host}:${port}`));
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => server.close(() => process.exit(0)));
