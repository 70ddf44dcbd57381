/** The /networks API: list, inspect, create, remove, prune, connect, disconnect. */
import type { EndpointSettings } from '../../model/container.js';
import type { NetworkCreateRequest } from '../../network/index.js';
import { invalid } from '../../util/errors.js';
import { json, noContent, parseFilters, readJson } from '../http.js';
import type { Router } from '../router.js';

export function registerNetworkRoutes(router: Router): void {
  router.get('/networks', async (ctx) => {
    json(ctx, 200, await ctx.services.networks.list(parseFilters(ctx.query.get('filters'))));
  });
  router.post('/networks/create', async (ctx) => {
    const body = await readJson<NetworkCreateRequest>(ctx);
    if (typeof body !== 'object' || body === null) throw invalid('invalid network create request');
    json(ctx, 201, await ctx.services.networks.create(body));
  });
  router.post('/networks/prune', async (ctx) => {
    const removed = await ctx.services.networks.prune(parseFilters(ctx.query.get('filters')));
    json(ctx, 200, { NetworksDeleted: removed });
  });
  router.get('/networks/{id}', async (ctx) => {
    json(ctx, 200, await ctx.services.networks.inspect(ctx.params.id));
  });
  router.delete('/networks/{id}', async (ctx) => {
    await ctx.services.networks.remove(ctx.params.id);
    noContent(ctx);
  });
  router.post('/networks/{id}/connect', async (ctx) => {
    const body = await readJson<{ Container?: string; EndpointConfig?: EndpointSettings | null }>(ctx);
    if (!body.Container) throw invalid('no container specified');
    await ctx.services.containers.connectNetwork(ctx.params.id, body.Container, body.EndpointConfig);
    noContent(ctx, 200);
  });
  router.post('/networks/{id}/disconnect', async (ctx) => {
    const body = await readJson<{ Container?: string; Force?: boolean }>(ctx);
    if (!body.Container) throw invalid('no container specified');
    await ctx.services.containers.disconnectNetwork(ctx.params.id, body.Container, !!body.Force);
    noContent(ctx, 200);
  });
}
