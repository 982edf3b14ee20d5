// SPDX-License-Identifier: Apache-2.0
// modbus-sim: simulated Modbus TCP thermostats (see simulator.ts for the register map).
//   modbus-sim [--host 127.0.0.1] [--port 5020] [--count 1] [--unit 255] [--period-ms 1000]
//              [--block 1000] [--temperature 20] [--setpoint 21]
// With --count N, N independent thermostats listen on ports port..port+N-1.
// Prints one JSON line {"ready":true,"host":…,"ports":[…]} on stdout once every port listens;
// stops on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { ThermostatSimulator } from './simulator.js';

const USAGE = `usage: modbus-sim [--host 127.0.0.1] [--port 5020] [--count 1] [--unit 255] [--period-ms 1000] [--block 1000] [--temperature 20] [--setpoint 21]`;

function numberArg(values: Record<string, unknown>, name: string, def: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`modbus-sim: --${name} must be a number in ${min}..${max}, got "${String(raw)}"\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        count: { type: 'string' },
        unit: { type: 'string' },
        'period-ms': { type: 'string' },
        block: { type: 'string' },
        temperature: { type: 'string' },
        setpoint: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`modbus-sim: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values['help']) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const host = typeof values['host'] === 'string' ? values['host'] : '127.0.0.1';
  const port = numberArg(values, 'port', 5020, 1, 65535);
  const count = numberArg(values, 'count', 1, 1, 5000);
  if (port + count - 1 > 65535) {
    process.stderr.write(`modbus-sim: ports ${port}..${port + count - 1} run past 65535\n`);
    process.exit(2);
  }
  const common = {
    host,
    unitId: numberArg(values, 'unit', 255, 1, 255),
    periodMs: numberArg(values, 'period-ms', 1000, 10, 3_600_000),
    block: numberArg(values, 'block', 1000, 0, 65435),
    initialTemperature: numberArg(values, 'temperature', 20, -20, 60),
    setpoint: numberArg(values, 'setpoint', 21, 5, 35),
  };
  const sims = Array.from({ length: count }, (_, i) => new ThermostatSimulator({ ...common, port: port + i }));
  try {
    await Promise.all(sims.map((s) => s.start()));
  } catch (err) {
    process.stderr.write(`modbus-sim: cannot listen: ${(err as Error).message}\n`);
    await Promise.all(sims.map((s) => s.stop()));
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ ready: true, host, ports: sims.map((s) => s.port) })}\n`);
  const stop = (): void => {
    void Promise.all(sims.map((s) => s.stop())).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
