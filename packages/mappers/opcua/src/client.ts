// SPDX-License-Identifier: Apache-2.0
// One OPC UA connection (secure channel + session) per device. Reads of a tick go out as one
// Read service call (split only to respect the server's MaxNodesPerRead); subscribed
// properties become monitored items of one subscription. Reconnecting is the framework's job:
// node-opcua's own reconnection is switched off (maxRetry 0), so a lost channel or session
// surfaces as a rejected read, an `offline` state or an ended subscription, and the framework
// closes this client and calls connect() again with backoff, which opens a new channel and
// session with the same security settings and re-creates the subscription.
import {
  type ConnectContext,
  type DeviceClient,
  type DeviceState,
  type Logger,
  MapperError,
  type PropertyRequest,
  type PropertyValue,
  type Reading,
  type ReadResult,
  type Subscribable,
} from '@mapperkit/framework';
import {
  AttributeIds,
  type ClientMonitoredItemBase,
  type ClientSession,
  type ClientSubscription,
  DataChangeFilter,
  DataChangeTrigger,
  DataType,
  type DataValue,
  DeadbandType,
  findBasicDataType,
  MessageSecurityMode,
  type MonitoringParametersOptions,
  NodeId,
  NodeIdType,
  OPCUAClient,
  type ReadValueIdOptions,
  SecurityPolicy,
  ServerState,
  type StatusCode,
  TimestampsToReturn,
  VariableIds,
} from 'node-opcua';
import type { ProtocolConfig, VisitorConfig } from './config.js';
import { dataTypeOf, fromVariant, toVariant } from './convert.js';
import { connectError, isConnectionLoss, requestErrorKind } from './errors.js';
import type { NodeRef } from './node-id.js';
import { nodeOpcuaLogsRouted, routeNodeOpcuaLogs } from './opcua-log.js';
import { PushQueue } from './queue.js';
import { prepareSecurity, type SecuritySetup } from './security.js';

type Request = PropertyRequest<VisitorConfig>;

/** What the driver learnt about the server right after the session was activated. */
interface ServerInfo {
  readonly namespaces: readonly string[];
  /** 0 = no limit. */
  readonly maxNodesPerRead: number;
  readonly maxMonitoredItemsPerCall: number;
}

const WRITE_REJECTIONS = /BadTypeMismatch|BadOutOfRange|BadNotWritable|BadUserAccessDenied|BadWriteNotSupported|BadIndexRangeInvalid|BadIndexRangeNoData|BadDataEncodingUnsupported|BadNotSupported/;

