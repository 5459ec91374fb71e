import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

/** Debian's chromium (`apt-get install chromium`); `CHROMIUM` overrides the path. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const chromiumInstalled = (): boolean => existsSync(CHROMIUM);

export interface PageOptions {
  /** Viewport, CSS pixels; default 1280×2000. */
  width?: number;
  height?: number;
  /** Bound on launch and on every DevTools call; default 20 s. */
  timeoutMs?: number;
}

interface CdpMessage {
  id?: number;
  method?: string;
  sessionId?: string;
  params?: Record<string, any>;
  result?: Record<string, any>;
  error?: { message: string };
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`chromium: ${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
};

/**
 * One headless Chromium with one page, driven over the DevTools protocol on a single browser WebSocket (flat
 * sessions), no puppeteer. Collects the page's console errors, uncaught exceptions and error log entries in `errors`.
 * The browser runs in its own process group with a fresh profile; `close()` ends the group and removes the profile,
 * and must be called in a `finally`.
 */
export class ChromiumPage {
  readonly errors: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, any>) => void; reject: (e: Error) => void }>();
  private sessionId = '';
  private loaded: (() => void) | undefined;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly profile: string,
    private readonly socket: WebSocket,
    private readonly timeoutMs: number,
  ) {
    socket.on('message', (raw) => this.onMessage(JSON.parse(String(raw)) as CdpMessage));
    socket.on('close', () => this.failPending(new Error('chromium: DevTools connection closed')));
    socket.on('error', () => undefined); // surfaced by 'close'
  }

  static async launch({ width = 1280, height = 2000, timeoutMs = 20_000 }: PageOptions = {}): Promise<ChromiumPage> {
    const profile = await mkdtemp(path.join(tmpdir(), 'wslab-chromium-'));
    const proc = spawn(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio',
      `--user-data-dir=${profile}`, '--remote-debugging-port=0', `--window-size=${width},${height}`, 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let page: ChromiumPage | undefined;
    try {
      const url = await withTimeout(devToolsUrl(proc), timeoutMs, 'printing its DevTools address');
      const socket = new WebSocket(url, { perMessageDeflate: false });
      await withTimeout(new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)), timeoutMs, 'DevTools connect');
      page = new ChromiumPage(proc, profile, socket, timeoutMs);
      const { targetId } = await page.send('Target.createTarget', { url: 'about:blank' });
      page.sessionId = (await page.send('Target.attachToTarget', { targetId, flatten: true })).sessionId;
      await Promise.all(['Page.enable', 'Runtime.enable', 'Log.enable'].map((m) => page!.send(m)));
      await page.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
      return page;
    } catch (err) {
      if (page) await page.close();
      else await stop(proc, profile, 0);
      throw err;
    }
  }

  /** Loads `url` and resolves on the page's load event. */
  async navigate(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => { this.loaded = resolve; });
    const { errorText } = await this.send('Page.navigate', { url });
    if (errorText) throw new Error(`chromium: navigating to ${url}: ${errorText}`);
    await withTimeout(loaded, this.timeoutMs, `loading ${url}`);
  }

  /** Evaluates an expression in the page (awaiting a promise) and returns its JSON value; a thrown error rejects. */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (exceptionDetails) throw new Error(`chromium: ${expression.slice(0, 80)}: ${describeException(exceptionDetails)}`);
    return result.value as T;
  }

  /** Polls `expression` every 50 ms until it is truthy, and returns that value. */
  async waitFor<T>(expression: string, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`chromium: waited ${timeoutMs} ms for ${expression}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A PNG of the whole page (beyond the viewport), at most 16384 px tall. */
  async screenshot(): Promise<Buffer> {
    const { cssContentSize } = await this.send('Page.getLayoutMetrics');
    const clip = { x: 0, y: 0, width: Math.ceil(cssContentSize.width), height: Math.min(16384, Math.ceil(cssContentSize.height)), scale: 1 };
    const { data } = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip });
    return Buffer.from(data as string, 'base64');
  }

  /** Asks the browser to quit, then ends its process group whatever happened, and removes the profile. */
  async close(): Promise<void> {
    await withTimeout(this.send('Browser.close', {}, false), 2000, 'Browser.close').catch(() => undefined);
    this.socket.terminate();
    await stop(this.proc, this.profile);
  }

  private send(method: string, params: Record<string, unknown> = {}, inPage = true): Promise<Record<string, any>> {
    const id = this.nextId++;
    const message = { id, method, params, ...(inPage && this.sessionId ? { sessionId: this.sessionId } : {}) };
    const reply = new Promise<Record<string, any>>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.socket.send(JSON.stringify(message));
    return withTimeout(reply, this.timeoutMs, method).finally(() => this.pending.delete(id));
  }

  private onMessage(m: CdpMessage): void {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (m.error) p?.reject(new Error(`chromium: ${m.error.message}`));
      else p?.resolve(m.result ?? {});
      return;
    }
    const params = m.params ?? {};
    if (m.method === 'Page.loadEventFired') this.loaded?.();
    else if (m.method === 'Runtime.exceptionThrown') this.errors.push(`exception: ${describeException(params.exceptionDetails)}`);
    else if (m.method === 'Runtime.consoleAPICalled' && (params.type === 'error' || params.type === 'assert')) {
      this.errors.push(`console.${params.type}: ${(params.args as { value?: unknown; description?: string }[])
        .map((a) => a.value ?? a.description).join(' ')}`);
    } else if (m.method === 'Log.entryAdded' && params.entry.level === 'error') {
      this.errors.push(`log: ${params.entry.text}${params.entry.url ? ` (${params.entry.url})` : ''}`);
    }
  }

  private failPending(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
  }
}

function describeException(d: { text?: string; exception?: { description?: string } }): string {
  return d.exception?.description ?? d.text ?? 'unknown exception';
}

/** Reads `DevTools listening on ws://…` from stderr; rejects with what chromium printed if it exits first. */
function devToolsUrl(proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onData = (d: Buffer): void => {
      stderr += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) {
        proc.stderr!.off('data', onData);
        proc.stderr!.resume(); // keep draining so chromium never blocks on a full pipe
        resolve(m[1]);
      }
    };
    proc.stderr!.on('data', onData);
    proc.once('error', reject);
    proc.once('exit', (code, signal) => reject(new Error(`chromium exited (${signal ?? code}) before DevTools was up:\n${stderr.slice(-2000)}`)));
  });
}

/** Ends the browser's whole process group (renderer, GPU and zygote processes too) and removes its profile. */
async function stop(proc: ChildProcess, profile: string, graceMs = 3000): Promise<void> {
  if (graceMs > 0 && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    await withTimeout(exited, graceMs, 'exiting').catch(() => undefined);
  }
  try {
    process.kill(-proc.pid!, 'SIGKILL'); // the group this launch created (detached), never anything else
  } catch { /* already gone */ }
  await rm(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
