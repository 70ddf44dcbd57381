import type { Router } from '../router.js';

/** Routes for /images (owned by the images layer's work; empty until it lands). */
export function registerImageRoutes(_router: Router): void {}
