import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { CONTRACT } from '../../metrics/index.js';
import { spec } from '../../metrics/spec.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every file under `dir` with one of the extensions, recursively. */
function files(dir: string, exts: string[]): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p, exts) : exts.some((e) => p.endsWith(e)) ? [p] : [];
  });
}

/** A series name used in a query, with the histogram suffixes folded back to the metric they belong to. */
const base = (n: string): string => n.replace(/_(bucket|sum|count)$/, '');

describe('metric contract', () => {
  it('declares every wslab metric once, with help text and fixed labels', () => {
    assert.ok(CONTRACT.size >= 20);
    for (const [name, s] of CONTRACT) {
      assert.match(name, /^wslab_/);
      assert.ok(s.help.length >= 10, name);
      assert.ok(!s.labelNames.some((l) => /(^|_)(id|conn|connection|ip|port)$/.test(l)), `${name}: no per-connection labels`);
    }
  });

  it('refuses a badly named metric at declaration', () => {
    assert.throws(() => spec({ name: 'foo', help: 'some help text', type: 'gauge', labelNames: [], aggregator: 'sum' }), /must match/);
    assert.throws(() => spec({ name: 'wslab_x', help: 'some help text', type: 'counter', labelNames: [], aggregator: 'sum' }), /ends in _total/);
    assert.throws(() => spec({ name: 'wslab_x_total', help: '', type: 'counter', labelNames: [], aggregator: 'sum' }), /help/);
    assert.throws(() => spec({ name: 'wslab_x', help: 'some help text', type: 'gauge', labelNames: ['conn_id'], aggregator: 'sum' }), /per-connection/);
  });

  it('knows every wslab_ name used by dashboards, rules, reports and docs', () => {
    const used = new Set<string>();
    const sources = [
      ...files(join(ROOT, 'grafana'), ['.json', '.yml', '.yaml']),
      ...files(join(ROOT, 'lab'), ['.ts']),
      ...files(join(ROOT, 'bench'), ['.ts']),
      ...files(join(ROOT, 'docs'), ['.md']),
      join(ROOT, 'README.md'),
    ].filter(existsSync);
    for (const f of sources) for (const m of readFileSync(f, 'utf8').matchAll(/\bwslab_[a-z0-9_]+/g)) used.add(base(m[0]));
    const unknown = [...used].filter((n) => !CONTRACT.has(n) && !n.endsWith('_'));
    assert.deepEqual(unknown, [], `names used but not in metrics/: ${unknown.join(', ')}`);
  });

  it('is the only place metric names are spelled: code elsewhere takes them from the declarations (.name)', () => {
    /*
     * String and template literals, found by TypeScript's parser so that comments (which may name a metric) are not
     * read. Allowed, by file and whole literal: the native addon's file name, which shares the wslab_ prefix
     * (binding.gyp's target) but names no metric.
     */
    const allowed = new Set(['server/designs/threads/addon.ts wslab_threads.node']);
    const code = ['core', 'cli', 'client', 'server', 'lab', 'bench', 'deploy'].flatMap((d) => files(join(ROOT, d), ['.ts']));
    assert.ok(code.length > 50, `found only ${code.length} files under ${ROOT}`);
    const spelled: string[] = [];
    for (const f of code) {
      const file = f.slice(ROOT.length);
      const source = ts.createSourceFile(file, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) {
          const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          if (!allowed.has(`${file} ${node.text}`)) for (const [name] of node.text.matchAll(/wslab_[a-z0-9_]+/g)) spelled.push(`${file}:${line} ${name}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    assert.deepEqual(spelled, [], `metric names spelled outside metrics/ (use the declaration's .name): ${spelled.join(', ')}`);
  });
});
