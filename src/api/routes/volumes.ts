import type { Router } from '../router.js';

/** Routes for /volumes (owned by the volumes layer's work; empty until it lands). */
export function registerVolumeRoutes(_router: Router): void {}
