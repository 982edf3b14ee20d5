// SPDX-License-Identifier: Apache-2.0
// The embedded store (SQLite via better-sqlite3): registered mappers, reported twins with a
// bounded history per property, device states, objects applied through the API, desired-value
// overrides and what each mapper has been sent. Everything survives a restart.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

/** A mapper as it registered (MapperRegister). */
export interface StoredMapper {
  readonly name: string;
  readonly version: string;
  readonly apiVersion: string;
  readonly protocol: string;
  /** The mapper's own socket path (MapperInfo.address, UTF-8). */
  readonly address: string;
  readonly state: string;
  readonly withData: boolean;
  /** Last registration, ms since epoch. */
  readonly registeredAt: number;
  readonly registrations: number;
}

/** The latest reported twin of one property. */
export interface StoredTwin {
  readonly deviceId: string;
  readonly property: string;
  readonly reported: string;
  readonly reportedMetadata: Readonly<Record<string, string>>;
  readonly observedDesired: string;
  /** When edgecore-dmi received the report, ms since epoch. */
  readonly reportedAt: number;
}

export interface HistoryPoint {
  readonly value: string;
  readonly at: number;
}

export interface StoredState {
  readonly deviceId: string;
  readonly state: string;
  readonly at: number;
  /** Last time the device reported `online` or `ok`, ms since epoch (0 if never). */
  readonly lastOnline: number;
}

/** A Device or DeviceModel applied through the API (`apply -f`). */
export interface AppliedObject {
  readonly kind: 'Device' | 'DeviceModel';
  readonly id: string;
  readonly object: Record<string, unknown>;
  /** File name given by the client, for error messages. */
  readonly source: string;
  readonly appliedAt: number;
}

/** A desired value set through the API (`set-desired`), laid over the Device definition. */
export interface DesiredOverride {
  readonly deviceId: string;
  readonly property: string;
  readonly value: string;
  /** The desired value the Device definition had when the override was set ('' if none). */
  readonly base: string;
  readonly at: number;
}

/** What one protocol's mapper has been sent: fingerprints by `namespace/name`. */
export interface Delivered {
  readonly models: Map<string, string>;
  readonly devices: Map<string, string>;
}

