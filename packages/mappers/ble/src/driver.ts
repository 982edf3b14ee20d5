// SPDX-License-Identifier: Apache-2.0
// The Bluetooth LE driver: devices by MAC address or local name, GATT discovered once per
// connection, visitors with upstream's data converter or typed decodes, writes through
// upstream's dataWrite map or typed encodes, notifications, and discovery by scanning.
import {
  createLogger,
  defineDriver,
  type DeviceClient,
  type Discoverable,
  type DiscoveredDevice,
  type DriverDefinition,
  type Logger,
  MapperError,
  toMapperError,
} from '@mapperkit/framework';
import { BleCentral } from './central.js';
import { BleClient } from './client.js';
import { type BleProtocol, type BleVisitor, describeTarget, protocolConfigSchema, visitorConfigSchema } from './config.js';
import { connectPeripheral, disconnectPeripheral, discoverGatt } from './gatt.js';
import type { NobleBindings } from './noble.js';
import { displayUuid } from './uuid.js';

/** Options of {@link createBleDriver}. */
export interface BleDriverOptions {
  /**
   * Creates noble's bindings (called on first use, and again after a failure). Default: noble's
   * platform bindings, i.e. the HCI socket on Linux. Inject your own to run without an adapter.
   */
  readonly bindings?: () => NobleBindings;
  /** Protocol name the driver serves (config.yaml `common.protocol`, Device `protocolName`). Default `bluetooth`, upstream's name. */
  readonly protocol?: string;
  /** Deadline of one GATT discovery step and of enabling notifications. Default 5000 ms. */
  readonly gattTimeoutMs?: number;
  /** How long {@link Discoverable.discover} scans. Default 5000 ms. */
  readonly discoverScanMs?: number;
  /** Logger for adapter-level events; default: the first device's logger. */
  readonly logger?: Logger;
}

/** The driver type: a {@link DriverDefinition} that can also discover devices. */
export type BleDriver = DriverDefinition<BleProtocol, BleVisitor> & Discoverable;

/** Creates a BLE driver with its own central (its own noble instance, loaded on first use). */
export function createBleDriver(options: BleDriverOptions = {}): BleDriver {
  const gattTimeoutMs = options.gattTimeoutMs ?? 5000;
  const discoverScanMs = options.discoverScanMs ?? 5000;
  let fallbackLog: Logger | undefined = options.logger;
  const central = new BleCentral({
    bindings: options.bindings,
    log: () => (fallbackLog ??= createLogger({ name: 'mapper-ble' })),
  });

  const driver = defineDriver({
    protocol: options.protocol ?? 'bluetooth',
    protocolConfig: protocolConfigSchema,
    visitorConfig: visitorConfigSchema,

    async connect({ device, config, log }, signal): Promise<DeviceClient<BleVisitor>> {
      fallbackLog ??= log;
      const target = describeTarget(config);
      await central.ready(signal);
      const peripheral = await central.find(config, signal);
      if (peripheral.connectable === false) {
        // An LE connection to it would stay pending forever.
        throw new MapperError('Unreachable', `BLE device ${target} advertises as not connectable (a beacon?); it cannot be connected to`);
      }
      const claim = central.claim(peripheral, device.id);
      let connected = false;
      try {
        await central.exclusive(signal, `connecting to ${target}`, () => connectPeripheral(peripheral, signal, `connecting to ${target}`, log));
        connected = true;
        const gatt = await discoverGatt(peripheral, signal, gattTimeoutMs);
        log.info(
          {
            address: peripheral.address,
            rssi: peripheral.rssi,
            services: [...gatt.services.entries()].map(([s, chars]) => `${displayUuid(s)}[${[...chars.keys()].map(displayUuid).join(' ')}]`),
          },
          'BLE device connected; GATT table discovered',
        );
        return new BleClient({ peripheral, gatt, central, claim, target, log, gattTimeoutMs });
      } catch (err) {
        if (connected) await disconnectPeripheral(peripheral, 2000);
        // The address may have changed (privacy) or the device moved on: scan afresh next time.
        else central.forget(peripheral);
        central.release(peripheral, claim);
        throw toMapperError(err, 'Unreachable');
      }
    },

    async discover(signal: AbortSignal): Promise<readonly DiscoveredDevice[]> {
      await central.ready(signal);
      const seen = await central.scan(discoverScanMs, signal);
      return seen.map(({ peripheral: p }) => {
        const adv = p.advertisement;
        const details: Record<string, string> = { rssi: String(p.rssi), addressType: p.addressType, connectable: String(p.connectable) };
        if (adv.serviceUuids && adv.serviceUuids.length > 0) details['serviceUuids'] = adv.serviceUuids.join(',');
        if (adv.manufacturerData) details['manufacturerData'] = adv.manufacturerData.toString('hex');
        if (adv.txPowerLevel !== undefined) details['txPowerLevel'] = String(adv.txPowerLevel);
        const protocolConfig: Record<string, string> = {};
        if (p.address && p.address !== 'unknown') protocolConfig['macAddress'] = p.address.toUpperCase();
        if (adv.localName) protocolConfig['localName'] = adv.localName;
        return {
          id: p.address && p.address !== 'unknown' ? p.address.toUpperCase() : p.id,
          ...(adv.localName ? { name: adv.localName } : {}),
          protocolConfig,
          details,
        };
      });
    },
  });
  return driver as BleDriver;
}

/** The default driver: noble's platform bindings, protocol `bluetooth`. */
const bleDriver: BleDriver = createBleDriver();
export default bleDriver;
