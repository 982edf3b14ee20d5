// SPDX-License-Identifier: Apache-2.0
// A minimal npm registry for one scope, serving packed tarballs: packuments and tarballs, no
// caching (so a version "published" mid-test is seen at once). Everything outside the scope
// keeps coming from the configured registry, i.e. from the local npm cache with --prefer-offline.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename } from 'node:path';

interface Published {
  readonly manifest: Record<string, unknown> & { name: string; version: string };
  readonly file: string;
  readonly integrity: string;
  readonly shasum: string;
}

export class LocalRegistry {
  readonly url: string;
  private readonly server: Server;
  private readonly packages = new Map<string, Map<string, Published>>();
  readonly requests: string[] = [];

  private constructor(server: Server, url: string) {
    this.server = server;
    this.url = url;
  }

  static async start(): Promise<LocalRegistry> {
    let self: LocalRegistry | undefined;
    const server = createServer((req, res) => self!.handle(req.url ?? '/', res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    self = new LocalRegistry(server, `http://127.0.0.1:${port}/`);
    return self;
  }

  /** Makes a packed tarball installable; resolves with its name and version. */
  publish(tarball: string): { name: string; version: string } {
    const manifest = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as Published['manifest'];
    const data = readFileSync(tarball);
    const entry: Published = {
      manifest,
      file: tarball,
      integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
      shasum: createHash('sha1').update(data).digest('hex'),
    };
    let versions = this.packages.get(manifest.name);
    if (!versions) this.packages.set(manifest.name, (versions = new Map()));
    versions.set(manifest.version, entry);
    return { name: manifest.name, version: manifest.version };
  }

  private handle(rawUrl: string, res: import('node:http').ServerResponse): void {
    this.requests.push(rawUrl);
    const path = decodeURIComponent(rawUrl.split('?')[0]!).replace(/^\//, '');
    res.setHeader('cache-control', 'no-store');
    if (path.startsWith('-/tarballs/')) {
      const file = path.slice('-/tarballs/'.length);
      for (const versions of this.packages.values()) {
        for (const p of versions.values()) {
          if (basename(p.file) === file) {
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            res.end(readFileSync(p.file));
            return;
          }
        }
      }
    }
    const versions = this.packages.get(path);
    if (!versions) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not found' }));
      return;
    }
    const sorted = [...versions.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const packument = {
      name: path,
      'dist-tags': { latest: sorted.at(-1) },
      versions: Object.fromEntries(
        [...versions].map(([v, p]) => [
          v,
          { ...p.manifest, _id: `${path}@${v}`, dist: { tarball: `${this.url}-/tarballs/${basename(p.file)}`, integrity: p.integrity, shasum: p.shasum } },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(packument));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
