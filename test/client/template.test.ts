import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Matcher } from '../../client/match.js';
import { Renderer, compileTemplate, readVars } from '../../client/template.js';

const dir = mkdtempSync(join(tmpdir(), 'wslab-template-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('templates (--send, --subscribe, --header)', () => {
  it('renders every placeholder from a connection index and a message number', () => {
    const vars = { names: ['token'], rows: [['a'], ['bé']] };
    const r = new Renderer(compileTemplate('send', '{"c":{{conn}},"s":{{seq}},"id":{{id}},"t":"{{var:token}}","r":"{{rand:5}}","n":{{now}}}', vars), 1000, vars);
    const msg = JSON.parse(r.text(3, 7)) as Record<string, unknown>;
    assert.deepEqual([msg.c, msg.s, msg.id, msg.t], [3, 7, 7003, 'bé']);
    assert.match(String(msg.r), /^[a-z0-9]{5}$/);
    assert.ok(Math.abs(Number(msg.n) - Date.now()) < 1000);
    assert.equal(r.id(3, 7), 7 * 1000 + 3);
  });

  it('compares an echo byte for byte where it can, by length where it cannot ({{rand}}, {{now}})', () => {
    const r = new Renderer(compileTemplate('send', 'x{{conn}}-{{seq}} {{rand:4}}', undefined), 10, undefined);
    const b = (s: string): Buffer => Buffer.from(s);
    assert.ok(r.equals(2, 5, b('x2-5 abcd'), 0, 9));
    assert.ok(!r.equals(2, 5, b('x2-6 abcd'), 0, 9));
    assert.ok(!r.equals(2, 5, b('x2-5 abc'), 0, 8));
  });

  it('binary templates and files', () => {
    const hex = new Renderer(compileTemplate('send', 'hex:00ff10', undefined), 1, undefined);
    assert.equal(hex.binary, true);
    assert.deepEqual([...Buffer.from(hex.text(0, 0), 'latin1')], [0, 255, 16]);
    const file = join(dir, 'msg.txt');
    writeFileSync(file, 'from {{conn}}');
    assert.equal(new Renderer(compileTemplate('send', `@${file}`, undefined), 1, undefined).text(4, 0), 'from 4');
  });

  it('reads --vars CSV with quoted fields, and says what is wrong with a bad file', () => {
    const f = join(dir, 'v.csv');
    writeFileSync(f, 'user,token\n"a ""b""",t1\nc,"x,y"\n');
    assert.deepEqual(readVars(f).rows, [['a "b"', 't1'], ['c', 'x,y']]);
    writeFileSync(f, 'user,token\nonly-one\n');
    assert.throws(() => readVars(f), /line 2 has 1 fields, the header has 2/);
    assert.throws(() => compileTemplate('send', '{{var:nope}}', readVars(join(dir, '..', 'missing.csv'))), /cannot read/);
  });
});

describe('reply matching (--match, --expect)', () => {
  const b = (s: string): Buffer => Buffer.from(s);
  it('json:PATH decodes the id back to the connection and message it answers', () => {
    const r = new Renderer(compileTemplate('send', '{"id":{{id}}}', undefined), 100, undefined);
    const m = new Matcher('json:data.id', 'json:type==pong', r, 40, 10);
    const reply = b(`{"data":{"id":${r.id(42, 3)}},"type":"pong"}`);
    assert.equal(m.reply(2, reply, 0, reply.length, 4), 3); // slot 2 = connection 42
    assert.equal(m.good(reply, 0, reply.length), true);
    assert.equal(m.reply(1, reply, 0, reply.length, 4), -1, 'another connection\'s id');
    assert.equal(m.reply(2, reply, 0, reply.length, 3), -1, 'a message not sent yet');
    const bad = b('{"data":{"id":"x"},"type":"pong"}');
    assert.equal(m.reply(2, bad, 0, bad.length, 4), -1);
    const wrongType = b(`{"data":{"id":"${r.id(42, 0)}"},"type":"err"}`);
    assert.equal(m.reply(2, wrongType, 0, wrongType.length, 4), 0);
    assert.equal(m.good(wrongType, 0, wrongType.length), false);
  });

  it('next takes replies in order; echo only when the message is the request', () => {
    const r = new Renderer(compileTemplate('send', 'm{{seq}}', undefined), 1, undefined);
    const next = new Matcher('next', undefined, r, 0, 1);
    assert.deepEqual([next.reply(0, b('a'), 0, 1, 2), next.reply(0, b('b'), 0, 1, 2), next.reply(0, b('c'), 0, 1, 2)], [0, 1, -1]);
    const echo = new Matcher('echo', undefined, r, 0, 1);
    assert.deepEqual([echo.reply(0, b('push'), 0, 4, 2), echo.reply(0, b('m0'), 0, 2, 2), echo.reply(0, b('m1'), 0, 2, 2)], [-1, 0, 1]);
  });
});
