import type { Router } from '../router.js';

export function registerExecRoutes(_router: Router): void {}