export interface StoreOptions {
  /** Reported values kept per property for charts (default 500). */
  readonly historyLimit?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS mappers (
  name TEXT PRIMARY KEY, version TEXT NOT NULL, api_version TEXT NOT NULL, protocol TEXT NOT NULL,
  address TEXT NOT NULL, state TEXT NOT NULL, with_data INTEGER NOT NULL, registered_at INTEGER NOT NULL,
  registrations INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS twins (
  device_id TEXT NOT NULL, property TEXT NOT NULL, reported TEXT NOT NULL, reported_meta TEXT NOT NULL,
  observed_desired TEXT NOT NULL, reported_at INTEGER NOT NULL, PRIMARY KEY (device_id, property));
CREATE TABLE IF NOT EXISTS twin_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, property TEXT NOT NULL,
  value TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS twin_history_prop ON twin_history (device_id, property, id);
CREATE TABLE IF NOT EXISTS states (
  device_id TEXT PRIMARY KEY, state TEXT NOT NULL, at INTEGER NOT NULL, last_online INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS applied (
  kind TEXT NOT NULL, id TEXT NOT NULL, object TEXT NOT NULL, source TEXT NOT NULL, applied_at INTEGER NOT NULL,
  PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS desired (
  device_id TEXT NOT NULL, property TEXT NOT NULL, value TEXT NOT NULL, base TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (device_id, property));
CREATE TABLE IF NOT EXISTS delivered (
  protocol TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, fingerprint TEXT NOT NULL,
  PRIMARY KEY (protocol, kind, id));
`;

interface MapperRow {
  name: string;
  version: string;
  api_version: string;
  protocol: string;
  address: string;
  state: string;
  with_data: number;
  registered_at: number;
  registrations: number;
}
interface TwinRow {
  device_id: string;
  property: string;
  reported: string;
  reported_meta: string;
  observed_desired: string;
  reported_at: number;
}

function parseMeta(text: string): Record<string, string> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

export class Store {
  readonly path: string;
  readonly historyLimit: number;
  private readonly db: Database.Database;

  constructor(path: string, opts: StoreOptions = {}) {
    this.path = path === ':memory:' ? path : resolve(path);
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
    this.historyLimit = opts.historyLimit ?? 500;
    if (!(this.historyLimit >= 1)) throw new RangeError(`historyLimit must be >= 1 (got ${this.historyLimit})`);
    this.db = new Database(this.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- mappers ----

  upsertMapper(m: Omit<StoredMapper, 'registrations'>): StoredMapper {
    this.db
      .prepare(
        `INSERT INTO mappers (name, version, api_version, protocol, address, state, with_data, registered_at)
         VALUES (@name, @version, @apiVersion, @protocol, @address, @state, @withData, @registeredAt)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, api_version = excluded.api_version,
           protocol = excluded.protocol, address = excluded.address, state = excluded.state,
           with_data = excluded.with_data, registered_at = excluded.registered_at, registrations = registrations + 1`,
      )
      .run({ ...m, withData: m.withData ? 1 : 0 });
    return this.mappers().find((x) => x.name === m.name)!;
  }

  mappers(): StoredMapper[] {
    return (this.db.prepare('SELECT * FROM mappers ORDER BY name').all() as MapperRow[]).map((r) => ({
      name: r.name,
      version: r.version,
      apiVersion: r.api_version,
      protocol: r.protocol,
      address: r.address,
      state: r.state,
      withData: r.with_data === 1,
      registeredAt: r.registered_at,
      registrations: r.registrations,
    }));
  }

  // ---- twins ----

  /** Stores reported twins of one device (one transaction) and appends to the bounded history. */
  putTwins(deviceId: string, twins: readonly { property: string; reported: string; reportedMetadata: Record<string, string>; observedDesired: string }[], at: number): void {
    const upsert = this.db.prepare(
      `INSERT INTO twins (device_id, property, reported, reported_meta, observed_desired, reported_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id, property) DO UPDATE SET reported = excluded.reported, reported_meta = excluded.reported_meta,
         observed_desired = excluded.observed_desired, reported_at = excluded.reported_at`,
    );
    const hist = this.db.prepare('INSERT INTO twin_history (device_id, property, value, at) VALUES (?, ?, ?, ?)');
    const trim = this.db.prepare(
      `DELETE FROM twin_history WHERE device_id = ? AND property = ? AND id <= (
         SELECT id FROM twin_history WHERE device_id = ? AND property = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.db.transaction(() => {
      for (const t of twins) {
        upsert.run(deviceId, t.property, t.reported, JSON.stringify(t.reportedMetadata), t.observedDesired, at);
        hist.run(deviceId, t.property, t.reported, at);
        trim.run(deviceId, t.property, deviceId, t.property, this.historyLimit);
      }
    })();
  }

  twins(deviceId?: string): StoredTwin[] {
    const rows = (
      deviceId === undefined
        ? this.db.prepare('SELECT * FROM twins ORDER BY device_id, property').all()
        : this.db.prepare('SELECT * FROM twins WHERE device_id = ? ORDER BY property').all(deviceId)
    ) as TwinRow[];
    return rows.map((r) => ({
      deviceId: r.device_id,
      property: r.property,
      reported: r.reported,
      reportedMetadata: parseMeta(r.reported_meta),
      observedDesired: r.observed_desired,
      reportedAt: r.reported_at,
    }));
  }

  /** Up to `limit` most recent values of one property, oldest first. */
  history(deviceId: string, property: string, limit = this.historyLimit): HistoryPoint[] {
    const rows = this.db
      .prepare('SELECT value, at FROM twin_history WHERE device_id = ? AND property = ? ORDER BY id DESC LIMIT ?')
      .all(deviceId, property, Math.max(1, Math.min(limit, this.historyLimit))) as HistoryPoint[];
    return rows.reverse();
  }

  // ---- states ----

  putState(deviceId: string, state: string, at: number): StoredState {
    const online = state === 'online' || state === 'ok';
    this.db
      .prepare(
        `INSERT INTO states (device_id, state, at, last_online) VALUES (?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, at = excluded.at,
           last_online = CASE WHEN ? THEN excluded.at ELSE states.last_online END`,
      )
      .run(deviceId, state, at, online ? at : 0, online ? 1 : 0);
    return this.state(deviceId)!;
  }

  state(deviceId: string): StoredState | undefined {
    const r = this.db.prepare('SELECT * FROM states WHERE device_id = ?').get(deviceId) as
      | { device_id: string; state: string; at: number; last_online: number }
      | undefined;
    return r && { deviceId: r.device_id, state: r.state, at: r.at, lastOnline: r.last_online };
  }

  states(): StoredState[] {
    return (this.db.prepare('SELECT * FROM states ORDER BY device_id').all() as { device_id: string; state: string; at: number; last_online: number }[]).map((r) => ({
      deviceId: r.device_id,
      state: r.state,
      at: r.at,
      lastOnline: r.last_online,
    }));
  }

  // ---- objects applied through the API ----

  putApplied(o: AppliedObject): void {
    this.db
      .prepare(
        `INSERT INTO applied (kind, id, object, source, applied_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (kind, id) DO UPDATE SET object = excluded.object, source = excluded.source, applied_at = excluded.applied_at`,
      )
      .run(o.kind, o.id, JSON.stringify(o.object), o.source, o.appliedAt);
  }

  removeApplied(kind: 'Device' | 'DeviceModel', id: string): boolean {
    return this.db.prepare('DELETE FROM applied WHERE kind = ? AND id = ?').run(kind, id).changes > 0;
  }

  applied(): AppliedObject[] {
    return (this.db.prepare('SELECT * FROM applied ORDER BY applied_at, kind, id').all() as { kind: 'Device' | 'DeviceModel'; id: string; object: string; source: string; applied_at: number }[]).map(
      (r) => ({ kind: r.kind, id: r.id, object: JSON.parse(r.object) as Record<string, unknown>, source: r.source, appliedAt: r.applied_at }),
    );
  }

  // ---- desired overrides ----

  setDesired(o: DesiredOverride): void {
    this.db
      .prepare(
        `INSERT INTO desired (device_id, property, value, base, at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (device_id, property) DO UPDATE SET value = excluded.value, base = excluded.base, at = excluded.at`,
      )
      .run(o.deviceId, o.property, o.value, o.base, o.at);
  }

  clearDesired(deviceId: string, property?: string): void {
    if (property === undefined) this.db.prepare('DELETE FROM desired WHERE device_id = ?').run(deviceId);
    else this.db.prepare('DELETE FROM desired WHERE device_id = ? AND property = ?').run(deviceId, property);
  }

  desired(): DesiredOverride[] {
    return (this.db.prepare('SELECT * FROM desired ORDER BY device_id, property').all() as { device_id: string; property: string; value: string; base: string; at: number }[]).map((r) => ({
      deviceId: r.device_id,
      property: r.property,
      value: r.value,
      base: r.base,
      at: r.at,
    }));
  }

  // ---- what each mapper has been sent ----

  delivered(protocol: string): Delivered {
    const out: Delivered = { models: new Map(), devices: new Map() };
    for (const r of this.db.prepare('SELECT kind, id, fingerprint FROM delivered WHERE protocol = ?').all(protocol) as { kind: string; id: string; fingerprint: string }[]) {
      (r.kind === 'Device' ? out.devices : out.models).set(r.id, r.fingerprint);
    }
    return out;
  }

  setDelivered(protocol: string, kind: 'Device' | 'DeviceModel', id: string, fingerprint: string | undefined): void {
    if (fingerprint === undefined) this.db.prepare('DELETE FROM delivered WHERE protocol = ? AND kind = ? AND id = ?').run(protocol, kind, id);
    else
      this.db
        .prepare('INSERT INTO delivered (protocol, kind, id, fingerprint) VALUES (?, ?, ?, ?) ON CONFLICT (protocol, kind, id) DO UPDATE SET fingerprint = excluded.fingerprint')
        .run(protocol, kind, id, fingerprint);
  }

  /** Replaces what a protocol's mapper is known to have (after MapperRegister). */
  resetDelivered(protocol: string, d: Delivered): void {
    const ins = this.db.prepare('INSERT INTO delivered (protocol, kind, id, fingerprint) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM delivered WHERE protocol = ?').run(protocol);
      for (const [id, fp] of d.models) ins.run(protocol, 'DeviceModel', id, fp);
      for (const [id, fp] of d.devices) ins.run(protocol, 'Device', id, fp);
    })();
  }
}
