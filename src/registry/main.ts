/**
 * berth-registry: an image registry server (OCI Distribution Spec with Docker's extensions).
 *   berth-registry serve --listen 127.0.0.1:5000 --root DIR    open registry, delete enabled
 *   berth-registry serve --config FILE                         everything else (docs/registry.md)
 *   berth-registry gc --root DIR [--dry-run]                   delete unreferenced blobs
 *   berth-registry htpasswd USER                               bcrypt line for an htpasswd file
 */
import { Command } from 'commander';
import { hashPassword, Htpasswd, Policy, TokenIssuer } from './auth.js';
import { defaultConfig, loadConfig, type RegistryConfig } from './config.js';
import { collectGarbage } from './gc.js';
import { type AuthSetup, jsonLogger, RegistryServer } from './server.js';
import { RegistryStorage } from './storage.js';

async function configFrom(opts: {
  config?: string;
  listen?: string;
  root?: string;
}): Promise<RegistryConfig> {
  if (opts.config) return loadConfig(opts.config, { listen: opts.listen, root: opts.root });
  if (!opts.root) throw new Error('--root DIR or --config FILE is required');
  return defaultConfig(opts.listen ?? '127.0.0.1:5000', opts.root);
}

async function authFrom(cfg: RegistryConfig): Promise<AuthSetup | undefined> {
  if (!cfg.auth) return undefined;
  const htpasswd = new Htpasswd(cfg.auth.htpasswd);
  await htpasswd.load();
  const policy = new Policy(cfg.access);
  if (cfg.auth.type === 'basic') return { type: 'basic', htpasswd, policy, realm: cfg.auth.realm };
  const t = cfg.auth.token ?? {};
  const service = t.service ?? 'berth-registry';
  const issuer = await TokenIssuer.open({
    root: cfg.root,
    keyFile: t.key,
    issuer: t.issuer ?? 'berth-registry-token-issuer',
    service,
    ttlSeconds: t.expiration ?? 300,
  });
  return { type: 'token', htpasswd, policy, issuer, realm: t.realm };
}

const program = new Command('berth-registry').description('An image registry server (OCI Distribution Spec)');

program
  .command('serve')
  .description('run the registry')
  .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5000)')
  .option('--root <dir>', 'storage root')
  .option('--config <file>', 'configuration file (JSON)')
  .action(async (opts: { listen?: string; root?: string; config?: string }) => {
    const cfg = await configFrom(opts);
    const logger = jsonLogger(cfg.log.level);
    const storage = await RegistryStorage.open(cfg.root);
    const auth = await authFrom(cfg);
    const server = new RegistryServer(cfg, storage, auth, logger);
    const addr = await server.listen();
    logger.log('info', 'listening', {
      address: `${addr.address}:${addr.port}`,
      root: cfg.root,
      tls: !!cfg.tls,
      auth: cfg.auth?.type ?? 'none',
      delete: cfg.delete,
      proxy: cfg.proxy ? { remoteurl: cfg.proxy.remoteurl, ttlSeconds: cfg.proxy.ttl } : undefined,
    });
    process.on('unhandledRejection', (err) => {
      logger.log('error', 'unhandled rejection', { error: err instanceof Error ? err.stack : String(err) });
    });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.log('info', 'shutting down', { signal });
      await server.shutdown();
      logger.log('info', 'stopped');
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGHUP', () => {
      // Reload the users file without a restart.
      if (auth)
        auth.htpasswd.load().then(
          () => logger.log('info', 'htpasswd reloaded'),
          (err) => logger.log('error', 'htpasswd reload failed', { error: String(err) }),
        );
    });
  });

program
  .command('gc')
  .description('delete blobs no manifest references')
  .option('--root <dir>', 'storage root')
  .option('--config <file>', 'configuration file (JSON)')
  .option('--dry-run', 'only report what would be deleted')
  .option('--grace <seconds>', 'spare blobs modified within this many seconds', '3600')
  .action(async (opts: { root?: string; config?: string; dryRun?: boolean; grace: string }) => {
    const cfg = await configFrom(opts);
    const storage = await RegistryStorage.open(cfg.root);
    const res = await collectGarbage(storage, {
      dryRun: !!opts.dryRun,
      graceSeconds: Number(opts.grace),
      uploadTTLSeconds: cfg.limits.uploadTTLSeconds,
      log: (l) => process.stdout.write(l + '\n'),
    });
    process.stdout.write(
      `${opts.dryRun ? 'dry run: ' : ''}${res.repositories} repositories, ${res.manifests} manifests, ` +
        `${res.marked} blobs in use, ${res.deleted.length} blobs ${opts.dryRun ? 'eligible' : 'deleted'} ` +
        `(${res.freedBytes} bytes), ${res.sparedYoung} spared as too recent, ${res.uploadsRemoved} stale uploads removed\n`,
    );
  });

program
  .command('htpasswd')
  .description('print an htpasswd line (bcrypt) for USER; the password is read from stdin')
  .argument('<user>')
  .action(async (user: string) => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const password = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (!password) throw new Error('empty password on stdin');
    process.stdout.write(`${user}:${hashPassword(password)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`berth-registry: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
