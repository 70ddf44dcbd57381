/**
 * The embedded DNS: one UDP resolver per network, listening on the network's gateway address
 * (containers get it as their `nameserver`). Node cannot enter a container's namespace, so the
 * resolver serves all containers of a network from the host side: one socket per network, no
 * per-container cost. It answers A queries for the names it knows (container names, aliases,
 * short IDs on that network), and forwards other names to upstream resolvers unless forwarding
 * is off (then it answers REFUSED, and no query leaves the machine).
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import dnsPacket from 'dns-packet';
import { log } from '../util/log.js';

export interface DnsAnswer {
  /** Addresses for a name this network knows; undefined: not ours. */
  addresses?: string[];
  /** For a reverse query (`d.c.b.a.in-addr.arpa`) of a known address: the name. */
  ptr?: string;
  /** Upstream resolvers for the client (empty: do not forward). */
  upstreams: string[];
}

export type DnsLookup = (name: string, client: string) => DnsAnswer;

const TTL = 600;

export class DnsServer {
  private socket?: dgram.Socket;
  private tcp?: net.Server;

  constructor(
    readonly address: string,
    private readonly lookup: DnsLookup,
    readonly port = 53,
  ) {}

  async start(): Promise<void> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: this.address, port: this.port, exclusive: true }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => log.warn('embedded DNS socket error', { address: this.address, err }));
    // TCP as well (RFC 7766): clients retry there after a truncated answer or with `use-vc`.
    const tcp = net.createServer((conn) => this.serveTcp(conn));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: this.address, port: this.port, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      this.tcp = tcp;
    } catch (err) {
      sock.close();
      throw err;
    }
    sock.on('message', (msg, rinfo) => {
      this.handle(msg, rinfo.address)
        .then((reply) => {
          if (reply) sock.send(reply, rinfo.port, rinfo.address);
        })
        .catch((err) => log.debug('embedded DNS query failed', { err }));
    });
    this.socket = sock;
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    const t = this.tcp;
    this.tcp = undefined;
    if (t) await new Promise<void>((r) => t.close(() => r()));
  }

  /** Length-prefixed messages on one connection, answered in order. */
  private serveTcp(conn: net.Socket): void {
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    conn.setTimeout(10_000, () => conn.destroy());
    conn.on('error', () => {});
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        chain = chain.then(async () => {
          const reply = await this.handle(
            Buffer.from(msg),
            conn.remoteAddress?.replace(/^::ffff:/, '') ?? '',
          ).catch(() => undefined);
          if (!reply || conn.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          conn.write(Buffer.concat([len, reply]));
        });
      }
    });
  }

  async handle(msg: Buffer, client: string): Promise<Buffer | undefined> {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    const q = query.questions?.[0];
    if (!q) return undefined;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const ans = this.lookup(name, client);
    if (ans.ptr) {
      return dnsPacket.encode({
        type: 'response',
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
        questions: [q],
        answers:
          q.type === 'PTR' ? [{ type: 'PTR', name: q.name, ttl: TTL, class: 'IN', data: ans.ptr }] : [],
      });
    }
    if (ans.addresses) {
      const answers: dnsPacket.Answer[] =
        q.type === 'A'
          ? ans.addresses.map((a) => ({ type: 'A', name: q.name, ttl: TTL, class: 'IN', data: a }))
          : [];
      return dnsPacket.encode({
        type: 'response',
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
        questions: [q],
        answers,
      });
    }
    if (ans.upstreams.length > 0) {
      const reply = await forward(msg, ans.upstreams);
      if (reply) return reply;
      return rcode(query, 2); // SERVFAIL
    }
    return rcode(query, 5); // REFUSED
  }
}

function rcode(query: dnsPacket.Packet, code: number): Buffer {
  const buf = dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: query.questions,
  });
  buf.writeUInt16BE((buf.readUInt16BE(2) & 0xfff0) | code, 2);
  return buf;
}

/** Sends the query to each upstream in turn (2 s each) and returns the first reply. */
async function forward(msg: Buffer, upstreams: string[]): Promise<Buffer | undefined> {
  for (const server of upstreams) {
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const s = dgram.createSocket(server.includes(':') ? 'udp6' : 'udp4');
      const timer = setTimeout(() => done(undefined), 2000);
      const done = (b: Buffer | undefined) => {
        clearTimeout(timer);
        s.close();
        resolve(b);
      };
      s.on('error', () => done(undefined));
      s.on('message', (b) => done(b));
      s.send(msg, 53, server);
    });
    if (reply) return reply;
  }
  return undefined;
}
