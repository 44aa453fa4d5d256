// A Converse.js driver for the browser tests: headless Chromium (playwright-core, the system's
// /usr/bin/chromium, no browser download) opening Converse 14's full UI build against a test server.
// Each page is one client: a user, a password and a resource. Every wait polls the page with a
// generous deadline; nothing sleeps a fixed time. Screenshots of each step go to test-artifacts/
// (gitignored), with the page's console log.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { WAIT_MS, until } from './harness.ts';
import { type PageServer, startConversePageServer } from './converse-page-server.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'converse');

/**
 * Why the browser tests cannot run here, or undefined when they can. CI sets REQUIRE_BROWSER=1 so a
 * missing browser fails there instead of skipping (README, Tests).
 */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.REQUIRE_BROWSER === '1') throw new Error(`REQUIRE_BROWSER=1 but ${why}`);
  return `browser test skipped: ${why}`;
}

/** A message as Converse renders it in a chat or a room. */
export interface Rendered {
  text: string;
  /** 'me' for the user's own messages, 'them' for others' (the .chat-msg__content--me|them class). */
  sender: 'me' | 'them';
  /** The rendered message's data-from (a full JID, or a room occupant JID). */
  from: string;
}

/** Loopback only: any other host is refused and recorded (Converse must load nothing remote). */
function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return ['data:', 'blob:', 'about:'].includes(protocol) || ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

export class ConverseBrowser {
  /** URLs the pages tried to load from anywhere but the loopback (refused). */
  readonly remoteRequests: string[] = [];
  private pages: ConversePage[] = [];

  private constructor(
    readonly browser: Browser,
    readonly pageServer: PageServer,
    readonly websocketUrl: string,
    readonly artifacts: string,
  ) {}

  static async launch(websocketUrl: string, artifacts = ARTIFACTS): Promise<ConverseBrowser> {
    mkdirSync(artifacts, { recursive: true });
    const pageServer = await startConversePageServer();
    // --no-sandbox: CI and dev containers run as root, where Chromium's sandbox refuses to start.
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    return new ConverseBrowser(browser, pageServer, websocketUrl, artifacts);
  }

  /**
   * A page logged in as `jid`/`resource`. Each call gets its own browser context (its own storage,
   * like another device), unless `sameContextAs` names a page whose storage to share (a second tab).
   */
  async open(opts: { jid: string; password: string; resource: string; name?: string; sameContextAs?: ConversePage; settings?: Record<string, unknown> }): Promise<ConversePage> {
    const context = opts.sameContextAs?.context ?? (await this.newContext());
    const page = await context.newPage();
    const name = opts.name ?? `${opts.jid.split('@')[0]}-${opts.resource}`;
    const cp = new ConversePage(this, context, page, name, `${opts.jid}/${opts.resource}`);
    this.pages.push(cp);
    page.on('console', (m) => cp.log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => cp.log.push(`[pageerror] ${e.message}`));
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => cp.frames.push({ dir: 'out', text: String(f.payload) }));
      ws.on('framereceived', (f) => cp.frames.push({ dir: 'in', text: String(f.payload) }));
    });
    const cfg = {
      // https://conversejs.org/docs/html/configuration.html
      websocket_url: this.websocketUrl,
      discover_connection_methods: false,
      view_mode: 'fullscreen',
      auto_login: true,
      jid: `${opts.jid}/${opts.resource}`,
      password: opts.password,
      allow_non_roster_messaging: true,
      clear_cache_on_logout: true,
      // The default IndexedDB survives a reload, as in a user's browser; reload({ clearCache }) wipes
      // it when a step must show that what comes back comes from the server.
      persistent_store: 'IndexedDB',
      assets_path: '/dist',
      i18n: 'en',
      use_system_emojis: true,
      play_sounds: false,
      show_desktop_notifications: false,
      show_controlbox_by_default: true,
      auto_reconnect: false,
      // CONVERSE_LOGLEVEL=debug also logs every stanza to the page's console.log under test-artifacts/.
      loglevel: process.env.CONVERSE_LOGLEVEL ?? 'info',
      ...opts.settings,
    };
    cp.url = `${this.pageServer.origin}/?cfg=${encodeURIComponent(JSON.stringify(cfg))}`;
    await page.goto(cp.url);
    return cp;
  }

  private async newContext(): Promise<BrowserContext> {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isLocal(url)) return route.continue();
      this.remoteRequests.push(url);
      return route.abort('blockedbyclient');
    });
    return context;
  }

  async close(): Promise<void> {
    for (const p of this.pages) p.writeLog();
    await this.browser.close().catch(() => {});
    await this.pageServer.close();
  }
}

