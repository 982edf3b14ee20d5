// SPDX-License-Identifier: Apache-2.0
// A small client of the HTTP API (used by the CLI; handy in scripts and tests).
import type { CallRecord } from './dispatcher.js';
import type { Problem } from './inventory.js';
import type { ApplyResult, DeviceView, MapperView, ModelView, ServerStats } from './server.js';

/** An error answer of the API. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export class ApiClient {
  readonly base: string;

  constructor(base: string) {
    this.base = base.replace(/\/+$/, '');
  }

  private async request<T>(method: string, path: string, body?: string, contentType = 'application/json'): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, body, headers: body === undefined ? {} : { 'content-type': contentType } });
    } catch (err) {
      throw new ApiError(0, `cannot reach edgecore-dmi at ${this.base}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`, undefined);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    if (res.status >= 400 && res.status !== 422) {
      const msg = typeof json === 'object' && json !== null && 'error' in json ? String((json as { error: unknown }).error) : text;
      throw new ApiError(res.status, msg, json);
    }
    return { status: res.status, body: json as T };
  }

  async devices(): Promise<DeviceView[]> {
    return (await this.request<DeviceView[]>('GET', '/api/v1/devices')).body;
  }
  async device(ref: string): Promise<DeviceView & { proto: unknown; definition: unknown }> {
    const id = ref.includes('/') ? ref : `default/${ref}`;
    return (await this.request<DeviceView & { proto: unknown; definition: unknown }>('GET', `/api/v1/devices/${id.split('/').map(encodeURIComponent).join('/')}`)).body;
  }
  async history(ref: string, property: string, limit = 100): Promise<{ value: string; at: number }[]> {
    const id = ref.includes('/') ? ref : `default/${ref}`;
    const path = `/api/v1/devices/${id.split('/').map(encodeURIComponent).join('/')}/history?property=${encodeURIComponent(property)}&limit=${limit}`;
    return (await this.request<{ value: string; at: number }[]>('GET', path)).body;
  }
  async models(): Promise<ModelView[]> {
    return (await this.request<ModelView[]>('GET', '/api/v1/models')).body;
  }
  async mappers(): Promise<MapperView[]> {
    return (await this.request<MapperView[]>('GET', '/api/v1/mappers')).body;
  }
  async problems(): Promise<Problem[]> {
    return (await this.request<Problem[]>('GET', '/api/v1/problems')).body;
  }
  async calls(limit = 100): Promise<CallRecord[]> {
    return (await this.request<CallRecord[]>('GET', `/api/v1/calls?limit=${limit}`)).body;
  }
  async stats(): Promise<ServerStats> {
    return (await this.request<ServerStats>('GET', '/api/v1/stats')).body;
  }
  /** Applies YAML; `ok` is false when any document was refused or has errors. */
  async apply(yaml: string, source = 'stdin'): Promise<ApplyResult & { ok: boolean }> {
    const r = await this.request<ApplyResult>('POST', `/api/v1/apply?source=${encodeURIComponent(source)}`, yaml, 'application/yaml');
    return { ...r.body, ok: r.status === 200 };
  }
  async delete(yaml: string, source = 'stdin'): Promise<ApplyResult & { ok: boolean }> {
    const r = await this.request<ApplyResult>('POST', `/api/v1/delete?source=${encodeURIComponent(source)}`, yaml, 'application/yaml');
    return { ...r.body, ok: r.status === 200 };
  }
  async setDesired(ref: string, property: string, value: string): Promise<DeviceView> {
    const id = ref.includes('/') ? ref : `default/${ref}`;
    const path = `/api/v1/devices/${id.split('/').map(encodeURIComponent).join('/')}/properties/${encodeURIComponent(property)}/desired`;
    return (await this.request<DeviceView>('PUT', path, JSON.stringify({ value }))).body;
  }
}
