// SPDX-License-Identifier: Apache-2.0
// gRPC server reflection on a DMI socket, as upstream registers it on both sides (edgecore's
// DeviceManagerService and each mapper's DeviceMapperService: upstream-kubeedge.md §2.1), so tools such
// as grpcurl or `buf curl` can list and call the service without the proto file. It describes this
// package's DMI proto, loaded with field names as written (`api_version`), through @grpc/reflection
// (both v1 and v1alpha of the reflection API). Exported as `@mapperkit/framework/reflection`; a mapper
// loads it on the first reflection request only (runtime/dmi-server.ts), as it weighs some megabytes.
import { fileURLToPath } from 'node:url';
import type { Server } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import descriptor from 'protobufjs/ext/descriptor/index.js';

/** The DMI v1beta1 proto file of the framework package. */
export const DMI_PROTO = fileURLToPath(new URL('../../proto/v1beta1/api.proto', import.meta.url));

interface FileProto {
  name: string;
  package?: string;
  dependency?: string[];
  messageType?: MessageProto[];
  service?: { method?: { inputType?: string; outputType?: string }[] }[];
}
interface MessageProto {
  name?: string;
  field?: { name?: string; typeName?: string }[];
  nestedType?: MessageProto[];
  options?: { mapEntry?: boolean };
}

/** protoc's name for the entry type of a map field: `metadata` → `MetadataEntry`, `dev_tags` → `DevTagsEntry`. */
function mapEntryName(field: string): string {
  return `${field.replace(/_(.)/g, (_m, c: string) => c.toUpperCase()).replace(/^./, (c) => c.toUpperCase())}Entry`;
}

/** Renames map entry types as protoc names them (protobufjs names them after the field: `Data`), which descriptor-checking clients require. */
function renameMapEntries(m: MessageProto): void {
  for (const field of m.field ?? []) {
    const entry = (m.nestedType ?? []).find((n) => n.options?.mapEntry && n.name !== undefined && field.typeName !== undefined && (field.typeName === n.name || field.typeName.endsWith(`.${n.name}`)));
    if (!entry || !field.name) continue;
    const wanted = mapEntryName(field.name);
    field.typeName = `${field.typeName!.slice(0, field.typeName!.length - entry.name!.length)}${wanted}`;
    entry.name = wanted;
  }
  for (const n of m.nestedType ?? []) renameMapEntries(n);
}

/**
 * Makes proto-loader's file descriptors usable by clients that build descriptors from them
 * (grpcurl, protobuf's DescriptorPool). proto-loader regroups the proto into one file per package
 * (here `v1beta1.proto` and `google_protobuf.proto` for Any) but leaves their `dependency` lists
 * empty, so `google.protobuf.Any` cannot be resolved; and protobufjs names map entry types after
 * the field (`Data`), which protobuf refuses ("map_entry should not be set explicitly"). This fills
 * each file's dependencies from the types its fields and methods reference and renames map entries
 * as protoc does (`DataEntry`).
 */
export function forDescriptorClients(definition: PackageDefinition): PackageDefinition {
  const files = new Map<string, FileProto>();
  for (const d of Object.values(definition)) {
    for (const bin of (d as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos ?? []) {
      const f = descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bin)) as FileProto;
      if (!files.has(f.name)) files.set(f.name, f);
    }
  }
  // Type names are fully qualified (".google.protobuf.Any") or, as proto-loader writes them, relative
  // ("google.protobuf.Any", "Data"); a name that starts with another file's package belongs to that file.
  const packages = [...files.values()].filter((f) => f.package).map((f) => ({ prefix: `${f.package}.`, name: f.name })).sort((a, b) => b.prefix.length - a.prefix.length);
  const fileOf = (typeName: string): string | undefined => packages.find((p) => typeName.replace(/^\./, '').startsWith(p.prefix))?.name;
  const encoded = new Map<string, Buffer>();
  for (const f of files.values()) {
    const refs: string[] = [];
    const visit = (m: MessageProto): void => {
      for (const field of m.field ?? []) if (field.typeName) refs.push(field.typeName);
      for (const n of m.nestedType ?? []) visit(n);
    };
    for (const m of f.messageType ?? []) {
      renameMapEntries(m);
      visit(m);
    }
    for (const s of f.service ?? []) for (const m of s.method ?? []) refs.push(m.inputType ?? '', m.outputType ?? '');
    const deps = new Set(f.dependency ?? []);
    for (const r of refs) {
      const other = fileOf(r);
      if (other && other !== f.name) deps.add(other);
    }
    f.dependency = [...deps].sort();
    encoded.set(f.name, Buffer.from(descriptor.FileDescriptorProto.encode(descriptor.FileDescriptorProto.fromObject(f)).finish()));
  }
  const out: PackageDefinition = {};
  for (const [key, d] of Object.entries(definition)) {
    const bins = (d as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    out[key] = bins ? ({ ...d, fileDescriptorProtos: bins.map((bin) => encoded.get(descriptor.FileDescriptorProto.decode(bin).toJSON()['name'] as string) ?? bin) } as typeof d) : d;
  }
  return out;
}

/** Adds the reflection services to `server`, describing only `services` (fully qualified names) and their types. */
export function addReflection(server: Pick<Server, 'addService'>, services: readonly string[]): void {
  const definition = loadSync(DMI_PROTO, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  new ReflectionService(forDescriptorClients(definition), { services: [...services] }).addToServer(server);
}

/** One reflection method as @grpc/reflection implements it: its message codec and its stream handler. */
export interface ReflectionMethod {
  readonly requestDeserialize: (bytes: Buffer) => unknown;
  readonly responseSerialize: (message: unknown) => Buffer;
  readonly handler: (stream: unknown) => void;
}

/**
 * The reflection methods (v1 and v1alpha) by path, as {@link addReflection} would add them to a server:
 * for a server that registered pass-through methods at start and loads this module on the first call.
 */
export function reflectionMethods(services: readonly string[]): Map<string, ReflectionMethod> {
  const out = new Map<string, ReflectionMethod>();
  const collector = {
    addService(def: Record<string, { path: string; requestDeserialize: (b: Buffer) => unknown; responseSerialize: (m: unknown) => Buffer }>, impl: Record<string, (stream: unknown) => void>): void {
      for (const [name, m] of Object.entries(def)) out.set(m.path, { requestDeserialize: m.requestDeserialize, responseSerialize: m.responseSerialize, handler: impl[name]! });
    },
  };
  addReflection(collector as unknown as Pick<Server, 'addService'>, services);
  return out;
}