type Probe = { xeProbe: any; xeEvents: string[] };

export class ConversePage {
  readonly log: string[] = [];
  /** Every WebSocket frame the page sent ('out') and received ('in'), across reloads, in order. */
  readonly frames: { dir: 'in' | 'out'; text: string }[] = [];
  url = '';
  private step = 0;

  constructor(
    readonly owner: ConverseBrowser,
    readonly context: BrowserContext,
    readonly page: Page,
    readonly name: string,
    /** The full JID this page logs in as. */
    readonly jid: string,
  ) {}

  /** Waits until Converse reports an authenticated connection and the control box shows the user. */
  async waitConnected(timeoutMs = WAIT_MS): Promise<void> {
    await this.page.waitForFunction(
      () => {
        const api = (window as unknown as Probe).xeProbe?.api;
        return !!api?.connection?.connected?.() && !!api.connection.authenticated?.() && (window as unknown as Probe).xeEvents.some((e) => e === 'connected' || e === 'reconnected');
      },
      undefined,
      { timeout: timeoutMs, polling: 100 },
    ).catch((e) => this.fail('connected', e));
    // Converse's custom elements lay out as display: contents; wait for them in the DOM, and for
    // what the user sees inside them.
    await this.page.locator('converse-controlbox converse-roster').waitFor({ state: 'attached', timeout: timeoutMs });
    await this.screenshot('connected');
  }

  /** Opens (and shows) the chat with `jid`, as a click on a contact or "start a chat" does. */
  async openChat(jid: string): Promise<void> {
    await this.page.evaluate((j) => (window as unknown as Probe).xeProbe.api.chats.open(j, {}, true), jid);
    await this.chat(jid).locator('textarea.chat-textarea').waitFor({ state: 'visible', timeout: WAIT_MS });
  }

  /** The rendered chat with `jid` (converse-chat, one per shown chat in fullscreen mode). */
  chat(jid: string) {
    return this.page.locator(`converse-chat[jid="${jid}"]`);
  }

  room(jid: string) {
    return this.page.locator(`converse-muc[jid="${jid}"]`);
  }

  /** Types `text` in the chat's message box and presses Enter, as a user does. */
  async send(jid: string, text: string): Promise<void> {
    await this.openChat(jid);
    const box = this.chat(jid).locator('textarea.chat-textarea');
    await box.fill(text);
    await box.press('Enter');
    await this.waitForMessages(jid, (ms) => ms.some((m) => m.sender === 'me' && m.text === text), `own message "${text}"`);
  }

  /** The messages rendered in the chat with `jid` (or the room), in display order. */
  async messages(jid: string, kind: 'chat' | 'room' = 'chat'): Promise<Rendered[]> {
    const host = kind === 'chat' ? this.chat(jid) : this.room(jid);
    if (!(await host.count())) return [];
    return host.locator('converse-chat-message .chat-msg').evaluateAll((els) =>
      els.map((el) => ({
        text: (el.querySelector('.chat-msg__text')?.textContent ?? '').trim(),
        sender: el.querySelector('.chat-msg__content--me') ? ('me' as const) : ('them' as const),
        from: el.getAttribute('data-from') ?? '',
      })),
    );
  }

  /**
   * Polls the chat with `jid` until `ok` holds for its rendered messages. A chat Converse opened in
   * the background (a message from someone whose chat is not shown) is brought forward first.
   */
  async waitForMessages(jid: string, ok: (ms: Rendered[]) => boolean, what: string, opts: { kind?: 'chat' | 'room'; timeoutMs?: number } = {}): Promise<Rendered[]> {
    const kind = opts.kind ?? 'chat';
    let last: Rendered[] = [];
    try {
      const ms = (await until(
        `${what} in ${jid}`,
        async () => {
          if (kind === 'chat' && !(await this.chat(jid).count()) && (await this.hasChat(jid))) await this.openChat(jid);
          last = await this.messages(jid, kind);
          return ok(last) && last;
        },
        () => last,
        opts.timeoutMs ?? WAIT_MS,
      )) as Rendered[];
      await this.screenshot(what);
      return ms;
    } catch (e) {
      await this.screenshot(`FAILED ${what}`);
      throw new Error(`${this.name}: ${(e as Error).message}`);
    }
  }

