// SPDX-License-Identifier: Apache-2.0
// The depth scan that runs before the (recursive) yaml parser: it must never count less nesting
// than the parser will build, wherever quotes and # appear.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { MAX_YAML_DEPTH, parseYamlDocumentSafely, parseYamlSafely, yamlNestingDepth } from '../src/dmi/yaml-guard.js';

const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);

describe('YAML depth guard', () => {
  it('counts flow nesting and block indentation', () => {
    assert.equal(yamlNestingDepth('a: 1\n'), 0);
    assert.equal(yamlNestingDepth(`k: ${deep(5)}\n`), 5);
    assert.equal(yamlNestingDepth('a:\n  b:\n    c: 1\n'), 2);
  });

  it('ignores brackets inside real quoted scalars and comments', () => {
    assert.equal(yamlNestingDepth(`k: "${'['.repeat(100)}"\n`), 0);
    assert.equal(yamlNestingDepth(`k: '${'{'.repeat(100)}'\n`), 0);
    assert.equal(yamlNestingDepth('k: ["a[[", [1], \'{{\']\n'), 2);
    assert.equal(yamlNestingDepth(`k: 1 # ${'['.repeat(100)}\n`), 0);
  });

  it('a quote inside a plain scalar does not hide the nesting after it', () => {
    for (const text of [`k: a"b ${deep(200)}\n`, `k: [a"b, ${deep(200)}]\n`, `k: a'b, ${deep(200)}\n`]) {
      assert.ok(yamlNestingDepth(text) >= 200, text.slice(0, 20));
      assert.match(parseYamlSafely(text).error ?? '', /nested \d+ levels deep \(limit 64\)/);
      assert.match(parseYamlDocumentSafely(text).error ?? '', /nested \d+ levels deep/);
    }
  });

  it('a # inside a plain scalar is text, not a comment hiding nesting', () => {
    const text = `k: [a#b, ${deep(200)}]\n`;
    assert.ok(yamlNestingDepth(text) >= 200);
    assert.match(parseYamlSafely(text).error ?? '', /levels deep/);
  });

  it('the scan matches what the parser reads for ordinary documents', () => {
    const text = 'a: "x[y"\nb: it\'s [1]\nc: [1, [2, "]"], {d: e}]  # [[[\n';
    assert.deepEqual(parseYaml(text), { a: 'x[y', b: "it's [1]", c: [1, [2, ']'], { d: 'e' }] });
    assert.equal(parseYamlSafely(text).error, undefined);
    assert.ok(yamlNestingDepth(text) <= 3 && yamlNestingDepth(text) < MAX_YAML_DEPTH);
  });
});
