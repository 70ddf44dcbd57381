/**
 * The cluster store: berthd's link to etcd. A host registers under `/berth/hosts/<addr>` with a
 * lease it keeps alive; everything a host owns in the store (its overlay endpoints) hangs on the
 * same lease, so a host that dies loses its entries when the lease expires, with no cleanup of
 * ours. Every change under `/berth/` (seen by one watch) leads to a fresh consistent snapshot that
 * the listeners (the overlay control plane) reconcile against. etcd holds the truth; berthd never
 * decides anything cluster-wide outside an etcd transaction.
 */
import { promises as fs } from 'node:fs';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { Etcd3, type ICompare, type IKeyValue, type IRequestOp, type Lease, type Watcher } from 'etcd3';
import { unavailable } from '../util/errors.js';
import { log } from '../util/log.js';
import type { ClusterSettings } from './config.js';

export const PREFIX = '/berth/';

export interface ClusterHost {
  addr: string;
  name: string;
  engineId: string;
  /** Hex lease ID the host's keys hang on. */
  lease: string;
  since: string;
}

/** All keys under PREFIX (without it) at one revision, with each key's last-modified revision. */
export interface Snapshot {
  revision: string;
  kvs: Map<string, string>;
  mods: Map<string, number>;
}

/** A condition of a transaction, on keys relative to PREFIX. */
export type Condition =
  | { key: string; mod: number }
  | { key: string; exists: boolean }
  /** No key at all under this prefix (etcd compares the whole range). */
  | { emptyPrefix: string };

export type Operation = { put: string; value: string; lease?: string } | { del: string };

const k = (key: string) => Buffer.from(PREFIX + key);

/** The first key after every key that starts with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function compareOf(c: Condition): ICompare {
  if ('emptyPrefix' in c)
    return {
      key: k(c.emptyPrefix),
      range_end: prefixEnd(k(c.emptyPrefix)),
      target: 'Version',
      result: 'Equal',
      version: 0,
    };
  if ('mod' in c) return { key: k(c.key), target: 'Mod', result: 'Equal', mod_revision: c.mod };
  return { key: k(c.key), target: 'Version', result: c.exists ? 'Greater' : 'Equal', version: 0 };
}

function requestOf(o: Operation): IRequestOp {
  if ('put' in o)
    return {
      request_put: { key: k(o.put), value: Buffer.from(o.value), ...(o.lease ? { lease: o.lease } : {}) },
    };
  return { request_delete_range: { key: k(o.del) } };
}

export interface ClusterStatus {
  store: string;
  advertise: string;
  advertiseAddr: string;
  /** `connecting` until registered; `ready`; `error` with the reason (also after a lost lease). */
  state: 'connecting' | 'ready' | 'error';
  error: string;
  hosts: ClusterHost[];
}

/** Per-call deadline: a store without quorum makes calls fail after it, not hang. */
const CALL_DEADLINE_MS = 3000;

export class ClusterStore {
  private readonly etcd?: Etcd3;
  private lease?: Lease;
  private leaseId = '';
  private state: ClusterStatus['state'] = 'connecting';
  private error = '';
  private last?: Snapshot;
  private watcher?: Watcher;
  private closed = false;
  private retry?: NodeJS.Timeout;
  private refreshing = false;
  private refreshAgain = false;
  private readonly listeners: ((s: Snapshot) => Promise<void> | void)[] = [];
  private readonly registeredHooks: ((leaseId: string) => Promise<void>)[] = [];

  constructor(
    readonly settings: ClusterSettings,
    private readonly identity: { engineId: string; name: string },
    credentials?: { rootCertificate: Buffer; certChain?: Buffer; privateKey?: Buffer },
    /** A configuration that cannot work (bad URL, unknown interface): kept for `info` and errors. */
    brokenBecause?: string,
  ) {
    if (brokenBecause) {
      this.state = 'error';
      this.error = brokenBecause;
      return;
    }
    this.etcd = new Etcd3({
      hosts: settings.endpoints,
      dialTimeout: CALL_DEADLINE_MS,
      ...(credentials ? { credentials } : {}),
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
      // Watches come back within a second of the store's return (the default backs off to 30 s).
      // etcd3's type says IBackoff but it calls `.next()` on what it is given: a backoff factory.
      faultHandling: {
        watchBackoff: new ExponentialBackoff({
          initialDelay: 100,
          maxDelay: 1000,
        }) as unknown as IBackoff<unknown>,
      },
    });
  }