  /** Whether Converse has a chat with `jid` (shown or not). */
  hasChat(jid: string): Promise<boolean> {
    return this.page.evaluate(async (j) => !!(await (window as unknown as Probe).xeProbe.api.chats.get(j)), jid);
  }

  /** Whether any chat or room rendered a message with `text`, or Converse's model holds one. */
  anyMessageWith(text: string): Promise<boolean> {
    return this.page.evaluate(async (t) => {
      const api = (window as unknown as Probe).xeProbe.api;
      const inDom = [...document.querySelectorAll('converse-chat-message .chat-msg__text')].some((e) => e.textContent?.includes(t));
      const inModels = ((await api.chatboxes.get()) as any[]).some((box) => box.messages?.models?.some((m: any) => String(m.get('body') ?? '').includes(t)));
      return inDom || inModels;
    }, text);
  }

  /** A ping to the user's server (XEP-0199): its reply comes after everything sent to this page before it. */
  async roundTrip(): Promise<void> {
    const ok = await this.page.evaluate(() => (window as unknown as Probe).xeProbe.api.ping());
    if (!ok) throw new Error(`${this.name}: ping to own server failed`);
  }

  /** Waits for a frame in direction `dir` matching `re` (seen already or to come); resolves with its text. */
  async waitForFrame(dir: 'in' | 'out', re: RegExp, what: string): Promise<string> {
    const hit = await until(`${this.name}: ${what}`, () => this.frames.find((f) => f.dir === dir && re.test(f.text)), () => this.frames.slice(-5));
    return hit!.text;
  }

