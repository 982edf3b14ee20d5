// SPDX-License-Identifier: Apache-2.0
// The parts of @abandonware/noble this driver uses, typed here (noble's bundled index.d.ts
// describes the default entry point, which opens the HCI socket on import), and the lazy loader.
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

/**
 * noble's bindings interface: what `lib/hci-socket/bindings.js` (Linux), `lib/mac/bindings.js`
 * and friends implement, and what `@abandonware/noble/with-bindings` accepts. Noble calls these
 * methods; the bindings answer with events (`stateChange`, `discover`, `connect`, `disconnect`,
 * `servicesDiscover`, `characteristicsDiscover`, `descriptorsDiscover`, `read`, `write`, `notify`,
 * `rssiUpdate`, …) carrying the peripheral UUID first. Inject your own to drive noble without
 * an adapter (tests) or through another transport.
 */
export interface NobleBindings extends EventEmitter {
  init(): void;
  startScanning(serviceUuids?: readonly string[], allowDuplicates?: boolean): void;
  stopScanning(): void;
  connect(peripheralUuid: string, parameters?: unknown): void;
  cancelConnect?(peripheralUuid: string, parameters?: unknown): void;
  disconnect(peripheralUuid: string): void;
  updateRssi(peripheralUuid: string): void;
  discoverServices(peripheralUuid: string, serviceUuids?: readonly string[]): void;
  discoverIncludedServices(peripheralUuid: string, serviceUuid: string, serviceUuids?: readonly string[]): void;
  discoverCharacteristics(peripheralUuid: string, serviceUuid: string, characteristicUuids?: readonly string[]): void;
  read(peripheralUuid: string, serviceUuid: string, characteristicUuid: string): void;
  write(peripheralUuid: string, serviceUuid: string, characteristicUuid: string, data: Buffer, withoutResponse: boolean): void;
  broadcast(peripheralUuid: string, serviceUuid: string, characteristicUuid: string, broadcast: boolean): void;
  notify(peripheralUuid: string, serviceUuid: string, characteristicUuid: string, notify: boolean): void;
  discoverDescriptors(peripheralUuid: string, serviceUuid: string, characteristicUuid: string): void;
  readValue(peripheralUuid: string, serviceUuid: string, characteristicUuid: string, descriptorUuid: string): void;
  writeValue(peripheralUuid: string, serviceUuid: string, characteristicUuid: string, descriptorUuid: string, data: Buffer): void;
  readHandle(peripheralUuid: string, handle: number): void;
  writeHandle(peripheralUuid: string, handle: number, data: Buffer, withoutResponse: boolean): void;
  setScanParameters?(interval: number, window: number): void;
  reset?(): void;
}

/** Advertisement data as noble parses it. */
export interface NobleAdvertisement {
  localName?: string | undefined;
  txPowerLevel?: number | undefined;
  manufacturerData?: Buffer | undefined;
  serviceData?: { uuid: string; data: Buffer }[];
  serviceUuids?: string[];
}

export interface NobleDescriptor extends EventEmitter {
  readonly uuid: string;
}

export interface NobleCharacteristic extends EventEmitter {
  readonly uuid: string;
  /** `read`, `write`, `writeWithoutResponse`, `notify`, `indicate`, `broadcast`, … */
  readonly properties: readonly string[];
  descriptors: NobleDescriptor[] | null;
  read(): void;
  write(data: Buffer, withoutResponse: boolean): void;
  notify(notify: boolean): void;
  discoverDescriptors(): void;
}

export interface NobleService extends EventEmitter {
  readonly uuid: string;
  characteristics: NobleCharacteristic[] | null;
  discoverCharacteristics(characteristicUuids?: readonly string[]): void;
}

export interface NoblePeripheral extends EventEmitter {
  readonly id: string;
  readonly address: string;
  readonly addressType: string;
  connectable: boolean;
  advertisement: NobleAdvertisement;
  rssi: number;
  state: 'error' | 'connecting' | 'connected' | 'disconnecting' | 'disconnected';
  services: NobleService[] | null;
  connect(): void;
  cancelConnect(): void;
  disconnect(): void;
  discoverServices(serviceUuids?: readonly string[]): void;
}

export interface Noble extends EventEmitter {
  /** Reading it initialises the bindings if nothing else has. */
  readonly state: string;
  startScanning(serviceUuids: readonly string[], allowDuplicates: boolean, callback?: (error: Error | null) => void): void;
  stopScanning(callback?: () => void): void;
}

const require = createRequire(import.meta.url);

/**
 * The platform's default bindings (HCI socket on Linux), created only now. Throws what the
 * platform throws: on a machine without Bluetooth, `EAFNOSUPPORT` from opening the HCI socket.
 */
export function defaultBindings(): NobleBindings {
  const resolve = require('@abandonware/noble/lib/resolve-bindings.js') as (options: object) => NobleBindings;
  return resolve({});
}

/** noble on the given bindings, through its custom-binding entry point (never the default one, which opens the adapter on import). */
export function nobleWithBindings(bindings: NobleBindings): Noble {
  const withBindings = require('@abandonware/noble/with-bindings.js') as (b: NobleBindings) => Noble;
  return withBindings(bindings);
}