/** Rejects with `signal.reason` as soon as `signal` aborts (the request itself cannot be cancelled). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined); // settles later; nobody waits for it any more
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
    );
  });
}

function toNodeId(ref: NodeRef, namespaceIndex: number): NodeId {
  switch (ref.kind) {
    case 'i':
      return new NodeId(NodeIdType.NUMERIC, ref.identifier as number, namespaceIndex);
    case 's':
      return new NodeId(NodeIdType.STRING, ref.identifier as string, namespaceIndex);
    case 'g':
      return new NodeId(NodeIdType.GUID, ref.identifier as string, namespaceIndex);
    case 'b':
      return new NodeId(NodeIdType.BYTESTRING, Buffer.from(ref.identifier as string, 'base64'), namespaceIndex);
  }
}

function statusText(s: StatusCode): string {
  return s.description ? `${s.name} (${s.description})` : s.name;
}

/** Opens the channel and session for one device. */
export async function connectOpcua(ctx: ConnectContext<ProtocolConfig>, signal: AbortSignal): Promise<OpcuaDeviceClient> {
  const { config, log, device } = ctx;
  // Normally routed by the driver's init(); a driver used without a mapper routes to the device log.
  if (!nodeOpcuaLogsRouted()) routeNodeOpcuaLogs(log);
  signal.throwIfAborted();
  const sec = await prepareSecurity(config, log);
  const client = OPCUAClient.create({
    applicationName: config.applicationName,
    applicationUri: sec.applicationUri,
    clientName: device.id,
    endpointMustExist: false,
    securityMode: MessageSecurityMode[config.securityMode],
    securityPolicy: SecurityPolicy[config.securityPolicy],
    // The framework owns reconnection (backoff, state reports): one attempt here.
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    clientCertificateManager: sec.certificateManager,
    certificateFile: sec.certificateFile,
    privateKeyFile: sec.privateKeyFile,
    requestedSessionTimeout: config.sessionTimeout,
    defaultTransactionTimeout: config.timeout,
    // transportTimeout is node-opcua's socket *inactivity* timeout: keep its default (60 s), the
    // framework's state checks (runtime.state_check_ms) keep an idle connection busy enough.
    keepSessionAlive: false,
  });
  const errCtx = {
    url: config.url,
    securityPolicy: config.securityPolicy,
    securityMode: config.securityMode,
    identityLabel: sec.identityLabel,
    pkiDir: sec.pkiDir,
    certificateFile: sec.certificateFile,
    timeoutMs: config.timeout,
  };
  let session: ClientSession | undefined;
  const giveUp = async (): Promise<void> => {
    if (session) await bounded(session.close(true), 1000);
    await bounded(client.disconnect(), 2000);
    await sec.certificateManager.dispose().catch(() => undefined);
  };
  // `timeout` bounds each step (channel, session, server info) on top of the framework's connect timeout.
  const step = (): AbortSignal => AbortSignal.any([signal, AbortSignal.timeout(config.timeout)]);
  try {
    await abortable(client.connect(config.url), step());
    session = await abortable(client.createSession(sec.userIdentity), step());
    const info = await abortable(readServerInfo(session), step());
    log.debug(
      { url: config.url, securityPolicy: config.securityPolicy, securityMode: config.securityMode, identity: sec.identityLabel, ...info, namespaces: info.namespaces.length },
      'OPC UA session activated',
    );
    return new OpcuaDeviceClient({ config, log, client, session, security: sec, info });
  } catch (err) {
    await giveUp();
    throw connectError(err, errCtx);
  }
}

async function readServerInfo(session: ClientSession): Promise<ServerInfo> {
  const ids = [
    VariableIds.Server_NamespaceArray,
    VariableIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    VariableIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
  ];
  const dvs = await session.read(ids.map((i) => ({ nodeId: new NodeId(NodeIdType.NUMERIC, i, 0), attributeId: AttributeIds.Value })));
  const num = (dv: DataValue | undefined): number => (dv && dv.statusCode.isGood() && typeof dv.value.value === 'number' ? dv.value.value : 0);
  const ns = dvs[0]?.statusCode.isGood() ? (dvs[0].value.value as string[]) : [];
  return { namespaces: Array.from(ns), maxNodesPerRead: num(dvs[1]), maxMonitoredItemsPerCall: num(dvs[2]) };
}

interface WriteType {
  readonly dataType: DataType;
  readonly valueRank: number;
}

/** Monitoring parameters of a visitor, and the key grouping visitors that share them. */
function monitoring(v: VisitorConfig): { key: string; params: MonitoringParametersOptions } {
  const filter =
    v.deadbandType === 'None' && v.dataChangeTrigger === 'StatusValue'
      ? null
      : new DataChangeFilter({ trigger: DataChangeTrigger[v.dataChangeTrigger], deadbandType: DeadbandType[v.deadbandType], deadbandValue: v.deadbandValue });
  return {
    key: `${v.samplingInterval}|${v.queueSize}|${v.discardOldest}|${v.deadbandType}|${v.deadbandValue}|${v.dataChangeTrigger}`,
    params: { samplingInterval: v.samplingInterval, queueSize: v.queueSize, discardOldest: v.discardOldest, filter },
  };
}

