import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`); `CHROMIUM` overrides the path. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const chromiumInstalled = (): boolean => existsSync(CHROMIUM);

export interface PageOptions {
  /** Viewport, CSS pixels; default 1280×2000. */
  width?: number;
  height?: number;
  /** Bound on launch and on every page call; default 20 s. */
  timeoutMs?: number;
}

/**
 * One headless Debian Chromium with one page, driven by npm playwright-core (no browser download: `executablePath`).
 * Collects the page's console errors, uncaught exceptions and failed requests in `errors`. `close()` ends the
 * browser and must be called in a `finally`.
 */
export class ChromiumPage {
  readonly errors: string[] = [];

  private constructor(private readonly browser: Browser, readonly page: Page, private readonly timeoutMs: number) {
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'assert') this.errors.push(`console.${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => this.errors.push(`exception: ${e.message}`));
    page.on('requestfailed', (r) => this.errors.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? 'unknown'})`));
    page.setDefaultTimeout(timeoutMs);
  }

  static async launch({ width = 1280, height = 2000, timeoutMs = 20_000 }: PageOptions = {}): Promise<ChromiumPage> {
    const browser = await chromium.launch({
      executablePath: CHROMIUM, timeout: timeoutMs,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio'],
    });
    try {
      const page = await browser.newPage({ viewport: { width, height } });
      return new ChromiumPage(browser, page, timeoutMs);
    } catch (err) {
      await browser.close();
      throw err;
    }
  }

  /** Loads `url` and resolves on the page's load event. */
  async navigate(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'load' });
  }

  /** Evaluates an expression in the page (awaiting a promise) and returns its JSON value; a thrown error rejects. */
  evaluate<T>(expression: string): Promise<T> {
    return this.page.evaluate(expression) as Promise<T>;
  }

  /**
   * Waits until `expression` is truthy, and returns that value. Polled with evaluate (the DevTools protocol's own
   * evaluation) rather than playwright's waitForFunction, which evaluates the string with eval inside the page: a page
   * whose Content-Security-Policy forbids 'unsafe-eval', as ours do, would refuse it.
   */
  async waitFor<T>(expression: string, timeoutMs = this.timeoutMs): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      if (Date.now() > until) throw new Error(`waited ${timeoutMs} ms for ${expression}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A PNG of the whole page (beyond the viewport). */
  screenshot(): Promise<Buffer> {
    return this.page.screenshot({ fullPage: true, type: 'png' });
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
  }
}