  /** Reads TLS files (if any); nothing is contacted before `start()`. */
  static async open(
    settings: ClusterSettings,
    identity: { engineId: string; name: string },
  ): Promise<ClusterStore> {
    let credentials: { rootCertificate: Buffer; certChain?: Buffer; privateKey?: Buffer } | undefined;
    if (settings.tls) {
      const [ca, cert, key] = await Promise.all([
        fs.readFile(settings.tls.ca),
        settings.tls.cert ? fs.readFile(settings.tls.cert) : undefined,
        settings.tls.key ? fs.readFile(settings.tls.key) : undefined,
      ]);
      credentials = { rootCertificate: ca, certChain: cert, privateKey: key };
    }
    return new ClusterStore(settings, identity, credentials);
  }

  /** A daemon whose cluster settings are unusable: it runs, says why, and refuses overlay work. */
  static broken(
    store: string,
    advertise: string,
    why: string,
    identity: { engineId: string; name: string },
  ): ClusterStore {
    const settings: ClusterSettings = { store, advertise, advertiseAddr: '', endpoints: [], ttl: 10 };
    return new ClusterStore(settings, identity, undefined, why);
  }

  get client(): Etcd3 {
    if (!this.etcd) throw this.storeError(new Error(this.error));
    return this.etcd;
  }

  get engineId(): string {
    return this.identity.engineId;
  }

  get addr(): string {
    return this.settings.advertiseAddr;
  }

  status(): ClusterStatus {
    return {
      store: this.settings.store,
      advertise: this.settings.advertise,
      advertiseAddr: this.settings.advertiseAddr,
      state: this.state,
      error: this.error,
      hosts: this.hosts(),
    };
  }

  hosts(): ClusterHost[] {
    const out: ClusterHost[] = [];
    for (const [k, v] of this.last?.kvs ?? [])
      if (k.startsWith('hosts/')) {
        try {
          out.push(JSON.parse(v) as ClusterHost);
        } catch {}
      }
    return out.sort((a, b) => a.addr.localeCompare(b.addr));
  }

  /** The lease ID to hang this host's keys on; throws Docker-like wording when the store is not usable. */
  requireLease(): string {
    if (this.state !== 'ready' || !this.leaseId)
      throw unavailable(
        `cluster store ${this.settings.store} is not available: ${this.error || 'not registered yet'}`,
      );
    return this.leaseId;
  }

  leaseIfReady(): string | undefined {
    return this.state === 'ready' && this.leaseId ? this.leaseId : undefined;
  }

  /** Wraps a store failure in a clear error (quorum lost, store down). */
  storeError(err: unknown): Error {
    const msg = err instanceof Error ? err.message : String(err);
    return unavailable(`cluster store ${this.settings.store} is not available: ${msg}`);
  }

  onSnapshot(fn: (s: Snapshot) => Promise<void> | void): void {
    this.listeners.push(fn);
    if (this.last) void fn(this.last);
  }

  /** Runs after each (re)registration with the new lease: the owner re-puts what it owns. */
  onRegistered(fn: (leaseId: string) => Promise<void>): void {
    this.registeredHooks.push(fn);
    if (this.state === 'ready' && this.leaseId)
      void fn(this.leaseId).catch((err: unknown) => log.warn('cluster re-registration step failed', { err }));
  }

  /** A consistent read of everything under the prefix (linearizable: fails without quorum). */
  async snapshot(): Promise<Snapshot> {
    const res = await this.client.getAll().prefix(PREFIX).exec();
    const kvs = new Map<string, string>();
    const mods = new Map<string, number>();
    for (const kv of res.kvs as IKeyValue[]) {
      const key = kv.key.toString().slice(PREFIX.length);
      kvs.set(key, kv.value.toString());
      mods.set(key, Number(kv.mod_revision));
    }
    return { revision: res.header.revision, kvs, mods };
  }

  /** One etcd transaction: all operations if every condition holds; false (nothing done) otherwise. */
  async txn(conditions: Condition[], ops: Operation[]): Promise<boolean> {
    try {
      const res = await this.client.kv.txn({
        compare: conditions.map(compareOf),
        success: ops.map(requestOf),
        failure: [],
      });
      return res.succeeded;
    } catch (err) {
      throw this.storeError(err);
    }
  }