/** The DeviceClient (and Subscribable) of one connected OPC UA device. */
export class OpcuaDeviceClient implements DeviceClient<VisitorConfig>, Subscribable<VisitorConfig> {
  private readonly config: ProtocolConfig;
  private readonly log: Logger;
  private readonly client: OPCUAClient;
  private readonly session: ClientSession;
  private readonly security: SecuritySetup;
  private readonly namespaces: readonly string[];
  private readonly maxMonitoredItemsPerCall: number;
  /** Nodes per Read call; lowered if the server answers BadTooManyOperations. */
  private readChunk: number;
  private readonly nodes = new WeakMap<VisitorConfig, NodeId | MapperError>();
  private readonly writeTypes = new Map<string, WriteType>();
  private readonly lostListeners = new Set<(e: MapperError) => void>();
  private lost: MapperError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly subscriptions = new Set<ClientSubscription>();
  /** Consecutive state checks the server did not answer in time. */
  private stateTimeouts = 0;

  constructor(args: { config: ProtocolConfig; log: Logger; client: OPCUAClient; session: ClientSession; security: SecuritySetup; info: ServerInfo }) {
    this.config = args.config;
    this.log = args.log;
    this.client = args.client;
    this.session = args.session;
    this.security = args.security;
    this.namespaces = args.info.namespaces;
    this.maxMonitoredItemsPerCall = args.info.maxMonitoredItemsPerCall;
    const limits = [args.info.maxNodesPerRead, this.config.maxNodesPerRead ?? 0].filter((n) => n > 0);
    this.readChunk = limits.length > 0 ? Math.min(...limits) : Number.POSITIVE_INFINITY;
    this.client.on('connection_lost', () => this.markLost(new MapperError('Unreachable', `connection to ${this.config.url} lost`)));
    this.client.on('close', (err?: Error | null) => {
      if (err) this.markLost(new MapperError('Unreachable', `connection to ${this.config.url} closed: ${err.message}`, { cause: err }));
    });
    this.session.on('session_closed', (status: StatusCode) => this.markLost(new MapperError('Unreachable', `session closed by ${this.config.url}: ${statusText(status)}`)));
  }

  private markLost(e: MapperError): void {
    if (this.lost || this.closed) return;
    this.lost = e;
    this.log.warn({ err: e.message }, 'OPC UA connection lost');
    for (const l of [...this.lostListeners]) l(e);
  }

  private usable(): void {
    if (this.closed) throw new MapperError('Unreachable', 'client closed');
    if (this.lost) throw this.lost;
  }

  /** Node id of a visitor on this session (namespace URIs resolved against this server's NamespaceArray). */
  private nodeOf(v: VisitorConfig): NodeId | MapperError {
    let n = this.nodes.get(v);
    if (n) return n;
    const ns = v.node.namespace;
    if ('uri' in ns) {
      const index = this.namespaces.indexOf(ns.uri);
      n =
        index < 0
          ? new MapperError('InvalidConfig', `node ${v.node.text}: namespace ${ns.uri} is not in the server's NamespaceArray [${this.namespaces.join(', ')}]`)
          : toNodeId(v.node, index);
    } else n = toNodeId(v.node, ns.index);
    this.nodes.set(v, n);
    return n;
  }

