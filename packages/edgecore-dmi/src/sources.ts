// SPDX-License-Identifier: Apache-2.0
// YAML sources on disk: files and directories (recursive; *.yaml, *.yml, *.json; hidden files
// and editor leftovers skipped), watched with fs.watch plus a slow poll as a safety net.
import { createHash } from 'node:crypto';
import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { type Problem, parseSource, type RawObject } from './inventory.js';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

function wanted(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('~') && EXTENSIONS.has(extname(name).toLowerCase());
}

export interface ScanResult {
  readonly objects: RawObject[];
  readonly problems: Problem[];
  /** Changes whenever any file's path or content changes. */
  readonly signature: string;
  readonly files: string[];
}

export class FileSources {
  readonly paths: readonly string[];
  private readonly cache = new Map<string, { hash: string; objects: RawObject[]; problems: Problem[] }>();
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(paths: readonly string[], log: Logger) {
    this.paths = paths.map((p) => resolve(p));
    this.log = log;
  }

  private listFiles(problems: Problem[]): string[] {
    const out: string[] = [];
    const walk = (dir: string, depth: number): void => {
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch (err) {
        problems.push({ severity: 'error', source: dir, message: `${dir}: cannot read directory: ${(err as Error).message}` });
        return;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const p = join(dir, name);
        let st;
        try {
          st = statSync(p);
        } catch {
          continue; // vanished meanwhile
        }
        if (st.isDirectory()) {
          if (depth < 16) walk(p, depth + 1);
        } else if (st.isFile() && wanted(name)) out.push(p);
      }
    };
    for (const p of this.paths) {
      let st;
      try {
        st = statSync(p);
      } catch {
        problems.push({ severity: 'error', source: p, message: `${p}: devices path does not exist (it is watched and loaded once it appears)` });
        continue;
      }
      if (st.isDirectory()) walk(p, 0);
      else out.push(p);
    }
    return [...new Set(out)];
  }

  /** Reads every file (re-parsing only changed ones). */
  scan(): ScanResult {
    const problems: Problem[] = [];
    const files = this.listFiles(problems);
    const objects: RawObject[] = [];
    const sig = createHash('sha256');
    const seen = new Set<string>();
    for (const file of files) {
      let content: string;
      try {
        content = readFileSync(file, 'utf8');
      } catch (err) {
        problems.push({ severity: 'error', source: file, message: `${file}: cannot read: ${(err as Error).message}` });
        continue;
      }
      const hash = createHash('sha256').update(content).digest('hex');
      sig.update(`${file}\0${hash}\0`);
      seen.add(file);
      let entry = this.cache.get(file);
      if (!entry || entry.hash !== hash) {
        entry = { hash, ...parseSource(file, content) };
        this.cache.set(file, entry);
      }
      objects.push(...entry.objects);
      problems.push(...entry.problems);
    }
    for (const f of [...this.cache.keys()]) if (!seen.has(f)) this.cache.delete(f);
    for (const p of problems) sig.update(p.message);
    return { objects, problems, signature: sig.digest('hex'), files };
  }

  /** Calls `onChange` (debounced) after any change under the watched paths. */
  watch(onChange: () => void, opts: { debounceMs: number; pollMs: number }): void {
    const fire = (): void => {
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = undefined;
        onChange();
      }, opts.debounceMs);
    };
    for (const p of this.paths) {
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        // missing: the poll picks it up
      }
      try {
        const w = isDir
          ? watch(p, { recursive: true }, () => fire())
          : watch(dirname(p), (_e, name) => {
              if (name === null || name === basename(p)) fire();
            });
        w.on('error', (err) => this.log.warn({ path: p, err: err.message }, 'file watch failed; relying on polling'));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ path: p, err: (err as Error).message }, 'cannot watch path; relying on polling');
      }
    }
    if (opts.pollMs > 0) {
      this.poll = setInterval(onChange, opts.pollMs);
      this.poll.unref();
    }
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }
}
