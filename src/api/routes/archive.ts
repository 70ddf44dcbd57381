import type { Router } from '../router.js';

/** `docker cp`: HEAD/GET/PUT /containers/{id}/archive (owned by the storage work; empty until it lands). */
export function registerArchiveRoutes(_router: Router): void {}