  /**
   * Waits until the server has answered Converse's carbons <enable/> (XEP-0280 §4) with a result:
   * from then on, the server copies this resource's messages here. Converse keeps no state for it.
   */
  async carbonsEnabled(): Promise<void> {
    const enable = await this.waitForFrame('out', /<enable xmlns=["']urn:xmpp:carbons:2["']/, 'the carbons <enable/> IQ');
    const id = /<iq[^>]*\sid=["']([^"']+)["']/.exec(enable)?.[1];
    if (!id) throw new Error(`${this.name}: no id on ${enable}`);
    const reply = await this.waitForFrame('in', new RegExp(`<iq[^>]*\\sid=["']${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']`), 'the reply to the carbons <enable/>');
    if (!/type=["']result["']/.test(reply)) throw new Error(`${this.name}: carbons not enabled: ${reply}`);
  }

  /** Whether the user's server advertises `feature` in disco#info (XEP-0030), as Converse sees it. */
  /** Whether `entity` (default: the server's domain) advertises `feature`, asked through Converse's disco cache. */
  serverSupports(feature: string, entity?: string): Promise<boolean> {
    return this.page.evaluate(async ([f, e]) => {
      const { api, session } = (window as unknown as Probe).xeProbe;
      return !!(await api.disco.supports(f, e ?? session.get('domain')));
    }, [feature, entity] as const);
  }

  /**
   * Blocks `jid` from the chat heading's menu (shown when the server supports XEP-0191) and confirms,
   * as a user does; waits until Converse's blocklist holds the JID (the server answered the block IQ).
   */
  async block(jid: string): Promise<void> {
    await this.openChat(jid);
    const heading = this.chat(jid).locator('converse-chat-heading');
    const item = heading.locator('a.dropdown-item.block-user');
    // The menu is built after a disco check; open it until the block item is there.
    const toggle = heading.locator('converse-dropdown button.dropdown-toggle');
    await until(
      `"Block this user" in the chat heading menu for ${jid} (does the server advertise urn:xmpp:blocking?)`,
      async () => {
        if (await item.isVisible()) return true;
        if ((await toggle.count()) && (await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
        return false;
      },
      () => heading.innerText(),
    ).catch((e) => this.fail('block menu', e));
    await this.screenshot(`block menu ${jid}`);
    await item.click();
    const confirm = this.page.locator('form.confirm button[type=submit]');
    await confirm.waitFor({ state: 'visible', timeout: WAIT_MS });
    await this.screenshot(`block confirm ${jid}`);
    await confirm.click();
    await this.page.waitForFunction(
      async (j) => !!(await (window as unknown as Probe).xeProbe.api.blocklist.get()).get(j),
      jid,
      { timeout: WAIT_MS, polling: 100 },
    );
    await this.screenshot(`blocked ${jid}`);
  }

  /** Joins the room `roomJid` as `nick` (XEP-0045) and waits until Converse has entered it. */
  async joinRoom(roomJid: string, nick: string): Promise<void> {
    await this.page.evaluate(({ r, n }) => (window as unknown as Probe).xeProbe.api.rooms.open(r, { nick: n }, true), { r: roomJid, n: nick });
    await this.room(roomJid).locator('textarea.chat-textarea').waitFor({ state: 'visible', timeout: WAIT_MS });
    await this.screenshot(`joined ${roomJid}`);
  }

  /**
   * Sets the nickname and, if given, an avatar in the profile dialog (the control box's profile link),
   * as a user does, and waits until the dialog closes: Converse 14 closes it once the server has
   * answered its vCard set (XEP-0054), after which it sends presence with the photo's hash (XEP-0153).
   */
  async setProfile(opts: { nickname: string; avatar?: { name: string; mimeType: string; buffer: Buffer } }): Promise<void> {
    await this.page.locator('converse-controlbox a.show-profile').click();
    const modal = this.page.locator('converse-profile-modal');
    const nick = modal.locator('input[name=nickname]');
    await nick.waitFor({ state: 'visible', timeout: WAIT_MS });
    await nick.fill(opts.nickname);
    if (opts.avatar) await modal.locator('input[name=avatar_image]').setInputFiles(opts.avatar);
    await this.screenshot('profile form');
    await modal.locator('button.save-form').click();
    await nick.waitFor({ state: 'hidden', timeout: WAIT_MS }).catch((e) => this.fail('profile saved', e));
    await this.screenshot('profile saved');
  }

  /** Converse's bookmark of `roomJid` (XEP-0402, or XEP-0048 without #compat), as its model holds it. */
  bookmark(roomJid: string): Promise<{ autojoin: boolean; nick?: string } | undefined> {
    return this.page.evaluate(async (r) => {
      const b = await (window as unknown as Probe).xeProbe.api.bookmarks.get(r);
      return b ? { autojoin: !!b.get('autojoin'), nick: b.get('nick') } : undefined;
    }, roomJid);
  }

  /**
   * Waits until Converse has entered the room `roomJid` (its MUC model's status ENTERED, 5 in
   * Converse 14), however it was opened: a room joined from a bookmark may stay in the background.
   */
  async waitEntered(roomJid: string): Promise<void> {
    await this.page
      .waitForFunction(async (r) => (await (window as unknown as Probe).xeProbe.api.rooms.get(r))?.session?.get('connection_status') === 5, roomJid, { timeout: WAIT_MS, polling: 100 })
      .catch((e) => this.fail(`entered ${roomJid}`, e));
    await this.screenshot(`entered ${roomJid}`);
  }

  /**
   * Reloads the page; Converse logs in again from its settings. With `clearCache`, the origin's
   * storage (IndexedDB, local and session storage) is wiped first, so what the page shows after
   * comes from the server, not the browser's cache.
   */
  async reload(opts: { clearCache?: boolean } = {}): Promise<void> {
    if (opts.clearCache) {
      await this.page.goto('about:blank');
      const cdp = await this.context.newCDPSession(this.page);
      await cdp.send('Storage.clearDataForOrigin', { origin: this.owner.pageServer.origin, storageTypes: 'all' });
      await cdp.detach();
      await this.page.goto(this.url);
    } else {
      await this.page.reload();
    }
    await this.waitConnected();
  }

  async screenshot(what: string): Promise<void> {
    const file = `${String(++this.step).padStart(2, '0')}-${what.replace(/[^\w.@-]+/g, '_').slice(0, 80)}.png`;
    await this.page.screenshot({ path: join(this.owner.artifacts, this.name, file) }).catch(() => {});
  }

  writeLog(): void {
    mkdirSync(join(this.owner.artifacts, this.name), { recursive: true });
    writeFileSync(join(this.owner.artifacts, this.name, 'console.log'), this.log.join('\n') + '\n');
  }

  private async fail(what: string, e: unknown): Promise<never> {
    await this.screenshot(`FAILED ${what}`);
    const tail = this.log.slice(-20).join('\n');
    throw new Error(`${this.name}: ${what}: ${(e as Error).message}\nlast console lines:\n${tail}`);
  }

  async close(): Promise<void> {
    this.writeLog();
    await this.page.close().catch(() => {});
  }
}