  /** Calls `fn`, turning a rejection into a MapperError and noticing a lost connection. */
  private async request<T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    try {
      return await abortable(fn(), signal);
    } catch (err) {
      if (signal.aborted && err === signal.reason) throw err;
      const kind = requestErrorKind(err);
      const text = err instanceof Error ? err.message.split('\n')[0]!.trim() : String(err);
      const e = new MapperError(kind, `${what}: ${text}`, { cause: err });
      if (kind === 'Unreachable' || isConnectionLoss(err)) this.markLost(e);
      throw e;
    }
  }

  async read(requests: readonly Request[], signal: AbortSignal): Promise<readonly ReadResult[]> {
    this.usable();
    const results: ReadResult[] = new Array<ReadResult>(requests.length);
    const plan: { index: number; nodeId: NodeId }[] = [];
    requests.forEach((r, index) => {
      const n = this.nodeOf(r.visitor);
      if (n instanceof MapperError) results[index] = { ok: false, error: n };
      else plan.push({ index, nodeId: n });
    });
    let offset = 0;
    while (offset < plan.length) {
      const part = plan.slice(offset, offset + this.readChunk);
      const nodesToRead: ReadValueIdOptions[] = part.map((p) => ({ nodeId: p.nodeId, attributeId: AttributeIds.Value }));
      let values: DataValue[];
      try {
        values = await this.request(`read ${part.length} nodes from ${this.config.url}`, () => this.session.read(nodesToRead, this.config.maxAge), signal);
      } catch (err) {
        if (err instanceof MapperError && /BadTooManyOperations/.test(err.message) && part.length > 1) {
          // The server enforces a smaller limit than it advertised: halve and retry.
          this.readChunk = Math.max(1, Math.floor(part.length / 2));
          this.log.warn({ nodesPerRead: this.readChunk }, 'server refused the Read size (BadTooManyOperations); reading in smaller chunks');
          continue;
        }
        throw err;
      }
      part.forEach((p, k) => {
        results[p.index] = this.result(values[k], requests[p.index]!);
      });
      offset += part.length;
    }
    return results;
  }

  private result(dv: DataValue | undefined, r: Request): ReadResult {
    const node = r.visitor.node.text;
    if (!dv) return { ok: false, error: new MapperError('DeviceError', `node ${node}: the server returned no result`) };
    if (dv.statusCode.isBad()) return { ok: false, error: new MapperError('DeviceError', `node ${node}: ${statusText(dv.statusCode)}`) };
    try {
      const value = fromVariant(dv.value, r.type, node);
      const ts = dv.sourceTimestamp ?? dv.serverTimestamp;
      return ts ? { ok: true, value, timestamp: ts.getTime() } : { ok: true, value };
    } catch (err) {
      return { ok: false, error: err instanceof MapperError ? err : new MapperError('DeviceError', `node ${node}: ${String(err)}`) };
    }
  }

  /** The node's built-in DataType and ValueRank, read once per session. */
  private async writeType(r: Request, nodeId: NodeId, signal: AbortSignal): Promise<WriteType> {
    if (r.visitor.dataType) return { dataType: dataTypeOf(r.visitor.dataType), valueRank: -1 };
    const key = nodeId.toString();
    const cached = this.writeTypes.get(key);
    if (cached) return cached;
    const node = r.visitor.node.text;
    const [dt, rank] = await this.request(
      `read DataType of ${node}`,
      () =>
        this.session.read([
          { nodeId, attributeId: AttributeIds.DataType },
          { nodeId, attributeId: AttributeIds.ValueRank },
        ]),
      signal,
    );
    if (!dt || dt.statusCode.isBad()) throw new MapperError('DeviceError', `node ${node}: cannot read its DataType: ${dt ? statusText(dt.statusCode) : 'no result'}`);
    const typeId = dt.value.value as NodeId;
    let dataType: DataType;
    if (typeId.namespace === 0 && typeId.identifierType === NodeIdType.NUMERIC && (typeId.value as number) <= DataType.DiagnosticInfo) dataType = typeId.value as DataType;
    else dataType = await this.request(`resolve DataType ${typeId.toString()} of ${node}`, () => findBasicDataType(this.session, typeId), signal);
    if (dataType === DataType.Variant || dataType === DataType.Null) {
      // BaseDataType: the node takes any type; write the model's natural one.
      dataType = ({ int: DataType.Int64, float: DataType.Float, double: DataType.Double, boolean: DataType.Boolean, string: DataType.String, bytes: DataType.ByteString } as Record<string, DataType>)[r.type] ?? DataType.String;
    }
    const valueRank = rank?.statusCode.isGood() && typeof rank.value.value === 'number' ? rank.value.value : -1;
    const t = { dataType, valueRank };
    this.writeTypes.set(key, t);
    return t;
  }

  async write(r: Request, value: PropertyValue, signal: AbortSignal): Promise<void> {
    this.usable();
    const nodeId = this.nodeOf(r.visitor);
    if (nodeId instanceof MapperError) throw nodeId;
    const { dataType, valueRank } = await this.writeType(r, nodeId, signal);
    const variant = toVariant(value, dataType, valueRank, r.visitor.node.text);
    const status = await this.request(`write ${r.visitor.node.text}`, () => this.session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: variant } }), signal);
    if (status.isGood()) return;
    if (/BadTypeMismatch/.test(status.name)) this.writeTypes.delete(nodeId.toString());
    throw new MapperError(WRITE_REJECTIONS.test(status.name) ? 'WriteRejected' : 'DeviceError', `node ${r.visitor.node.text} refused the write: ${statusText(status)}`);
  }

  /**
   * `ok` while the server reports ServerState Running; `offline` once the connection is known
   * lost, or when the server has not answered two state checks in a row (a half-open TCP
   * connection or a frozen server: nothing else would notice on a subscription-only device).
   */
  async state(signal: AbortSignal): Promise<DeviceState> {
    if (this.closed || this.lost) return 'offline';
    let dv: DataValue;
    try {
      dv = await this.request(
        'read ServerStatus.State',
        () => this.session.read({ nodeId: new NodeId(NodeIdType.NUMERIC, VariableIds.Server_ServerStatus_State, 0), attributeId: AttributeIds.Value }),
        signal,
      );
      this.stateTimeouts = 0;
    } catch (err) {
      if (this.lost) return 'offline';
      const timedOut = (err instanceof Error && err.name === 'TimeoutError') || (err instanceof MapperError && err.kind === 'Timeout');
      if (timedOut && ++this.stateTimeouts >= 2) {
        this.markLost(new MapperError('Timeout', `${this.config.url} did not answer two state checks in a row`));
        return 'offline';
      }
      throw err;
    }
    if (dv.statusCode.isBad()) throw new MapperError('DeviceError', `ServerStatus.State: ${statusText(dv.statusCode)}`);
    switch (dv.value.value as ServerState) {
      case ServerState.Running:
        return 'ok';
      case ServerState.Shutdown:
        return 'offline';
      default:
        return 'unhealthy';
    }
  }

  isSubscribed(r: Request): boolean {
    return r.visitor.subscribe ?? this.config.subscribe;
  }

  subscribe(requests: readonly Request[], signal: AbortSignal): AsyncIterable<Reading> {
    return this.monitor(requests, signal);
  }

  private async *monitor(requests: readonly Request[], signal: AbortSignal): AsyncGenerator<Reading> {
    this.usable();
    const queue = new PushQueue<Reading>(Math.max(1000, requests.length * 4));
    const onLost = (e: MapperError): void => queue.fail(e);
    this.lostListeners.add(onLost);
    const onAbort = (): void => queue.end();
    signal.addEventListener('abort', onAbort, { once: true });
    let subscription: ClientSubscription | undefined;
    try {
      subscription = await this.request(
        `create subscription on ${this.config.url}`,
        () =>
          this.session.createSubscription2({
            requestedPublishingInterval: this.config.publishingInterval,
            requestedLifetimeCount: 60,
            requestedMaxKeepAliveCount: 10,
            maxNotificationsPerPublish: 0,
            publishingEnabled: true,
            priority: 10,
          }),
        signal,
      );
      this.subscriptions.add(subscription);
      const sub = subscription;
      sub.on('terminated', () => queue.fail(new MapperError('Unreachable', `subscription ${sub.subscriptionId} on ${this.config.url} terminated`)));
      sub.on('status_changed', (status: StatusCode) => {
        if (status.isBad()) queue.fail(new MapperError('Unreachable', `subscription ${sub.subscriptionId} on ${this.config.url}: ${statusText(status)}`));
      });

      // One CreateMonitoredItems call per distinct parameter set (and per server limit).
      const groups = new Map<string, { params: MonitoringParametersOptions; items: { r: Request; nodeId: NodeId }[] }>();
      for (const r of requests) {
        const nodeId = this.nodeOf(r.visitor);
        if (nodeId instanceof MapperError) {
          this.log.warn({ property: r.name, err: nodeId.message }, 'property not monitored');
          queue.push({ property: r.name, error: nodeId });
          continue;
        }
        const { key, params } = monitoring(r.visitor);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { params, items: [] }));
        g.items.push({ r, nodeId });
      }
      let monitored = 0;
      for (const g of groups.values()) {
        const per = this.maxMonitoredItemsPerCall > 0 ? this.maxMonitoredItemsPerCall : g.items.length;
        for (let off = 0; off < g.items.length; off += per) {
          const part = g.items.slice(off, off + per);
          const group = await this.request(
            `create ${part.length} monitored items`,
            () => sub.monitorItems(part.map((p) => ({ nodeId: p.nodeId, attributeId: AttributeIds.Value })), g.params, TimestampsToReturn.Both),
            signal,
          );
          group.monitoredItems.forEach((item: ClientMonitoredItemBase, i: number) => {
            const p = part[i]!;
            if (item.statusCode.isBad()) {
              const error = new MapperError('DeviceError', `node ${p.r.visitor.node.text}: monitored item refused: ${statusText(item.statusCode)}`);
              this.log.warn({ property: p.r.name, err: error.message }, 'monitored item refused by the server; the property gets no values');
              queue.push({ property: p.r.name, error });
            } else monitored++;
          });
          group.on('changed', (_item: ClientMonitoredItemBase, dv: DataValue, index: number) => {
            const p = part[index];
            if (!p) return;
            const ts = (dv.sourceTimestamp ?? dv.serverTimestamp)?.getTime();
            const at = ts === undefined ? {} : { timestamp: ts };
            if (dv.statusCode.isBad()) {
              queue.push({ property: p.r.name, error: new MapperError('DeviceError', `node ${p.r.visitor.node.text}: ${statusText(dv.statusCode)}`), ...at });
              return;
            }
            try {
              queue.push({ property: p.r.name, value: fromVariant(dv.value, p.r.type, p.r.visitor.node.text), ...at });
            } catch (err) {
              queue.push({ property: p.r.name, error: err instanceof MapperError ? err : new MapperError('DeviceError', String(err)), ...at });
            }
          });
        }
      }
      this.log.info({ subscriptionId: sub.subscriptionId, monitored, refused: requests.length - monitored, publishingInterval: sub.publishingInterval }, 'OPC UA subscription created');
      for await (const reading of queue) yield reading;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.lostListeners.delete(onLost);
      if (queue.dropped > 0) this.log.warn({ dropped: queue.dropped, highWater: queue.highWater }, 'monitored values dropped because the consumer fell behind');
      else this.log.debug({ highWater: queue.highWater }, 'subscription ended');
      if (subscription) {
        this.subscriptions.delete(subscription);
        if (!this.lost && !this.closed) await bounded(subscription.terminate(), 2000);
      }
    }
  }

  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    const gone = new MapperError('Unreachable', 'client closed');
    for (const l of [...this.lostListeners]) l(gone);
    const alive = !this.lost;
    if (alive) for (const s of this.subscriptions) await bounded(s.terminate(), 1000);
    this.subscriptions.clear();
    if (alive) await bounded(this.session.close(true), 2000);
    await bounded(this.client.disconnect(), 2000);
    await this.security.certificateManager.dispose().catch(() => undefined);
  }
}
