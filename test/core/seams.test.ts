import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DESIGNS } from '../../server/registry.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The folders of non-test source: everything but test/ (and the designs themselves, which may know their names). */
const SOURCE = ['cli', 'client', 'core', 'lab', 'metrics', 'server', 'bench', 'fuzz', 'deploy'];

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * Ways code outside a design's folder could single a design out by name: comparing with it, testing a list or a
 * label for it, looking it up or building a variant of it by a literal name.
 */
function nameUses(text: string, names: readonly string[]): string[] {
  const n = names.join('|');
  const q = `['"\`](?:${n})(?:\\s[^'"\`]*)?['"\`]`;
  const patterns = [
    // a model (`loop | threads | processes`) or a dialect is a trait: comparing it is what callers should do
    new RegExp(`(?<![=!]|\\b(?:model|dialect(?:\\.name)?)\\s*)(?:===|!==|==|!=)\\s*${q}`, 'g'),
    new RegExp(`${q}\\s*(?:===|!==|==|!=)`, 'g'),
    new RegExp(`\\.(?:includes|startsWith|endsWith|get|has|indexOf)\\(\\s*${q}`, 'g'),
    new RegExp(`\\bvariant\\(\\s*${q}`, 'g'),
    new RegExp(`\\bcase\\s+${q}\\s*:`, 'g'),
  ];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[0]));
}

describe('seams', () => {
  const names = [...DESIGNS.keys()];

  it('finds a design-name comparison where there is one (the check can fail)', () => {
    assert.deepEqual(nameUses(`const isUws = (c) => c.design === 'uws';`, names), [`=== 'uws'`]);
    assert.deepEqual(nameUses(`all.some((x) => x.design.startsWith('threads --pool'))`, names), [`.startsWith('threads --pool'`]);
    assert.deepEqual(nameUses(`variant('cluster', ['--workers', '2'])`, names), [`variant('cluster'`]);
    assert.deepEqual(nameUses(`import { WebSocket } from 'ws'; const t = 'threads of the pool';`, names), []);
    assert.deepEqual(nameUses(`d.traits.model === 'threads' && d.model !== 'threads'`, names), [], 'a model is a trait');
  });

  it('no non-test file outside server/designs/ compares against a design name: callers ask traits', () => {
    const offenders = SOURCE.flatMap((dir) => tsFiles(join(ROOT, dir)))
      .filter((f) => !relative(ROOT, f).startsWith(join('server', 'designs')))
      .flatMap((f) => nameUses(readFileSync(f, 'utf8'), names).map((hit) => `${relative(ROOT, f)}: ${hit}`));
    assert.deepEqual(offenders, []);
  });

  it('every design lives in its own folder under server/designs/', () => {
    for (const name of names) assert.ok(existsSync(join(ROOT, 'server', 'designs', name, 'index.ts')), `server/designs/${name}/index.ts`);
  });
});