  /** Starts registering (and retrying) in the background, once the owners' hooks are in place. */
  start(): void {
    if (this.etcd) void this.register();
  }

  private scheduleRegister(delayMs: number): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.register();
    }, delayMs);
  }

  private async register(): Promise<void> {
    if (this.closed) return;
    const key = `${PREFIX}hosts/${this.addr}`;
    let lease: Lease | undefined;
    try {
      lease = this.client.lease(this.settings.ttl);
      const id = await lease.grant();
      // The watch waits for a connection without a deadline: started once the store has answered.
      this.startWatch();
      const seen = await this.client.get(key).exec();
      const prev = seen.kvs[0];
      const before = prev ? (JSON.parse(prev.value.toString()) as ClusterHost) : undefined;
      if (before && before.engineId !== this.identity.engineId)
        throw new Error(
          `another host (${before.name}, engine ${before.engineId}) already advertises ${this.addr}: give each host its own --cluster-advertise`,
        );
      const value: ClusterHost = {
        addr: this.addr,
        name: this.identity.name,
        engineId: this.identity.engineId,
        lease: id,
        since: new Date().toISOString(),
      };
      const txn = await this.client
        .if(key, 'Mod', '==', prev ? Number(prev.mod_revision) : 0)
        .then(this.client.put(key).value(JSON.stringify(value)).lease(id))
        .commit();
      if (!txn.succeeded) throw new Error(`registration of ${this.addr} raced with another writer`);
      this.lease = lease;
      this.leaseId = id;
      lease.on('lost', (err) => {
        if (this.lease !== lease || this.closed) return;
        log.warn('cluster store lease lost; registering again', { err: err.message });
        this.state = 'error';
        this.error = `lease lost: ${err.message}`;
        this.leaseId = '';
        this.lease = undefined;
        this.scheduleRegister(200);
      });
      // The owners move what is still alive onto the new lease, then our registration from before
      // a restart or a lost lease goes with whatever is left on it (endpoints of dead containers).
      for (const hook of this.registeredHooks) await hook(id);
      if (before?.lease && before.lease !== id)
        await this.client.leaseClient.leaseRevoke({ ID: before.lease }).catch(() => {});
      this.state = 'ready';
      this.error = '';
      log.info('joined the cluster store', { store: this.settings.store, advertise: this.addr, lease: id });
      this.scheduleRefresh();
    } catch (err) {
      if (lease && lease !== this.lease) lease.release();
      const msg = err instanceof Error ? err.message : String(err);
      if (this.state !== 'error' || this.error !== msg)
        log.warn('cannot join the cluster store; overlay networks unavailable until it answers', {
          store: this.settings.store,
          err: msg,
        });
      this.state = 'error';
      this.error = msg;
      this.scheduleRegister(1000);
    }
  }

  private watchStarted = false;

  private startWatch(): void {
    if (this.watchStarted) return;
    this.watchStarted = true;
    void this.client
      .watch()
      .prefix(PREFIX)
      .create()
      .then((w) => {
        this.watcher = w;
        if (this.closed) void w.cancel().catch(() => {});
        w.on('data', () => this.scheduleRefresh());
        w.on('connected', () => this.scheduleRefresh());
        w.on('error', () => {});
        this.scheduleRefresh();
      })
      .catch((err: unknown) => {
        this.watchStarted = false;
        log.warn('cannot watch the cluster store', { err: err instanceof Error ? err.message : String(err) });
      });
  }

  /** Coalesces bursts of changes into one snapshot read; a failed read keeps the last one. */
  scheduleRefresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    void (async () => {
      do {
        this.refreshAgain = false;
        try {
          const snap = await this.snapshot();
          this.last = snap;
          for (const fn of this.listeners) await fn(snap);
        } catch (err) {
          log.debug('cluster snapshot failed', { err: err instanceof Error ? err.message : String(err) });
        }
      } while (this.refreshAgain && !this.closed);
      this.refreshing = false;
    })();
  }

  /**
   * Stops keep-alives without revoking: the host's endpoints stay until the lease expires (a
   * quick restart with live restore takes them over), as when the host dies.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.lease?.release();
    await this.watcher?.cancel().catch(() => {});
    this.etcd?.close();
  }
}
