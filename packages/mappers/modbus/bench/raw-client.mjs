// SPDX-License-Identifier: Apache-2.0
// The limit: a bare modbus-serial client reading in a loop on one connection, one request at a
// time (what a sequential poller can do against this server). Plain JS, plain node: nothing
// between the client and the socket.
// usage: node raw-client.mjs PORT ADDRESS NREGS SECONDS  -> one JSON line
import modbusSerial from 'modbus-serial';

const [port = 0, address = 0, nregs = 1, secs = 10] = process.argv.slice(2).map(Number);
const client = new modbusSerial();
await client.connectTCP('127.0.0.1', { port });
client.setID(1);
client.setTimeout(2000);
for (let i = 0; i < 200; i++) await client.readHoldingRegisters(address, nregs); // warm-up
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const deadline = t0 + secs * 1000;
let n = 0;
while (performance.now() < deadline) {
  const r = await client.readHoldingRegisters(address, nregs);
  if (r.data.length !== nregs) throw new Error('short answer');
  n++;
}
const dt = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    seconds: dt,
    requestsPerS: n / dt,
    pointsPerS: (n * nregs) / dt,
    registersPerS: (n * nregs) / dt,
    cpuPct: (100 * (cpu.user + cpu.system)) / 1e6 / dt,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  }),
);
client.close(() => process.exit(0));
