/** The /networks API: list, inspect, create, remove, prune, connect, disconnect. */
import type { EndpointSettings } from '../../model/container.js';
import type { NetworkCreateRequest } from '../../network/index.js';
import { invalid } from '../../util/errors.js';
import { json, noContent, parseFilters } from '../http.js';
import type { Router } from '../router.js';
import { readTyped } from '../validate/body.js';
import { networkConnect, networkCreateRequest, networkDisconnect } from '../validate/engine-types.js';
import { listable, listedNetwork } from '../validate/listable.js';

export function registerNetworkRoutes(router: Router): void {
  router.get('/networks', async (ctx) => {
    const nets = await ctx.services.networks.list(parseFilters(ctx.query.get('filters')));
    json(ctx, 200, listable('network', nets, listedNetwork, (n) => n?.Id));
  });
  router.post('/networks/create', async (ctx) => {
    const body = await readTyped<NetworkCreateRequest>(ctx, networkCreateRequest);
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
    const body = await readTyped<{ Container?: string; EndpointConfig?: EndpointSettings | null }>(ctx, networkConnect);
    if (!body.Container) throw invalid('no container specified');
    await ctx.services.containers.connectNetwork(ctx.params.id, body.Container, body.EndpointConfig);
    noContent(ctx, 200);
  });
  router.post('/networks/{id}/disconnect', async (ctx) => {
    const body = await readTyped<{ Container?: string; Force?: boolean }>(ctx, networkDisconnect);
    if (!body.Container) throw invalid('no container specified');
    await ctx.services.containers.disconnectNetwork(ctx.params.id, body.Container, !!body.Force);
    noContent(ctx, 200);
  });
}
