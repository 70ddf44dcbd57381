/** `POST /auth` (`docker login`): checks credentials with the registry itself. */
import { type LoginRequest, login } from '../../distribution/login.js';
import type { Router } from '../router.js';
import { json, readJson } from '../http.js';

export function registerAuthRoutes(router: Router): void {
  router.post('/auth', async (ctx) => json(ctx, 200, await login(await readJson<LoginRequest>(ctx))));
}
