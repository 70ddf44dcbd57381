import type { Router } from '../router.js';

/** Routes for /networks (owned by the networks layer's work; empty until it lands). */
export function registerNetworkRoutes(_router: Router): void {}
